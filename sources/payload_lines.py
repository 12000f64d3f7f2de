"""Parsing JSON lines of ingestion payloads: shared by every source that
reads payload files (recordings, the bundled sample, the gateway spool).

Each line is one payload of the public contract (:mod:`airis_mon.payloads`).
A line that is not JSON (or nested too deeply to decode), a payload or point
that does not validate (a timestamp outside the accepted range ``timestamps``,
a boolean timestamp, a NaN or infinite number ...), a point Arrow cannot hold,
or a payload whose parsing fails in any other way becomes a dead letter with
the reason and the original; nothing stops the run and the lines after it are
processed. Points are batched into Arrow tables of ``batch_rows`` rows. One
:class:`~airis_mon.schema.HealthRecord` per payload ``source`` and bundle says
how many records were read and rejected (unhealthy above ``max_rejected_ratio``),
and one for the reading integration itself counts its lines and those that were not JSON,
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
from airis_mon.payloads import TimestampRange, parse_payload, point_dead_letter, safe_text
from airis_mon.progress import count_read
from airis_mon.schema import RAW_POINT_SCHEMA, DeadLetter, HealthRecord

__all__ = ["ParsePayloadLines"]


class _ParseLines(beam.DoFn):
    """(file name, line) -> Arrow point batches, events, dead letters, health."""

    def __init__(
        self,
        name: str,
        component: str,
        batch_rows: int,
        max_rejected_ratio: float,
        timestamps: TimestampRange | None = None,
        unwrap=None,
        read_unit: str = "payload_lines",
    ):
        self._unwrap = unwrap
        self._read = count_read(name, read_unit)
        self._name = name
        self._component = f"{component}:{name}"
        self._batch_rows = batch_rows
        self._max_rejected_ratio = max_rejected_ratio
        self._timestamps = timestamps or TimestampRange()
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
        self._read.inc()
        try:
            payload = json.loads(line)
        except (ValueError, RecursionError) as error:
            why = error.msg if isinstance(error, json.JSONDecodeError) else "nested too deeply to decode"
            yield self._reject_line(line, f"line is not JSON ({why}) in {file_name}")
            return
        self._good[self._name] += 1  # the reading integration's own health: lines decoded, of lines read
        if self._unwrap is None:
            yield from self._payload(payload, line, file_name)
            return
        payloads, ack = self._unwrap(payload)
        for one in payloads:
            for output in self._payload(one, line, file_name):
                if (
                    ack is not None
                    and isinstance(output, beam.pvalue.TaggedOutput)
                    and output.tag == streams.DEAD_LETTERS
                ):
                    output = beam.pvalue.TaggedOutput(streams.DEAD_LETTERS, output.value._replace(
                        reason=f"{output.value.reason} (acknowledged as {ack})"))  # fmt: skip
                yield output

    def _payload(self, payload, line: str, file_name: str):
        """The outputs of one decoded payload (read from ``line`` of ``file_name``)."""
        component = self._component
        try:
            points, events, dead = parse_payload(payload, component, self._timestamps)
        except Exception as error:  # a bug or an input nobody foresaw: one dead letter, the run goes on
            yield self._reject_line(line, f"payload could not be parsed ({type(error).__name__}) in {file_name}")
            return
        source = payload.get("source") if isinstance(payload, dict) else None
        source = safe_text(source) if isinstance(source, str) and source else "(unknown)"
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
        yield from self._unfit_points()

    def _reject_line(self, line: str, reason: str) -> beam.pvalue.TaggedOutput:
        """The dead letter of a whole line; its original is the line's text (as a JSON string)."""
        self._rejected.inc()
        self._bad[self._name] += 1  # the file source's own health
        dead_letter = DeadLetter(0, self._component, safe_text(reason), json.dumps(line))
        return beam.pvalue.TaggedOutput(streams.DEAD_LETTERS, dead_letter)

    def _unfit_points(self):
        """Dead letters of the points Arrow could not hold (counted bad, no longer good)."""
        for row, reason in self._buffer.take_rejected():
            source = safe_text(row[1]) if isinstance(row[1], str) and row[1] else "(unknown)"
            self._good[source] -= 1
            self._bad[source] += 1
            self._rejected.inc()
            yield beam.pvalue.TaggedOutput(streams.DEAD_LETTERS, point_dead_letter(row, reason, self._component))

    def finish_bundle(self):
        if len(self._buffer):
            table = self._buffer.flush()
            if table.num_rows:
                yield finish_bundle_output(table)
            for dead_letter in self._unfit_points():
                yield finish_bundle_output(dead_letter)
        now_ms = int(time.time() * 1000)
        newest_overall = max(self._newest.values(), default=0)
        latency_ms = (time.monotonic() - self._started) * 1000
        for source in sorted(set(self._good) | set(self._bad)):
            good, bad = self._good[source], self._bad[source]
            ratio = bad / max(good + bad, 1)
            ok = ratio <= self._max_rejected_ratio
            over = "" if ok else f" > max_rejected_ratio {self._max_rejected_ratio:.1%}"
            message = f"{good + bad} records read, {bad} rejected ({ratio:.1%}{over})"
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
    """``(file name, line)`` pairs -> the dict of :mod:`airis_mon.streams` outputs.

    ``timestamps`` is the accepted range of payload timestamps (the source
    config's ``timestamps``; the default range when ``None``). ``unwrap``, when
    given, maps a decoded line to ``(payloads, ack id or None)`` (the gateway
    spool's envelopes); a dead letter of an acknowledged payload names its ack id. ``read_unit``: what one
    line is, for the "records read" counter (:data:`airis_mon.progress.READ_UNITS`).
    """

    def __init__(
        self,
        name: str,
        component: str,
        batch_rows: int,
        max_rejected_ratio: float,
        timestamps: TimestampRange | None = None,
        unwrap=None,
        read_unit: str = "payload_lines",
    ):
        super().__init__()
        self._fn = _ParseLines(name, component, batch_rows, max_rejected_ratio, timestamps, unwrap, read_unit)

    def expand(self, lines):
        outputs = lines | "ParseLines" >> beam.ParDo(self._fn).with_outputs(
            streams.EVENTS, streams.DEAD_LETTERS, streams.HEALTH, main=streams.POINTS
        )
        return {name: outputs[name] for name in streams.SOURCE_OUTPUTS}
