"""Local storage: Parquet partitioned by record kind and date, JSON lines for
alerts and dead letters, the latest health report as JSON."""

from sinks.parquet.config import ParquetSinkConfig
from sinks.parquet.transform import WriteToStorage

__all__ = ["ParquetSinkConfig", "WriteToStorage"]
