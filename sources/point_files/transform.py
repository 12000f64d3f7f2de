"""``ReadFromPointFiles``: Parquet files of raw points -> point batches, dead letters, health.

>>> outputs = pipeline | ReadFromPointFiles(config)          # doctest: +SKIP
>>> outputs["points"], outputs["dead_letters"], outputs["health"]  # doctest: +SKIP

Files are read in record batches of ``batch_rows`` rows, so memory stays
bounded by the batch size whatever the file size. The files are spread over
workers (one file is read by one worker). A file that is not Parquet or lacks
a column of :data:`~airis_mon.schema.RAW_POINT_SCHEMA` becomes one dead letter
(the reason and the path) and an unhealthy :class:`~airis_mon.schema.HealthRecord`;
the run goes on. Points themselves are checked by normalization, like any
source's. Each readable file gives one healthy record stamped with its newest
point's time, so re-reading the same files gives the same health history.
Beam counters ``files_read`` and ``points_read`` are kept in namespace
``point_files``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airis_mon import streams
from airis_mon.progress import count_read
from airis_mon.schema import RAW_POINT_SCHEMA, DeadLetter, HealthRecord
from airis_mon.timeutil import epoch_array_to_ms
from sources.point_files.config import PointFilesConfig

__all__ = ["ReadFromPointFiles"]

COMPONENT = "point_files"


class _ReadPointFile(beam.DoFn):
    """Parquet path -> RAW_POINT_SCHEMA tables of ``batch_rows`` rows, plus one health record."""

    def __init__(self, name: str, batch_rows: int):
        self._name = name
        self._batch_rows = batch_rows
        self._files = beam.metrics.Metrics.counter(COMPONENT, "files_read")
        self._points = beam.metrics.Metrics.counter(COMPONENT, "points_read")
        self._read = count_read(name, "points")

    def process(self, path: str) -> Iterator:
        started = time.monotonic()
        try:
            parquet = pq.ParquetFile(path)
            missing = [name for name in RAW_POINT_SCHEMA.names if name not in parquet.schema_arrow.names]
            if missing:
                raise ValueError(f"no column {', '.join(missing)} (expected {', '.join(RAW_POINT_SCHEMA.names)})")
            rows, newest_ms = 0, 0
            for batch in parquet.iter_batches(batch_size=self._batch_rows, columns=RAW_POINT_SCHEMA.names):
                table = pa.Table.from_batches([batch]).select(RAW_POINT_SCHEMA.names).cast(RAW_POINT_SCHEMA)
                rows += table.num_rows
                newest = pc.max(table.column("timestamp")).as_py()
                if newest is not None and newest == newest:  # not NaN
                    newest_ms = max(newest_ms, int(epoch_array_to_ms(pa.array([newest]).to_numpy())[0]))
                yield table
        except (OSError, ValueError, pa.ArrowException) as error:
            reason = f"{path}: not a readable point file ({type(error).__name__}: {error})"
            yield beam.pvalue.TaggedOutput(
                streams.DEAD_LETTERS, DeadLetter(0, f"{COMPONENT}:{self._name}", reason, json.dumps({"path": path}))
            )
            yield beam.pvalue.TaggedOutput(streams.HEALTH, self._health(False, reason, started, 0, 0))
            return
        self._files.inc()
        self._points.inc(rows)
        self._read.inc(rows)
        message = f"{rows} points read from {path}"
        yield beam.pvalue.TaggedOutput(streams.HEALTH, self._health(True, message, started, rows, newest_ms))

    def _health(self, ok: bool, message: str, started: float, rows: int, newest_ms: int) -> HealthRecord:
        now_ms = int(time.time() * 1000)
        return HealthRecord(
            timestamp_ms=newest_ms or now_ms,
            integration=self._name,
            ok=ok,
            message=message,
            latency_ms=(time.monotonic() - started) * 1000,
            freshness_ms=now_ms - newest_ms if newest_ms else -1,
            records=rows,
        )


class ReadFromPointFiles(beam.PTransform):
    """Read the configured Parquet point files; see the module docstring."""

    def __init__(self, config: PointFilesConfig):
        super().__init__()
        self._config = config
        self._files = config.existing_files()  # listed once, when the graph is built

    def expand(self, pbegin):
        config = self._config
        outputs = (
            pbegin
            | "ListFiles" >> beam.Create(self._files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadFiles"
            >> beam.ParDo(_ReadPointFile(config.name, config.batch_rows)).with_outputs(
                streams.EVENTS, streams.DEAD_LETTERS, streams.HEALTH, main=streams.POINTS
            )
        )
        return {name: outputs[name] for name in streams.SOURCE_OUTPUTS}  # point files carry no events
