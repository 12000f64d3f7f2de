"""``WriteToStorage``: every output of a run, on local disk.

Layout under ``path`` (``RUN`` is the run key, a digest of the input's
identity, so that the same input always maps to the same file names)::

    metrics/date=YYYY-MM-DD/part-RUN-PART.parquet     normalized points
    aggregates/date=YYYY-MM-DD/part-RUN-PART.parquet  window statistics
    distributions/date=YYYY-MM-DD/part-RUN-PART.parquet  per-window DDSketch of the metrics drift rules read
    rule_metrics/date=YYYY-MM-DD/part-RUN.parquet    points rules derive (slo_error_budget_remaining)
    events/date=YYYY-MM-DD/part-RUN.parquet
    alerts/date=YYYY-MM-DD/part-RUN.parquet
    alert_states/date=YYYY-MM-DD/part-RUN.parquet  pending and firing alerts per evaluation (live runner)
    health/date=YYYY-MM-DD/part-RUN.parquet        one row per integration poll or read (HealthRecord)
    alerts-RUN.jsonl                               every alert, one JSON object a line
    dead_letters/date=YYYY-MM-DD/part-RUN.jsonl    reason + original payload
    health_report.json                             the latest health report

Each file is written to a temporary name in its folder and renamed into
place, so readers never see a partial file. Running the same input twice
gives byte-identical files, never duplicated rows:

- ``metrics``, ``aggregates`` and ``distributions`` arrive as ``(PART, table)`` pairs, already
  grouped and sorted upstream (``Aggregate(keep_points=True)``: one pair per
  shard). Each pair is written as is, one file per date it covers, with no
  shuffle of its own: every point crossing a second GroupByKey cost more time
  and memory than the rest of a backfill (``benchmarks.backfill``). PART must
  be unique within a run and the same for the same input.
- rows (events, alerts, alert states, health, dead letters) are gathered by one GroupByKey per
  (kind, date) and sorted (Beam's ``WriteToParquet`` mishandles
  windows).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.transforms import trigger

from airis_mon.arrowutil import conform, record_schema, records_to_table
from airis_mon.beamutil import InArrivalWindows, windowed_name, windowed_part_name
from airis_mon.files import write_atomically, write_text_atomically
from airis_mon.schema import (
    AGGREGATE_SCHEMA,
    DISTRIBUTION_SCHEMA,
    METRIC_SCHEMA,
    Alert,
    AlertState,
    Event,
    HealthRecord,
    Metric,
)
from sinks.parquet.config import ParquetSinkConfig

__all__ = ["PARQUET_KINDS", "WriteToStorage"]

COMPONENT = "storage"

#: kind -> (Arrow schema, time column used for the date partition)
PARQUET_KINDS: dict[str, tuple[pa.Schema, str]] = {
    "metrics": (METRIC_SCHEMA, "timestamp_ms"),
    "aggregates": (AGGREGATE_SCHEMA, "window_start_ms"),
    "distributions": (DISTRIBUTION_SCHEMA, "window_start_ms"),
    "rule_metrics": (record_schema(Metric), "timestamp_ms"),
    "events": (record_schema(Event), "timestamp_ms"),
    "alerts": (record_schema(Alert), "timestamp_ms"),
    "alert_states": (record_schema(AlertState), "evaluated_at_ms"),
    "health": (record_schema(HealthRecord), "timestamp_ms"),
}
_ROW_TYPES = {
    "rule_metrics": Metric,
    "events": Event,
    "alerts": Alert,
    "alert_states": AlertState,
    "health": HealthRecord,
}
_PART_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
_MS_PER_DAY = 86_400_000


def _date_of(ms: int) -> str:
    """UTC date of epoch ms; ``unknown`` for 0 (a record whose time could not be read)
    and for times no calendar date can hold (beyond years 1..9999, or not a number)."""
    if ms == 0:
        return "unknown"
    try:
        return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError, TypeError):
        return "unknown"


class _WriteTablePart(beam.DoFn):
    """``(part, table)`` -> one Parquet file per date the rows cover, rows in the order given."""

    def __init__(self, kind: str, root: str, run_key: str, compression: str):
        self._kind = kind
        self._root = Path(root)
        self._run_key = run_key
        self._compression = None if compression == "none" else compression
        self._files = beam.metrics.Metrics.counter(COMPONENT, "files_written")
        self._rows = beam.metrics.Metrics.counter(COMPONENT, "rows_written")

    def process(self, part_and_table):
        part, table = part_and_table
        if not isinstance(part, str) or not _PART_NAME.fullmatch(part):
            raise ValueError(f"{self._kind}: part names are 1-32 letters, digits, '-' or '_', got {part!r}")
        schema, time_column = PARQUET_KINDS[self._kind]
        table = conform(table, schema)
        if table.num_rows == 0:
            return
        days = table.column(time_column).to_numpy() // _MS_PER_DAY
        distinct_days = np.unique(days)  # rows are sorted by series, not time: look at every row
        for day in distinct_days:
            rows = table if len(distinct_days) == 1 else table.filter(pa.array(days == day))
            path = self._root / self._kind / f"date={_date_of(int(day) * _MS_PER_DAY)}"
            path = path / f"part-{self._run_key}-{part}.parquet"
            write_atomically(path, lambda temp, rows=rows: _write_parquet(rows, temp, self._compression))
            self._files.inc()
            self._rows.inc(rows.num_rows)
            yield str(path)


def _write_parquet(table: pa.Table, path: str, compression: str | None) -> None:
    # Dictionary columns become Parquet dictionary pages as they are; without the stored Arrow schema,
    # readers see the plain types of PARQUET_KINDS.
    pq.write_table(table, path, compression=compression, store_schema=False)


class _WriteRowPartition(beam.DoFn):
    """((kind, date), rows) -> one Parquet file, rows sorted by every column."""

    def __init__(self, root: str, run_key: str, compression: str):
        self._root = Path(root)
        self._run_key = run_key
        self._compression = None if compression == "none" else compression
        self._files = beam.metrics.Metrics.counter(COMPONENT, "files_written")
        self._rows = beam.metrics.Metrics.counter(COMPONENT, "rows_written")

    def process(self, keyed_rows, window=beam.DoFn.WindowParam):
        (kind, date), rows = keyed_rows
        schema = PARQUET_KINDS[kind][0]
        table = records_to_table(list(rows), _ROW_TYPES[kind]).select(schema.names).cast(schema)
        table = table.sort_by([(name, "ascending") for name in schema.names])
        path = self._root / kind / f"date={date}" / windowed_name(f"part-{self._run_key}.parquet", window)
        write_atomically(path, lambda temp: pq.write_table(table, temp, compression=self._compression))
        self._files.inc()
        self._rows.inc(table.num_rows)
        yield str(path)


#: Streaming: metrics and aggregates are stored one file per shard per this many seconds of event time.
STREAMING_PART_WINDOW_S = 3600
#: Streaming: how late (seconds after its hour ended) a late aggregation pane may still be stored. More than
#: any ``aggregation.allowed_lateness``: only the aggregation decides what is too late.
STREAMING_PART_LATENESS_S = 7 * 86_400


def _by_shard(part_and_table: tuple[str, pa.Table]) -> tuple[str, tuple[str, pa.Table]]:
    """``("s003-w1795856400000-p0", table)`` -> ``("s003", (part, table))``."""
    part, table = part_and_table
    return part.split("-w", 1)[0], (part, table)


class _JoinShardPieces(beam.DoFn):
    """(shard, pieces) -> one ``(shard-wSTART-pPANE, table)`` part: the pieces' rows in the order of their
    aggregation windows (within one, sorted by series and time)."""

    def process(self, keyed_pieces, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        shard, pieces = keyed_pieces
        tables = [table for _, table in sorted(pieces, key=lambda piece: _window_order(piece[0]))]
        yield windowed_part_name(shard, window, pane), pa.concat_tables(tables).unify_dictionaries()


def _window_order(part: str) -> tuple[int, int]:
    """(window start ms, pane index) of an aggregation part name ``s003-w1795856400000-p0``."""
    _, window, pane = part.rsplit("-", 2)
    return int(window[1:]), int(pane[1:])


def _json_line(record: tuple) -> str:
    return json.dumps(record._asdict(), sort_keys=True, allow_nan=True)


class _WriteJsonLines(beam.DoFn):
    """(relative path, records) -> one JSON-lines file, records sorted."""

    def __init__(self, root: str):
        self._root = Path(root)
        self._files = beam.metrics.Metrics.counter(COMPONENT, "files_written")

    def process(self, keyed_records, window=beam.DoFn.WindowParam):
        relative, records = keyed_records
        lines = sorted(_json_line(r) for r in records)
        path = self._root / windowed_name(relative, window)
        text = "".join(line + "\n" for line in lines)
        write_text_atomically(path, text)
        self._files.inc()
        yield str(path)


def _write_health_report(root: str, report: dict) -> str:
    path = Path(root) / "health_report.json"
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    write_text_atomically(path, text)
    beam.metrics.Metrics.counter(COMPONENT, "files_written").inc()
    return str(path)


class WriteToStorage(beam.PTransform):
    """Write a run's outputs; input is a dict of PCollections by kind.

    Keys: ``metrics`` and ``aggregates`` (``(part, Arrow table)`` pairs), ``events``,
    ``alerts``, ``alert_states``, ``health`` (``HealthRecord``), ``dead_letters`` (rows) and
    ``health_report`` (one dict).
    Missing keys are skipped. Returns a PCollection of written paths.
    """

    def __init__(self, config: ParquetSinkConfig, run_key: str, streaming_window_s: int | None = None):
        """``streaming_window_s``: in streaming, rows are written per window of this many seconds of their
        arrival time (files ``part-RUN-wSTART``), since a global-window shuffle would never fire; metrics and
        aggregates per shard and :data:`STREAMING_PART_WINDOW_S` of event time."""
        super().__init__()
        self._streaming_window_s = streaming_window_s
        if not config.path:
            raise ValueError(f"{config.name}: no output path (set sinks[].path or --output)")
        if not run_key or not run_key.isalnum():
            raise ValueError(f"run_key must be a non-empty alphanumeric string, got {run_key!r}")
        self._config = config
        self._run_key = run_key

    def expand(self, outputs: Mapping[str, beam.PCollection]):
        root, run_key = self._config.path, self._run_key
        written = []
        compression = self._config.compression
        for kind in PARQUET_KINDS:
            if kind not in outputs:
                continue
            if kind in _ROW_TYPES:
                time_field = PARQUET_KINDS[kind][1]
                written.append(
                    self._windowed(outputs[kind], kind)
                    | f"Key{kind.title()}"
                    >> beam.Map(lambda row, kind=kind, field=time_field: ((kind, _date_of(getattr(row, field))), row))
                    | f"Group{kind.title()}" >> beam.GroupByKey()
                    | f"Write{kind.title()}" >> beam.ParDo(_WriteRowPartition(root, run_key, compression))
                )
            else:
                written.append(
                    self._windowed_parts(outputs[kind], kind)
                    | f"Write{kind.title()}" >> beam.ParDo(_WriteTablePart(kind, root, run_key, compression))
                )
        if "alerts" in outputs:
            written.append(
                self._windowed(outputs["alerts"], "AlertLines")
                | "KeyAlertLines" >> beam.Map(lambda alert: (f"alerts-{run_key}.jsonl", alert))
                | "GroupAlertLines" >> beam.GroupByKey()
                | "WriteAlertLines" >> beam.ParDo(_WriteJsonLines(root))
            )
        if "dead_letters" in outputs:
            written.append(
                self._windowed(outputs["dead_letters"], "DeadLetters")
                | "KeyDeadLetters"
                >> beam.Map(
                    lambda dead: (f"dead_letters/date={_date_of(dead.timestamp_ms)}/part-{run_key}.jsonl", dead)
                )
                | "GroupDeadLetters" >> beam.GroupByKey()
                | "WriteDeadLetters" >> beam.ParDo(_WriteJsonLines(root))
            )
        if "health_report" in outputs:
            written.append(
                outputs["health_report"]
                | "WriteHealthReport" >> beam.Map(lambda report: _write_health_report(root, report))
            )
        return written | "WrittenPaths" >> beam.Flatten()

    def _windowed(self, rows, name: str):
        if self._streaming_window_s is None:
            return rows
        return rows | f"Windows{name.title()}" >> InArrivalWindows(self._streaming_window_s)

    def _windowed_parts(self, parts, kind: str):
        """Streaming: the aggregation's ``(part, table)`` pairs, one per shard, window and pane, gathered
        into one per shard and :data:`STREAMING_PART_WINDOW_S` of event time (and pane); batch: as they come.

        One file per shard and aggregation window was 31,890 small files for the sample day (60 s windows;
        68 s of a 1,292 s profiled run); per hour it is 670. Event time (not arrival) keeps the names the same for the
        same input, so a re-run replaces its files instead of adding rows. Late panes of the aggregation
        (within its allowed lateness) make late panes here, never dropped ones: see
        :data:`STREAMING_PART_LATENESS_S`.
        """
        if self._streaming_window_s is None:
            return parts
        label = kind.title()
        return (
            parts
            | f"PartWindows{label}"
            >> beam.WindowInto(
                beam.window.FixedWindows(STREAMING_PART_WINDOW_S),
                trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
                allowed_lateness=STREAMING_PART_LATENESS_S,
            )
            | f"KeyShard{label}" >> beam.Map(_by_shard)
            | f"GroupShard{label}" >> beam.GroupByKey()
            | f"JoinShard{label}" >> beam.ParDo(_JoinShardPieces())
        )
