"""What a running job has done so far: Beam counters that also feed a progress line on a terminal.

A :class:`Tally` is a Beam counter (the run summary and Dataflow read those) that also adds to this
process's running totals. The local runners execute the graph in this process, so :class:`ProgressLine`
can show the totals while the job runs::

    read 62,582 · points 141,441 · windows 32,006 · alerts 2 · 6.1 s

It draws only when stderr is a terminal, at most twice a second, and erases itself when the job ends (the
summary follows). With ``--direct_running_mode=multi_processing`` or on a service runner the work happens
in other processes, the totals stay at zero and the line shows the elapsed time only.

Every source counts what it read in the Beam namespace ``read:NAME`` (its integration), under a counter
named for the unit (:data:`READ_UNITS`), so the summary reports each integration in its own unit.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import TextIO

import apache_beam as beam

__all__ = ["READ_NAMESPACE_PREFIX", "READ_UNITS", "ProgressLine", "Tally", "count_read", "snapshot"]

#: Namespace prefix of the per-integration "records read" counters: ``read:NAME``.
READ_NAMESPACE_PREFIX = "read:"
#: Counter names a source may count its input in, and how the summary words them.
READ_UNITS = {
    "payload_lines": "payload lines",
    "requests": "acknowledged requests",
    "points": "points",
    "records": "records",
    "polls": "polls",
}
#: The totals the progress line shows, in order, and their labels.
SHOWN = (("read", "read"), ("points", "points"), ("windows", "windows"), ("alerts", "alerts"))

_totals: Counter[str] = Counter()
_lock = threading.Lock()


def _add(key: str, amount: int) -> None:
    with _lock:
        _totals[key] += amount


def snapshot() -> dict[str, int]:
    """This process's running totals (``read``, ``points``, ``windows``, ``alerts``)."""
    with _lock:
        return dict(_totals)


class Tally:
    """A Beam counter ``namespace/name`` whose increments also add to the running total ``shown_as``."""

    def __init__(self, namespace: str, name: str, shown_as: str | None = None):
        self._counter = beam.metrics.Metrics.counter(namespace, name)
        self._shown_as = shown_as

    def inc(self, amount: int = 1) -> None:
        self._counter.inc(amount)
        if self._shown_as and amount:
            _add(self._shown_as, amount)


def count_read(integration: str, unit: str) -> Tally:
    """The "records read" counter of one integration, in ``unit`` (a key of :data:`READ_UNITS`)."""
    if unit not in READ_UNITS:
        raise ValueError(f"unit {unit!r} is not one of {', '.join(READ_UNITS)}")
    return Tally(READ_NAMESPACE_PREFIX + integration, unit, shown_as="read")


class ProgressLine:
    """A context manager drawing the running totals on ``stream`` while the block runs (terminals only)."""

    def __init__(self, label: str, stream: TextIO | None = None, interval_s: float = 0.5):
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._width = 0
        self.enabled = bool(getattr(self._stream, "isatty", lambda: False)())

    def line(self) -> str:
        """The text drawn now: the label, each total seen so far, the elapsed seconds."""
        totals = snapshot()
        parts = [f"{label} {totals[key]:,}" for key, label in SHOWN if totals.get(key)]
        return f"{self._label}: " + " · ".join([*parts, f"{time.monotonic() - self._started:.1f} s"])

    def _draw(self) -> None:
        """Draw at once (a run shorter than the interval still shows its line), then every interval."""
        while True:
            text = self.line()
            self._stream.write("\r" + text.ljust(self._width))
            self._stream.flush()
            self._width = len(text)
            if self._stop.wait(self._interval_s):
                return

    def __enter__(self) -> ProgressLine:
        self._started = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._draw, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            text = self.line()  # the final totals, drawn once even when the run was shorter than the interval
            self._stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            if self._width:
                self._stream.write("\r" + " " * self._width + "\r")
                self._stream.flush()
