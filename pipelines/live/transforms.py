"""The Beam steps only the live runner adds to the main graph.

- :class:`ReadCarriedPoints`: the points of windows that were still open at
  the end of the previous cycle (a Parquet file of :data:`METRIC_SCHEMA`);
- :class:`SplitAtHorizon`: normalized points -> the points of windows that
  close in this cycle (aggregated, stored and evaluated now), the points of
  windows still open (carried to the next cycle) and late points (a dead
  letter each: their window was evaluated by an earlier cycle);
- :class:`WriteStagingFile`: gathers a small PCollection (rule entries,
  outbox, context events) into one file of the cycle's staging folder, which
  the runner commits once the pipeline has finished.

All times are epoch ms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from airis_mon import streams
from airis_mon.arrowutil import conform
from airis_mon.files import write_atomically, write_text_atomically
from airis_mon.schema import METRIC_SCHEMA, DeadLetter, Event, tags_from_json

__all__ = ["OPEN_POINTS", "CycleSpec", "ReadCarriedPoints", "SplitAtHorizon", "WriteCarriedPoints", "WriteStagingFile"]

COMPONENT = "live"
OPEN_POINTS = "open_points"
_CARRY_BATCH_ROWS = 100_000


class ReadCarriedPoints(beam.PTransform):
    """Carry files -> :data:`METRIC_SCHEMA` tables of at most 100,000 rows."""

    def __init__(self, paths: list[str]):
        super().__init__()
        self._paths = list(paths)

    def expand(self, pbegin):
        return pbegin | "CarryFile" >> beam.Create(self._paths) | "ReadCarry" >> beam.FlatMap(_read_carry)


def _read_carry(path: str) -> Iterable[pa.Table]:
    table = pq.read_table(path, schema=METRIC_SCHEMA)
    for start in range(0, table.num_rows, _CARRY_BATCH_ROWS):
        yield table.slice(start, _CARRY_BATCH_ROWS).combine_chunks()


def _late_point(row: dict, previous_closed_until_ms: int) -> DeadLetter:
    original = {
        "timestamp": row["timestamp_ms"],
        "source": row["source"],
        "metrics": [{"name": row["name"], "value": row["value"], "unit": row["unit"],
                     "tags": tags_from_json(row["tags"])}],
    }  # fmt: skip
    reason = (
        f"late point: its window was evaluated by an earlier cycle (windows ending at or before "
        f"{previous_closed_until_ms} ms are closed; live.allowed_lateness bounds how late a point may be)"
    )
    return DeadLetter(row["timestamp_ms"], COMPONENT, reason, json.dumps(original, allow_nan=True))


class _Split(beam.DoFn):
    def __init__(self, closed_until_ms: int, previous_closed_until_ms: int | None):
        self._closed_until_ms = closed_until_ms
        self._previous = previous_closed_until_ms
        self._late = beam.metrics.Metrics.counter(COMPONENT, "late_points")
        self._carried = beam.metrics.Metrics.counter(COMPONENT, "points_carried")

    def process(self, table: pa.Table):
        if table.num_rows == 0:
            return
        times = table.column("timestamp_ms").to_numpy()
        late = times < self._previous if self._previous is not None else np.zeros(len(times), dtype=bool)
        closing = (times < self._closed_until_ms) & ~late
        still_open = ~(late | closing)
        if closing.all():
            yield table
            return
        if closing.any():
            yield table.filter(pa.array(closing))
        if still_open.any():
            self._carried.inc(int(still_open.sum()))
            yield beam.pvalue.TaggedOutput(OPEN_POINTS, table.filter(pa.array(still_open)))
        if late.any():
            self._late.inc(int(late.sum()))
            for row in table.filter(pa.array(late)).to_pylist():
                yield beam.pvalue.TaggedOutput(streams.DEAD_LETTERS, _late_point(row, self._previous))


class SplitAtHorizon(beam.PTransform):
    """Point tables -> ``{"points": closing now, "open_points": still open, "dead_letters": late}``.

    A point belongs to the window holding its timestamp; that window closes in
    this cycle when it ends at or before ``closed_until_ms``. Points before
    ``previous_closed_until_ms`` belong to windows an earlier cycle evaluated.
    """

    def __init__(self, closed_until_ms: int, previous_closed_until_ms: int | None):
        super().__init__()
        self._fn = _Split(closed_until_ms, previous_closed_until_ms)

    def expand(self, tables):
        outputs = tables | "Split" >> beam.ParDo(self._fn).with_outputs(
            OPEN_POINTS, streams.DEAD_LETTERS, main=streams.POINTS
        )
        return {name: outputs[name] for name in (streams.POINTS, OPEN_POINTS, streams.DEAD_LETTERS)}


class WriteStagingFile(beam.PTransform):
    """A PCollection -> one file, written atomically once the PCollection is complete (empty: an empty file).

    ``encode(elements) -> str`` turns the whole collection into the file's text.
    """

    def __init__(self, path: str | Path, encode: Callable[[list], str]):
        super().__init__()
        self._path = str(path)
        self._encode = encode

    def expand(self, elements):
        path, encode = self._path, self._encode
        return (
            elements
            | "Gather" >> beam.combiners.ToList()
            | "Write" >> beam.Map(lambda items: write_text_atomically(path, encode(items)) or path)
        )


class WriteCarriedPoints(beam.PTransform):
    """Point tables -> one Parquet file (sorted by time), the next cycle's :class:`ReadCarriedPoints`."""

    def __init__(self, path: str | Path):
        super().__init__()
        self._path = str(path)

    def expand(self, tables):
        path = self._path
        return tables | "Gather" >> beam.combiners.ToList() | "Write" >> beam.Map(_write_carry, path)


def _write_carry(tables: list[pa.Table], path: str) -> str:
    parts = [conform(t, METRIC_SCHEMA).cast(METRIC_SCHEMA) for t in tables if t.num_rows]
    table = pa.concat_tables(parts) if parts else METRIC_SCHEMA.empty_table()
    table = table.sort_by([("timestamp_ms", "ascending")])
    write_atomically(path, lambda temporary: pq.write_table(table, temporary))
    return path


@dataclass(frozen=True)
class CycleSpec:
    """What :func:`pipelines.main.build_pipeline` needs to build one live cycle instead of a batch run.

    ``sources``: ``(integration name, source transform)`` pairs reading exactly the plan's input;
    ``staging``: the cycle's folder for the files the runner commits; ``closed_until_ms``: windows ending at
    or before it are evaluated now; ``previous_closed_until_ms``: the last cycle's; ``until_ms``: the silence
    horizon (default ``closed_until_ms``); ``carry``: the carry files to read (those holding a point of a
    window that closes now; the others wait untouched); ``rule_entries`` and
    ``context_events``: from the checkpoint.
    """

    sources: list[tuple[str, beam.PTransform]]
    window_ms: int
    run_key: str
    staging: str
    closed_until_ms: int
    previous_closed_until_ms: int | None
    until_ms: int | None
    carry: list[str]
    rule_entries: list = field(default_factory=list)
    context_events: list[Event] = field(default_factory=list)
    notify_policy_state: dict = field(default_factory=dict)  # the notification policy's, from the checkpoint

    def staged(self, name: str) -> str:
        """The path of one of this cycle's staging files."""
        return str(Path(self.staging) / name)
