"""Small Beam helpers shared by sources, transforms and sinks."""

from __future__ import annotations

import time
from pathlib import PurePosixPath

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

__all__ = ["InArrivalWindows", "finish_bundle_output", "windowed_name", "windowed_part_name"]


def finish_bundle_output(output):
    """Wrap a value (or a ``TaggedOutput``) for emission from ``finish_bundle``,
    which must say the window: the global window, at the minimum timestamp."""
    if isinstance(output, beam.pvalue.TaggedOutput):
        return beam.pvalue.TaggedOutput(output.tag, WindowedValue(output.value, MIN_TIMESTAMP, [GlobalWindow()]))
    return WindowedValue(output, MIN_TIMESTAMP, [GlobalWindow()])


def _stamp_arrival(element):
    return beam.window.TimestampedValue(element, time.time())


class InArrivalWindows(beam.PTransform):
    """Streaming: elements re-stamped with their arrival (processing) time, in fixed windows of ``seconds``.

    For rows that are gathered per window (stored rows, the health report): some arrive stamped at the
    minimum timestamp (emitted from ``finish_bundle``) and would otherwise be late for every window.
    """

    def __init__(self, seconds: int):
        super().__init__()
        self._seconds = seconds

    def expand(self, pcoll):
        return (
            pcoll
            | "StampArrival" >> beam.Map(_stamp_arrival)
            | "ArrivalWindows" >> beam.WindowInto(beam.window.FixedWindows(self._seconds))
        )


def windowed_name(name: str, window) -> str:
    """``name`` with ``-wSTART_MS`` before its extension for a non-global window (``part-x.jsonl`` ->
    ``part-x-w1795824000000.jsonl``); unchanged in the global window."""
    if isinstance(window, GlobalWindow):
        return name
    path = PurePosixPath(name)
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return str(path.with_name(f"{stem}-w{int(window.start.micros // 1000)}{suffix}"))


def windowed_part_name(name: str, window, pane) -> str:
    """A storage part name for one window and pane: ``s003-w1795824000000-p0``; ``name`` in the global window."""
    if isinstance(window, GlobalWindow):
        return name
    return f"{windowed_name(name, window)}-p{pane.index}"
