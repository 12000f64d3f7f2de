"""Parsing JSON lines of ingestion payloads: shared by every source that
reads payload files (recordings, the bundled sample, the gateway spool).

Each line is one payload of the public contract (:mod:`airis_mon.payloads`).
A line that is not JSON, or a payload or point that does not validate,
becomes a dead letter with the reason and the original text; nothing stops
the run. Points are batched into Arrow tables of ``batch_rows`` rows. One
:class:`~airis_mon.schema.HealthRecord` per payload ``source`` and bundle says
how many records were read and rejected (unhealthy above ``max_rejected_ratio``),
stamped with the newest record's event time so re-reading the same files gives
the same health history. Beam counters ``lines_read`` and ``records_rejected``
are kept in the namespace given as ``component``.
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

__all__ = ["ParsePayloadLines"]


class _ParseLines(beam.DoFn):
    """(file name, line) -> Arrow point batches, events, dead letters, health."""

    def __init__(self, name: str, component: str, batch_rows: int, max_rejected_ratio: float):
        self._name = name
        self._component = f"{component}:{name}"
        self._batch_rows = batch_rows
        self._max_rejected_ratio = max_rejected_ratio
        self._lines = beam.metrics.Metrics.counter(component, "lines_read")
        self._rejected = beam.metrics.Metrics.counter(component, "records_rejected")

    def start_bundle(self):
        self._buffer = RowBuffer(RAW_POINT_SCHEMA, self._batch_rows)
        self._started = time.monotonic()
        self._good: dict[str, int] = defaultdict(int)
        self._bad: dict[str, int] = defaultdict(int)
        self._newest: dict[str, int] = defaultdict(int)

    def process(self, file_and_line):
        file_name, line = file_and_line
        if not line.strip():
            return
        self._lines.inc()
        component = self._component
        try:
            payload = json.loads(line)
        except ValueError as error:
            self._rejected.inc()
            self._bad[self._name] += 1  # the file source's own health
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
            ok = ratio <= self._max_rejected_ratio
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


class ParsePayloadLines(beam.PTransform):
    """``(file name, line)`` pairs -> the dict of :mod:`airis_mon.streams` outputs."""

    def __init__(self, name: str, component: str, batch_rows: int, max_rejected_ratio: float):
        super().__init__()
        self._fn = _ParseLines(name, component, batch_rows, max_rejected_ratio)

    def expand(self, lines):
        outputs = lines | "ParseLines" >> beam.ParDo(self._fn).with_outputs(
            streams.EVENTS, streams.DEAD_LETTERS, streams.HEALTH, main=streams.POINTS
        )
        return {name: outputs[name] for name in streams.SOURCE_OUTPUTS}
