import math

import pytest

from airis_mon.schema import Metric, metrics_to_table
from tests.transforms.rules.scenarios import T0, threshold_rule
from transforms.aggregate import aggregate_table
from transforms.rules.select import PartialWindow, combine_windows, select_partials

MIN = 60_000


def table():
    points = []
    for minute in range(4):
        for replica, latency in (("r1", 10.0), ("r2", 30.0)):
            for second in (0, 30):
                tags = f'{{"model_name":"fraud-v2","replica":"{replica}","region":"eu"}}'
                points.append(Metric(T0 + minute * MIN + second * 1000, "tf", "lat", latency + minute, "ms", tags))
        points.append(Metric(T0 + minute * MIN, "tf", "lat", 99.0, "ms", '{"model_name":"churn","replica":"r1"}'))
        points.append(Metric(T0 + minute * MIN, "other", "lat", 99.0, "ms", '{"model_name":"fraud-v2","replica":"r1"}'))
    return aggregate_table(metrics_to_table(points), MIN)


def test_selects_by_metric_source_exact_and_regex_tags_and_groups_by_tags():
    rule = threshold_rule(metric="lat", source="tf", tags={"model_name": {"regex": "fraud-.*"}, "region": "eu"},
                          group_by=["model_name"])  # fmt: skip
    selected = dict(select_partials(table(), [rule]))
    assert list(selected) == [("latency", "tf", '{"model_name":"fraud-v2"}')]
    parts = selected[("latency", "tf", '{"model_name":"fraud-v2"}')]
    assert len(parts) == 8  # 2 replicas x 4 windows


def test_without_group_by_each_series_is_its_own_group():
    rule = threshold_rule(metric="lat", source="tf")
    assert len(dict(select_partials(table(), [rule]))) == 3


@pytest.mark.parametrize(
    "aggregation, expected",
    [("count", 4.0), ("sum", 80.0), ("mean", 20.0), ("min", 10.0), ("max", 30.0), ("rate", 80.0 / 60), ("p95", 30.0)],
)
def test_combining_series_in_a_group(aggregation, expected):
    rule = threshold_rule(
        metric="lat", source="tf", tags={"region": "eu"}, group_by=["model_name"], aggregation=aggregation
    )
    ((_, parts),) = select_partials(table(), [rule])
    windows = combine_windows(parts, rule, MIN)
    assert [w.window_start_ms - T0 for w in windows] == [0, MIN, 2 * MIN, 3 * MIN]
    assert windows[0].value == pytest.approx(expected)


def test_rolling_base_windows_up_into_a_longer_rule_window():
    parts = [PartialWindow(T0 + i * MIN, T0 + (i + 1) * MIN, 2, 2.0 * i, i, i, i, i, i) for i in range(10)]
    rule = threshold_rule(aggregation="sum", window="5m")
    windows = combine_windows(parts, rule, rule.window_ms(60))
    assert [(w.window_start_ms - T0, w.window_end_ms - w.window_start_ms, w.value) for w in windows] == [
        (0, 5 * MIN, 20.0),
        (5 * MIN, 5 * MIN, 70.0),
    ]
    assert math.isnan(combine_windows([PartialWindow(T0, T0 + MIN, 0, 0, 0, 0, 0, 0, 0)],
                                      threshold_rule(aggregation="mean"), MIN)[0].value)  # fmt: skip


def test_a_rule_window_that_is_not_a_multiple_is_refused():
    with pytest.raises(ValueError, match="not a multiple of the aggregation window 60 s"):
        threshold_rule(window=90).window_ms(60)


def test_a_misfit_rule_window_is_a_config_error(tmp_path):
    from airis_mon.config import parse_config
    from airis_mon.errors import ConfigError

    document = {"rules": [{"name": "r", "metric": "m", "aggregation": "sum", "comparator": ">", "threshold": 1,
                           "severity": "high", "window": "90s"}]}  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_config(document, tmp_path)
    assert caught.value.problems == [
        "rules[0].window: must be a whole multiple of aggregation.window_seconds (rule 'r')"
    ]
