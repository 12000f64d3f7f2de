"""BigQuery tables of the storage kinds, derived from the shared Arrow schemas.

One table per kind: ``metrics``, ``aggregates``, ``events``, ``alerts``,
``dead_letters`` and ``health``. Columns are the kind's Arrow schema
(:data:`~airis_mon.schema.METRIC_SCHEMA`, :data:`~airis_mon.schema.AGGREGATE_SCHEMA`,
:func:`~airis_mon.arrowutil.record_schema` of ``Event``, ``Alert``,
``DeadLetter``, ``HealthRecord``), in order, mapped string -> STRING, int64 -> INTEGER,
float64 -> FLOAT, bool -> BOOLEAN, every one NULLABLE (a non-finite float
is stored as NULL, see :mod:`sinks.bigquery.transform`); then two columns of
our own:

- ``event_time`` TIMESTAMP: the kind's time column (epoch ms, UTC) as a
  timestamp, exact to the ms. Tables are partitioned by DAY on it and
  clustered by :attr:`BigQueryTable.clustering`.
- ``run_key`` STRING: the run key of the job that wrote the row, so that the
  rows of one batch run can be found (and deleted before a re-run; BigQuery
  appends, see the transform's docstring).

Columns holding JSON as text (:data:`JSON_TEXT_COLUMNS`: tags, labels, group,
context, data, original) stay STRING, exactly as the pipeline carries them:
query them with ``JSON_VALUE(tags, '$.model_name')``. BigQuery's JSON type
would need the rows parsed on the way in, and Beam's file loads write it as an
escaped string anyway; a canonical JSON string also keeps tags usable as a
grouping key.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from airis_mon.arrowutil import record_schema
from airis_mon.schema import DeadLetter
from sinks.parquet.transform import PARQUET_KINDS

__all__ = ["EVENT_TIME", "JSON_TEXT_COLUMNS", "RUN_KEY", "TABLES", "BigQueryTable", "bigquery_type"]

#: The TIMESTAMP column every table is partitioned on.
EVENT_TIME = "event_time"
#: The column naming the run that wrote a row.
RUN_KEY = "run_key"
#: Columns that hold a JSON object (or list) as text; they stay STRING.
JSON_TEXT_COLUMNS = frozenset({"tags", "labels", "group", "context", "data", "original"})

_BIGQUERY_TYPES = {pa.string(): "STRING", pa.int64(): "INTEGER", pa.float64(): "FLOAT", pa.bool_(): "BOOLEAN"}


def bigquery_type(arrow_type: pa.DataType) -> str:
    """The BigQuery (legacy SQL name) column type of an Arrow type of the shared schemas."""
    try:
        return _BIGQUERY_TYPES[arrow_type]
    except KeyError:
        raise TypeError(f"no BigQuery column type for Arrow type {arrow_type}") from None


@dataclass(frozen=True)
class BigQueryTable:
    """One storage kind as a BigQuery table: its Arrow schema, time column and clustering columns."""

    kind: str
    arrow_schema: pa.Schema
    time_column: str  # epoch ms UTC; event_time is derived from it
    clustering: tuple[str, ...]

    def table_schema(self) -> dict:
        """The ``{"fields": [...]}`` table schema that ``WriteToBigQuery(schema=...)`` takes."""
        fields = []
        for field in self.arrow_schema:
            column = {"name": field.name, "type": bigquery_type(field.type), "mode": "NULLABLE"}
            if field.name in JSON_TEXT_COLUMNS:
                column["description"] = "JSON as text"
            fields.append(column)
        fields.append(
            {
                "name": EVENT_TIME,
                "type": "TIMESTAMP",
                "mode": "NULLABLE",
                "description": f"{self.time_column} as a UTC timestamp; the table is partitioned by its day",
            }
        )
        fields.append({"name": RUN_KEY, "type": "STRING", "mode": "NULLABLE", "description": "run that wrote the row"})
        return {"fields": fields}

    def table_parameters(self, partition_expiration_days: int | None = None) -> dict:
        """``additional_bq_parameters``: DAY partitions on event_time, clustering, optional partition expiry."""
        partitioning: dict = {"type": "DAY", "field": EVENT_TIME}
        if partition_expiration_days is not None:
            partitioning["expirationMs"] = partition_expiration_days * 86_400_000
        return {"timePartitioning": partitioning, "clustering": {"fields": list(self.clustering)}}


def _table(
    kind: str, clustering: tuple[str, ...], arrow_schema: pa.Schema | None = None, time_column: str = ""
) -> BigQueryTable:
    if arrow_schema is None:
        arrow_schema, time_column = PARQUET_KINDS[kind]
    return BigQueryTable(kind, arrow_schema, time_column, clustering)


#: kind -> table; the kinds and time columns of the Parquet sink (not the live runner's alert_states), plus dead
#: letters in their own table.
TABLES: dict[str, BigQueryTable] = {
    "metrics": _table("metrics", ("name", "source")),
    "aggregates": _table("aggregates", ("name", "source")),
    "events": _table("events", ("event_type", "source")),
    "alerts": _table("alerts", ("rule", "model_id")),
    "dead_letters": _table("dead_letters", ("component",), record_schema(DeadLetter), "timestamp_ms"),
    "health": _table("health", ("integration",)),
}
