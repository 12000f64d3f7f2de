"""No-data rules: a silent integration is an incident."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.schema import Metric, metrics_to_table
from tests.transforms.rules.scenarios import GROUP, MIN, T0, minute, no_data_rule, series, timeline
from transforms.aggregate import aggregate_table
from transforms.rules.batch import EvaluateRules
from transforms.rules.engine import evaluate


def test_a_silence_inside_the_data_fires_late_and_resolves_when_data_returns():
    windows = series(1, 1, None, None, None, None, None, None, 1, 1)  # silent from minute 2 to 8
    alerts, _ = evaluate(no_data_rule(absent_for="5m"), GROUP, windows, until_ms=T0 + 10 * MIN)
    assert timeline(alerts) == [("trigger", 7), ("resolve", 8)]
    trigger, resolve = alerts
    assert minute(trigger.starts_at_ms) == 2 and trigger.current_value == 300.0
    assert resolve.duration_s == 360.0 and trigger.id == resolve.id
    assert trigger.summary.startswith("silent: no m data for 300 s")


def test_a_short_silence_is_not_an_incident():
    assert (
        evaluate(no_data_rule(absent_for="5m"), GROUP, series(1, None, None, None, 1), until_ms=T0 + 5 * MIN)[0] == []
    )


def test_data_that_never_comes_back_fires_at_the_horizon_and_stays_firing():
    rule = no_data_rule(absent_for=300)
    first, state = evaluate(rule, GROUP, series(1, 1), until_ms=T0 + 4 * MIN)
    assert first == []
    second, state = evaluate(rule, GROUP, [], state, until_ms=T0 + 7 * MIN)
    assert timeline(second) == [("trigger", 7)]
    assert evaluate(rule, GROUP, [], state, until_ms=T0 + 60 * MIN)[0] == []  # never twice
    resolved, _ = evaluate(rule, GROUP, series(1, start=61), state, until_ms=T0 + 62 * MIN)
    assert timeline(resolved) == [("resolve", 61)]


def test_batch_runner_uses_the_end_of_the_data_as_horizon():
    points = [Metric(T0 + i * MIN, "aws", "invocations", 5.0, "count", '{"endpoint_name":"a"}') for i in range(30)]
    points += [Metric(T0 + i * MIN, "aws", "invocations", 5.0, "count", '{"endpoint_name":"b"}') for i in range(10)]
    table = aggregate_table(metrics_to_table(points), 60_000)
    rule = no_data_rule(metric="invocations", group_by=["endpoint_name"], absent_for="10m")
    with TestPipeline() as pipeline:
        alerts = pipeline | beam.Create([table]) | EvaluateRules([rule], window_seconds=60)
        assert_that(
            alerts | beam.Map(lambda a: (a.group, a.notification, minute(a.timestamp_ms))),
            equal_to([('{"endpoint_name":"b"}', "trigger", 20.0)]),
        )
