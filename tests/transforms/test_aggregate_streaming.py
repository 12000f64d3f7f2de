"""Streaming aggregation under TestStream: event-time windows, the watermark, allowed lateness, late panes."""

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from airis_mon.schema import Metric, metrics_to_table
from transforms.aggregate import AGGREGATE_PARTS, Aggregate

T0 = 1_795_824_000_000  # 2026-11-28T00:00:00Z
MIN = 60_000


def batch(*points: tuple[float, float]) -> TimestampedValue:
    """Points (minute, value) of one series, as one batch; its own timestamp does not matter."""
    table = metrics_to_table(
        [Metric(T0 + int(m * MIN), "tf", "latency", v, "ms", '{"model_name":"a"}') for m, v in points]
    )
    return TimestampedValue(table, T0 / 1000)


def at(minute: float) -> float:
    return (T0 + minute * MIN) / 1000


def test_windows_fire_at_the_watermark_late_points_make_a_late_pane_and_too_late_ones_are_dropped():
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    stream = (
        TestStream()
        .advance_watermark_to(at(0))
        .add_elements([batch((0.1, 1.0), (0.5, 3.0), (1.2, 10.0))])  # two windows from one batch
        .add_elements([batch((1.9, 20.0))])
        .advance_watermark_to(at(2.5))  # windows 0 and 1 are complete: on-time panes
        .add_elements([batch((1.7, 30.0))])  # late for window 1, within the 2 minutes of allowed lateness
        .advance_watermark_to(at(3.5))
        .add_elements([batch((0.3, 99.0))])  # window 0 ended at minute 1: 1 + 2 < 3.5, too late: dropped
        .add_elements([batch((3.1, 5.0))])
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=options) as pipeline:
        aggregated = pipeline | stream | Aggregate(60, num_shards=2, keep_points=True, streaming=True,
                                                   allowed_lateness_s=120)  # fmt: skip
        rows = aggregated[AGGREGATE_PARTS] | beam.FlatMap(
            lambda part: [(part[0].split("-", 1)[1], (r["window_start_ms"] - T0) // MIN, r["count"], r["max"])
                          for r in part[1].to_pylist()]
        )  # fmt: skip
        assert_that(rows, equal_to([
            (f"w{T0}-p0", 0, 2, 3.0),             # on time
            (f"w{T0 + MIN}-p0", 1, 2, 20.0),      # on time
            (f"w{T0 + MIN}-p1", 1, 1, 30.0),      # the late point, in its own pane (discarding)
            (f"w{T0 + 3 * MIN}-p0", 3, 1, 5.0),
        ]))  # fmt: skip
