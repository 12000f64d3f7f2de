"""``WriteToBigQueryStorage``: the storage outputs of a run, appended to BigQuery tables.

The input is the dict that :class:`sinks.parquet.WriteToStorage` takes:

- ``metrics`` and ``aggregates``: ``(part, Arrow table)`` pairs. The part name
  only names Parquet files; here it is unused.
- ``events``, ``alerts``, ``dead_letters``, ``health``: ``Event``/``Alert``/``DeadLetter``/``HealthRecord``
  rows, batched (``BatchElements``, up to 1,000) into Arrow tables so that
  every kind goes through the same vectorised conversion.
- ``health_report`` is ignored: the health records it summarises are stored
  as rows of their own (``health``) and as metrics (``pipelines.main``
  aggregates them with the points), and the report is a per-run snapshot that
  the Parquet sink keeps as a file.

Missing keys are skipped. Each kind goes to its own table (:data:`~sinks.bigquery.schema.TABLES`),
``PROJECT:DATASET.PREFIXkind``, created if needed with DAY partitions on
``event_time`` and clustering.

Conversion (:func:`table_rows`): the table's columns are conformed to the
kind's Arrow schema; non-finite floats (NaN, +-inf) become NULL, because
Beam's JSON row encoding refuses NaN and, in a streaming job, a raised
error retries the bundle forever (the Parquet sink keeps them as they are);
``event_time`` is the time column (epoch ms) cast to a UTC timestamp, exact
to the ms; ``run_key`` is a constant column; then ``Table.to_pylist()`` in
slices of 10,000 rows. No per-row Python work on columns.

Re-runs and retries, honestly:

- BigQuery appends (``WRITE_APPEND``). Running the same batch input twice
  stores its rows twice, unlike the Parquet sink, whose file names make a
  re-run overwrite. Both copies carry the same ``run_key`` (a digest of the
  input's identity): ``DELETE FROM t WHERE run_key = 'KEY'`` before re-running
  an input, or deduplicate when querying (alerts: by ``id``,
  ``notification`` and ``timestamp_ms``).
- Within one job, ``FILE_LOADS`` does not load a file twice: Beam names each
  load job from a per-job prefix, the table, the pane and the partition, so a
  retried bundle re-submits the same job id, which BigQuery refuses to run twice.
- ``STREAMING_INSERTS`` sends a row id with every row, fixed before a
  reshuffle so that retries reuse it; BigQuery drops repeats of an id seen in
  about the last minute, best effort. A new run has new ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.gcp.bigquery_tools import FileFormat
from apache_beam.options.pipeline_options import StandardOptions

from airis_mon.arrowutil import conform, records_to_table
from airis_mon.schema import Alert, DeadLetter, Event, HealthRecord
from sinks.bigquery.config import BigQuerySinkConfig
from sinks.bigquery.schema import EVENT_TIME, RUN_KEY, TABLES

__all__ = ["BigQueryRows", "WriteToBigQueryStorage", "record_rows", "table_rows"]

COMPONENT = "storage"
#: Row kinds and their record types; the other kinds arrive as (part, Arrow table) pairs.
ROW_TYPES: dict[str, type] = {"events": Event, "alerts": Alert, "dead_letters": DeadLetter, "health": HealthRecord}
_SLICE_ROWS = 10_000
_BATCH_ROWS = 1_000


def table_rows(table: pa.Table, kind: str, run_key: str) -> Iterator[dict]:
    """An Arrow table of ``kind`` as BigQuery row dicts (the columns of ``TABLES[kind]``), in table order.

    Non-finite floats become ``None``; ``event_time`` is a UTC ``datetime`` exact to the ms.
    """
    spec = TABLES[kind]
    table = conform(table, spec.arrow_schema)
    for index, field in enumerate(spec.arrow_schema):
        if pa.types.is_floating(field.type):
            column = table.column(index)
            table = table.set_column(index, field.name, pc.if_else(pc.is_finite(column), column, None))
    event_time = pc.cast(table.column(spec.time_column), pa.timestamp("ms", tz="UTC"))
    table = table.append_column(EVENT_TIME, event_time)
    table = table.append_column(RUN_KEY, pa.repeat(run_key, table.num_rows))
    for batch in table.to_batches(max_chunksize=_SLICE_ROWS):
        yield from batch.to_pylist()


def record_rows(records: Sequence[tuple], kind: str, run_key: str) -> Iterator[dict]:
    """Rows of ``kind``'s record type (``Event``, ``Alert``, ``DeadLetter``, ``HealthRecord``) as BigQuery row dicts."""
    return table_rows(records_to_table(records, ROW_TYPES[kind]), kind, run_key)


