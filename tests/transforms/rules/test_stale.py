"""A firing threshold alert whose series stops reporting resolves (the silence is a gap), in every runner."""

import json

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from airis_mon.schema import Metric, metrics_to_table
from tests.transforms.rules.scenarios import GROUP, MIN, T0, minute, series, threshold_rule, timeline
from tests.transforms.rules.test_streaming import at, streaming_options
from transforms.aggregate import aggregate_table
from transforms.rules.batch import EvaluateRules
from transforms.rules.engine import evaluate
from transforms.rules.streaming import EvaluateRulesStreaming

RULE = threshold_rule(metric="latency", keep_firing_for=120, **{"for": 2})
STOPPED = '{"model_name":"stopped"}'
ALIVE = '{"model_name":"alive"}'


def test_engine_resolves_a_silent_firing_alert_on_the_horizon_after_keep_firing_for():
    windows = series(20, 20, 20)  # firing from minute 2; then nothing more
    _, state = evaluate(RULE, GROUP, windows)
    assert state.phase == "firing"
    alerts, still = evaluate(RULE, GROUP, [], state, until_ms=T0 + 4 * MIN)  # 1 min of silence < keep_firing_for
    assert alerts == [] and still.phase == "firing"
    alerts, done = evaluate(RULE, GROUP, [], state, until_ms=T0 + 6 * MIN)
    assert timeline(alerts) == [("resolve", 5.0)]  # last breach (minute 3) + keep_firing_for (2 min)
    assert done.phase == "inactive" and done.evaluated_until_ms == T0 + 3 * MIN
    # A window arriving later sees the same gap and emits nothing twice.
    again, _ = evaluate(RULE, GROUP, series(1, start=8), done, until_ms=T0 + 9 * MIN)
    assert again == []


def test_pending_ends_on_the_horizon_without_an_alert():
    _, state = evaluate(RULE, GROUP, series(20))
    assert state.phase == "pending"
    alerts, after = evaluate(RULE, GROUP, [], state, until_ms=T0 + 3 * MIN)
    assert alerts == [] and after.phase == "inactive"


def _table(tags: str, minutes, value: float) -> pa.Table:
    points = [Metric(T0 + m * MIN + 10_000, "tf", "latency", value, "ms", tags) for m in minutes]
    return aggregate_table(metrics_to_table(points), 60_000)


def test_batch_resolves_a_series_that_stopped_while_others_go_on(tmp_path):
    out = tmp_path / "alerts"
    with TestPipeline() as pipeline:
        _ = (
            pipeline
            | beam.Create([_table(STOPPED, range(0, 4), 20.0), _table(ALIVE, range(0, 12), 1.0)])
            | EvaluateRules([RULE], 60)
            | beam.Map(lambda a: json.dumps([a.group, a.notification, minute(a.timestamp_ms)]))
            | beam.io.WriteToText(str(out))
        )
    lines = sorted(json.loads(line) for p in tmp_path.glob("alerts*") for line in p.read_text().splitlines())
    assert lines == [[STOPPED, "resolve", 6.0], [STOPPED, "trigger", 2.0]]  # resolved at minute 4 + 2


def test_backtest_horizon_resolves_a_series_silent_until_the_end(tmp_path):
    out = tmp_path / "alerts"
    with TestPipeline() as pipeline:
        _ = (
            pipeline
            | beam.Create([_table(STOPPED, range(0, 4), 20.0)])
            | EvaluateRules([RULE], 60, until_ms=T0 + 30 * MIN)  # pipelines.backtest --end
            | beam.Map(lambda a: json.dumps([a.notification, minute(a.timestamp_ms)]))
            | beam.io.WriteToText(str(out))
        )
    lines = [json.loads(line) for p in tmp_path.glob("alerts*") for line in p.read_text().splitlines()]
    assert sorted(lines) == [["resolve", 6.0], ["trigger", 2.0]]


def test_streaming_resolves_a_silent_series_from_a_timer():
    def element(tags, m, value):
        return TimestampedValue(_table(tags, [m], value), at(m + 1))

    stream = TestStream()
    for m in range(12):
        elements = [element(ALIVE, m, 1.0)] + ([element(STOPPED, m, 20.0)] if m < 4 else [])
        stream = stream.add_elements(elements).advance_watermark_to(at(m + 1))
    stream = stream.advance_watermark_to(at(20)).advance_watermark_to_infinity()
    with TestPipeline(options=streaming_options()) as pipeline:
        outputs = pipeline | stream | EvaluateRulesStreaming([RULE], 60)
        assert_that(
            outputs["alerts"] | beam.Map(lambda a: (a.group, a.notification, minute(a.timestamp_ms))),
            equal_to([(STOPPED, "trigger", 2.0), (STOPPED, "resolve", 6.0)]),
        )
