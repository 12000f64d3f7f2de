"""BigQuery storage: one day-partitioned, clustered table per record kind, rows appended."""

from sinks.bigquery.config import BigQuerySinkConfig
from sinks.bigquery.transform import WriteToBigQueryStorage

__all__ = ["BigQuerySinkConfig", "WriteToBigQueryStorage"]
