"""Small Beam helpers shared by sources, transforms and sinks."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

__all__ = ["finish_bundle_output"]


def finish_bundle_output(output):
    """Wrap a value (or a ``TaggedOutput``) for emission from ``finish_bundle``,
    which must say the window: the global window, at the minimum timestamp."""
    if isinstance(output, beam.pvalue.TaggedOutput):
        return beam.pvalue.TaggedOutput(output.tag, WindowedValue(output.value, MIN_TIMESTAMP, [GlobalWindow()]))
    return WindowedValue(output, MIN_TIMESTAMP, [GlobalWindow()])