class _ToRows(beam.DoFn):
    """Arrow tables (``(part, table)`` pairs) or batches of records -> row dicts of one kind."""

    def __init__(self, kind: str, run_key: str):
        self._kind = kind
        self._run_key = run_key
        self._rows = beam.metrics.Metrics.counter(COMPONENT, "bigquery_rows")

    def process(self, element):
        if self._kind in ROW_TYPES:
            rows = record_rows(element, self._kind, self._run_key)
        else:
            rows = table_rows(element[1], self._kind, self._run_key)
        count = 0
        for row in rows:
            count += 1
            yield row
        self._rows.inc(count)


class BigQueryRows(beam.PTransform):
    """One kind's input (``(part, table)`` pairs, or records) -> BigQuery row dicts of ``TABLES[kind]``."""

    def __init__(self, kind: str, run_key: str):
        super().__init__()
        if kind not in TABLES:
            raise ValueError(f"unknown storage kind {kind!r} (known: {', '.join(TABLES)})")
        self._kind = kind
        self._run_key = run_key

    def expand(self, collection: beam.PCollection) -> beam.PCollection:
        if self._kind in ROW_TYPES:
            collection = collection | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=_BATCH_ROWS)
        return collection | "ToRows" >> beam.ParDo(_ToRows(self._kind, self._run_key))


class WriteToBigQueryStorage(beam.PTransform):
    """Append a run's outputs to BigQuery; input is a dict of PCollections by kind (as ``WriteToStorage``).

    Returns ``{kind: WriteResult}`` of Beam's ``WriteToBigQuery`` for the kinds written.
    """

    def __init__(self, config: BigQuerySinkConfig, run_key: str):
        super().__init__()
        if not run_key or not run_key.isalnum():
            raise ValueError(f"run_key must be a non-empty alphanumeric string, got {run_key!r}")
        self._config = config
        self._run_key = run_key

    def write_parameters(self, kind: str, streaming: bool) -> dict:
        """The keyword arguments of ``beam.io.WriteToBigQuery`` for ``kind`` (batch or streaming job)."""
        config, spec = self._config, TABLES[kind]
        file_loads = config.write_method == "FILE_LOADS"
        return {
            "table": config.table_name(kind),
            "schema": spec.table_schema(),
            "additional_bq_parameters": spec.table_parameters(config.partition_expiration_days),
            "method": config.write_method,
            "create_disposition": config.create_disposition,
            "write_disposition": beam.io.BigQueryDisposition.WRITE_APPEND,
            "triggering_frequency": config.triggering_frequency_s if file_loads and streaming else None,
            "temp_file_format": FileFormat.AVRO if file_loads else None,
            "kms_key": config.kms_key,
        }

    def expand(self, outputs: Mapping[str, beam.PCollection]):
        results = {}
        for kind in TABLES:
            if kind not in outputs:
                continue
            label = "".join(word.title() for word in kind.split("_"))
            streaming = outputs[kind].pipeline.options.view_as(StandardOptions).streaming
            results[kind] = (
                outputs[kind]
                | f"{label}ToRows" >> BigQueryRows(kind, self._run_key)
                | f"Write{label}ToBigQuery" >> beam.io.WriteToBigQuery(**self.write_parameters(kind, streaming))
            )
        return results
