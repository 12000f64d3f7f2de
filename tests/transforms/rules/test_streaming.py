"""One rule core, two runners: streaming (TestStream) and batch give the same alerts."""

import json

import apache_beam as beam
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from airis_mon.schema import Alert, Metric, metrics_to_table
from tests.transforms.rules.scenarios import MIN, T0, no_data_rule, threshold_rule
from transforms.aggregate import aggregate_table
from transforms.rules.batch import EvaluateRules
from transforms.rules.streaming import EvaluateRulesStreaming

TAGS = '{"environment":"prod","model_name":"fraud"}'
# p95 per minute of a flapping, recovering series: hysteresis, for, keep_firing_for and repeat all matter.
VALUES = [5, 12, 13, 9, 12, 14, 7, 4, 4, 12, 12, 12, 12, 12, 3, 3, 3, 15, 15, 2, 2, 2]
RULE = threshold_rule(
    metric="latency", recovery_threshold=6, keep_firing_for=60, repeat_interval=180, allowed_lateness=120,
    **{"for": 2},
)  # fmt: skip


def window_table(minute: int) -> pa.Table:
    """The aggregate row of one minute (3 points with the same value)."""
    points = [
        Metric(T0 + minute * MIN + s * 1000, "tf", "latency", float(VALUES[minute]), "ms", TAGS) for s in (0, 20, 40)
    ]
    return aggregate_table(metrics_to_table(points), 60_000)


def at(minute: float) -> float:
    return (T0 + minute * MIN) / 1000


def streaming_options() -> PipelineOptions:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return options


def batch_alerts(minutes, tmp_path) -> list[Alert]:
    """Run the batch runner (FnApiRunner) and read its alerts back from a file."""
    out = tmp_path / "batch-alerts"
    with TestPipeline() as pipeline:
        _ = (
            pipeline
            | beam.Create([window_table(m) for m in minutes])
            | EvaluateRules([RULE], 60)
            | beam.Map(lambda alert: json.dumps(alert._asdict()))
            | beam.io.WriteToText(str(out))
        )
    lines = [line for path in tmp_path.glob("batch-alerts*") for line in path.read_text().splitlines()]
    return [Alert(**json.loads(line)) for line in lines]


def test_streaming_with_out_of_order_and_late_windows_equals_batch(tmp_path):
    too_late = 3  # arrives long after its window was evaluated
    expected = batch_alerts([m for m in range(len(VALUES)) if m != too_late], tmp_path)
    assert [a.notification for a in expected].count("trigger") >= 2  # the scenario is not trivial

    def element(minute):
        return TimestampedValue(window_table(minute), at(minute + 1))

    stream = (
        TestStream()
        .advance_watermark_to(at(0))
        .add_elements([element(1), element(0), element(2)])  # out of order
        .advance_watermark_to(at(6))
        .add_elements([element(5), element(6), element(4)])  # 4 and 5 are late but within allowed_lateness
        .advance_watermark_to(at(9))
        .add_elements([element(too_late)])  # evaluated at minute 4 + 2 = 6: beyond allowed_lateness
        .add_elements([element(8), element(7)])  # behind the watermark, within allowed_lateness
    )
    for minute in range(9, len(VALUES)):
        stream = stream.add_elements([element(minute)]).advance_watermark_to(at(minute + 1))
    # Let event time pass the last window's allowed lateness before the stream ends: what timers
    # emit once the watermark is at infinity is late for every downstream window (assert_that's too).
    stream = stream.advance_watermark_to(at(len(VALUES) + 3)).advance_watermark_to_infinity()

    with TestPipeline(options=streaming_options()) as pipeline:
        outputs = pipeline | stream | EvaluateRulesStreaming([RULE], 60)
        assert_that(outputs["alerts"], equal_to(expected), label="same alerts as batch")
        assert_that(
            outputs["dead_letters"]
            | beam.Map(lambda d: (d.component, d.reason.split(":")[0], json.loads(d.original)["key"][0])),
            equal_to([("rules:latency", "late data", "latency")]),
            label="too late goes to the dead letter",
        )


def test_streaming_no_data_fires_from_a_timer_when_nothing_arrives():
    rule = no_data_rule(metric="latency", absent_for="5m")
    stream = (
        TestStream()
        .add_elements([TimestampedValue(window_table(m), at(m + 1)) for m in range(3)])
        .advance_watermark_to(at(20))
        .add_elements([TimestampedValue(window_table(20), at(21))])
        .advance_watermark_to(at(30))
        .advance_watermark_to_infinity()
    )
    with TestPipeline(options=streaming_options()) as pipeline:
        outputs = pipeline | stream | EvaluateRulesStreaming([rule], 60)
        assert_that(
            outputs["alerts"] | beam.Map(lambda a: (a.notification, (a.timestamp_ms - T0) // MIN)),
            equal_to([("trigger", 8), ("resolve", 20), ("trigger", 26)]),  # silent again after minute 21
        )
