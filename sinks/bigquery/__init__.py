"""BigQuery storage: one day-partitioned, clustered table per record kind, rows appended."""

from airis_mon.lazy import lazy_exports

# Loaded on first use: importing the config does not import the client library (the extra).
__getattr__, __all__ = lazy_exports(__name__, {"BigQuerySinkConfig": "config", "WriteToBigQueryStorage": "transform"})
