import math

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from pydantic import ValidationError

from airis_mon.schema import Metric, metrics_to_table
from transforms.aggregate import aggregate_table
from transforms.threshold import EvaluateThresholds, ThresholdRule, WindowValue, find_episodes

MS = 1_795_824_000_000
MIN = 60_000


def rule(**overrides) -> ThresholdRule:
    fields = {"name": "r", "metric": "m", "aggregation": "max", "comparator": ">", "threshold": 10, "severity": "high"}
    return ThresholdRule(**{**fields, **overrides})


def series(*values) -> list[WindowValue]:
    return [WindowValue(MS + i * MIN, MS + (i + 1) * MIN, v) for i, v in enumerate(values)]


def test_consecutive_breaching_windows_are_one_resolved_episode():
    alerts = find_episodes(rule(), "src", '{"model_name":"fraud","environment":"prod"}', series(1, 11, 15, 12, 3))
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.status, alert.timestamp_ms, alert.resolved_at_ms) == ("resolved", MS + MIN, MS + 4 * MIN)
    assert (alert.current_value, alert.duration_s, alert.threshold) == (15, 180.0, 10)
    assert (alert.model_id, alert.environment, alert.severity, alert.source) == ("fraud", "prod", "high", "src")
    assert alert.description.startswith("m max reached 15 (> 10) for 180 s on fraud")


def test_a_value_exactly_at_the_threshold_does_not_breach_a_strict_comparator():
    assert find_episodes(rule(), "s", "{}", series(10, 10)) == []
    assert len(find_episodes(rule(comparator=">="), "s", "{}", series(10, 10))) == 1


def test_gaps_and_recoveries_split_episodes_and_open_episodes_stay_firing():
    windows = series(11, 11, 1, 11)
    windows.append(WindowValue(MS + 10 * MIN, MS + 11 * MIN, 20))  # after a gap
    alerts = find_episodes(rule(), "s", "{}", list(reversed(windows)))  # order does not matter
    assert [(a.timestamp_ms - MS) // MIN for a in alerts] == [0, 3, 10]
    assert [a.status for a in alerts] == ["resolved", "resolved", "firing"]
    assert alerts[1].resolved_at_ms == MS + 4 * MIN  # ended by the gap
    assert alerts[2].resolved_at_ms == 0
    assert len({a.id for a in alerts}) == 3


def test_nan_windows_never_breach_and_less_than_rules_report_the_minimum():
    assert find_episodes(rule(), "s", "{}", series(math.nan)) == []
    alerts = find_episodes(rule(comparator="<", threshold=5), "s", "{}", series(4, 2, 3, 9))
    assert alerts[0].current_value == 2


def test_alert_ids_are_deterministic_and_depend_on_rule_series_and_start():
    first = find_episodes(rule(), "s", '{"a":"1"}', series(11))[0].id
    assert first == find_episodes(rule(), "s", '{"a":"1"}', series(11))[0].id
    assert first != find_episodes(rule(), "s", '{"a":"2"}', series(11))[0].id
    assert first != find_episodes(rule(name="other"), "s", '{"a":"1"}', series(11))[0].id


def test_invalid_rules_name_the_field():
    with pytest.raises(ValidationError, match="aggregation"):
        rule(aggregation="p42")
    with pytest.raises(ValidationError, match="severity"):
        rule(severity="urgent")


def test_evaluate_thresholds_selects_metric_source_and_tags_under_test_pipeline():
    points = [
        Metric(MS + i * 10_000, "aws", "errors", 30.0 if 6 <= i < 18 else 1.0, "count", '{"ep":"a"}') for i in range(36)
    ]
    points += [Metric(MS + i * 10_000, "aws", "errors", 99.0, "count", '{"ep":"b"}') for i in range(6)]  # other tags
    points += [Metric(MS + i * 10_000, "gcp", "errors", 99.0, "count", '{"ep":"a"}') for i in range(6)]  # other source
    aggregates = aggregate_table(metrics_to_table(points), 60_000)
    rules = [
        rule(
            name="burst",
            metric="errors",
            source="aws",
            tags={"ep": "a"},
            aggregation="sum",
            threshold=100,
            severity="critical",
        )
    ]
    with TestPipeline() as pipeline:
        alerts = pipeline | beam.Create([aggregates.slice(0, 3), aggregates.slice(3)]) | EvaluateThresholds(rules)
        assert_that(
            alerts
            | beam.Map(lambda a: (a.name, a.severity, a.timestamp_ms - MS, a.duration_s, a.current_value, a.status)),
            equal_to([("burst", "critical", MIN, 120.0, 180.0, "resolved")]),
        )
