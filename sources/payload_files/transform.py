"""``ReadFromPayloadFiles``: JSON-lines payload files -> points, events,
dead letters and health.

>>> outputs = pipeline | ReadFromPayloadFiles(config)          # doctest: +SKIP
>>> outputs["points"], outputs["events"], outputs["dead_letters"], outputs["health"]  # doctest: +SKIP

Each line is one payload of the public contract (:mod:`airis_mon.payloads`).
A line that is not JSON, or a payload or point that does not validate,
becomes a dead letter with the reason and the original text; nothing stops
the run. One :class:`~airis_mon.schema.HealthRecord` per payload ``source``
and bundle says how many records were read and rejected.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

import apache_beam as beam

from airis_mon import streams
from airis_mon.batching import RowBuffer
from airis_mon.beamutil import finish_bundle_output
from airis_mon.payloads import parse_payload
from airis_mon.schema import RAW_POINT_SCHEMA, DeadLetter, HealthRecord
from sources.payload_files.config import PayloadFilesConfig

__all__ = ["ReadFromPayloadFiles"]

COMPONENT = "payload_files"


class _ParsePayloadLines(beam.DoFn):
    """(file name, line) -> Arrow point batches, events, dead letters, health."""

    def __init__(self, config: PayloadFilesConfig):
        self._config = config
        self._lines = beam.metrics.Metrics.counter(COMPONENT, "lines_read")
        self._rejected = beam.metrics.Metrics.counter(COMPONENT, "records_rejected")

    def start_bundle(self):
        self._buffer = RowBuffer(RAW_POINT_SCHEMA, self._config.batch_rows)
        self._started = time.monotonic()
        self._good: dict[str, int] = defaultdict(int)
        self._bad: dict[str, int] = defaultdict(int)
        self._newest: dict[str, int] = defaultdict(int)

    def process(self, file_and_line):
        file_name, line = file_and_line
        if not line.strip():
            return
        self._lines.inc()
        component = f"{COMPONENT}:{self._config.name}"
        try:
            payload = json.loads(line)
        except ValueError as error:
            self._rejected.inc()
            self._bad[self._config.name] += 1  # the file source's own health
            yield beam.pvalue.TaggedOutput(
                streams.DEAD_LETTERS,
                DeadLetter(0, component, f"line is not JSON ({error.msg}) in {file_name}", json.dumps(line)),
            )
            return
        points, events, dead = parse_payload(payload, component)
        source = payload.get("source") if isinstance(payload, dict) else None
        source = source if isinstance(source, str) and source else "(unknown)"
        self._good[source] += len(points) + len(events)
        self._bad[source] += len(dead)
        self._rejected.inc(len(dead))
        times = [points[0][0]] if points else []  # all points of a payload share its timestamp
        times += [event.timestamp_ms for event in events]
        self._newest[source] = max([self._newest[source], *times])
        for dead_letter in dead:
            yield beam.pvalue.TaggedOutput(streams.DEAD_LETTERS, dead_letter)
        for event in events:
            yield beam.pvalue.TaggedOutput(streams.EVENTS, event)
        yield from self._buffer.extend(points)

    def finish_bundle(self):
        if len(self._buffer):
            yield finish_bundle_output(self._buffer.flush())
        now_ms = int(time.time() * 1000)
        newest_overall = max(self._newest.values(), default=0)
        latency_ms = (time.monotonic() - self._started) * 1000
        for source in sorted(set(self._good) | set(self._bad)):
            good, bad = self._good[source], self._bad[source]
            ratio = bad / max(good + bad, 1)
            ok = ratio <= self._config.max_rejected_ratio
            message = f"{good + bad} records read, {bad} rejected ({ratio:.1%})"
            newest = self._newest.get(source, 0) or newest_overall
            # Recorded data: the health is as of the newest record's event time,
            # so that re-reading the same files gives the same health history.
            record = HealthRecord(
                timestamp_ms=newest or now_ms,
                integration=source,
                ok=ok,
                message=message,
                latency_ms=latency_ms,
                freshness_ms=now_ms - newest if newest else -1,
                records=good,
            )
            yield finish_bundle_output(beam.pvalue.TaggedOutput(streams.HEALTH, record))


class ReadFromPayloadFiles(beam.PTransform):
    """Read the configured payload files; see the module docstring."""

    def __init__(self, config: PayloadFilesConfig):
        super().__init__()
        if not config.files():
            raise ValueError(f"{config.name}: no file matches {config.paths}")
        self._config = config

    def expand(self, pbegin):
        outputs = (
            pbegin
            | "ListFiles" >> beam.Create(self._config.files())
            | "ReadLines" >> beam.io.ReadAllFromText(with_filename=True)
            | "Parse"
            >> beam.ParDo(_ParsePayloadLines(self._config)).with_outputs(
                streams.EVENTS, streams.DEAD_LETTERS, streams.HEALTH, main=streams.POINTS
            )
        )
        return {name: outputs[name] for name in streams.SOURCE_OUTPUTS}
