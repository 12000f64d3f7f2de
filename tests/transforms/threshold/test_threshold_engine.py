"""Golden scenarios of the threshold state machine (pure engine, no Beam)."""

import json

import pytest

from airis_mon.config import parse_config
from airis_mon.errors import ConfigError
from tests.transforms.rules.scenarios import GROUP, NAN, T0, minute, series, threshold_rule, timeline
from transforms.rules.engine import RuleState, alert_id, evaluate

FLAPPING = (5, 12, 9, 12, 9, 12, 9, 12, 5, 5)


def test_a_breach_fires_then_resolves_with_the_seed_fields():
    alerts, state = evaluate(threshold_rule(), GROUP, series(1, 11, 15, 12, 3))
    assert timeline(alerts) == [("trigger", 2), ("resolve", 4)]
    trigger, resolve = alerts
    assert trigger.id == resolve.id == alert_id("latency", GROUP.source, GROUP.group, T0 + 60_000)
    assert (trigger.status, resolve.status) == ("firing", "resolved")
    assert (trigger.current_value, trigger.threshold, trigger.peak_value) == (11, 10, 11)
    assert (resolve.current_value, resolve.peak_value, resolve.duration_s) == (3, 15, 180.0)
    assert minute(resolve.resolved_at_ms) == 4 and resolve.starts_at_ms == T0 + 60_000
    assert (trigger.model_id, trigger.environment, trigger.source, trigger.severity) == (
        "fraud", "prod", "tensorflow_serving", "high"
    )  # fmt: skip
    assert trigger.summary == 'latency: m p95 11 > 10 ({"environment":"prod","model_name":"fraud"})'
    assert state.phase == "inactive"


def test_flapping_without_hysteresis_pages_every_time():
    alerts, _ = evaluate(threshold_rule(), GROUP, series(*FLAPPING))
    assert [n for n, _ in timeline(alerts)].count("trigger") == 4
    assert len({a.id for a in alerts}) == 4


def test_flapping_with_hysteresis_is_one_episode():
    alerts, _ = evaluate(threshold_rule(recovery_threshold=6), GROUP, series(*FLAPPING))
    assert timeline(alerts) == [("trigger", 2), ("resolve", 8)]
    assert alerts[1].peak_value == 12


def test_a_value_exactly_at_the_threshold():
    assert evaluate(threshold_rule(), GROUP, series(10, 10, 10))[0] == []
    alerts, _ = evaluate(threshold_rule(comparator=">="), GROUP, series(9, 10, 9))
    assert timeline(alerts) == [("trigger", 2), ("resolve", 2)]
    below, _ = evaluate(threshold_rule(comparator="<", threshold=3), GROUP, series(3, 2, 1, 4))
    assert timeline(below) == [("trigger", 2), ("resolve", 3)] and below[1].peak_value == 1


def test_for_counts_consecutive_windows_or_a_duration():
    assert timeline(evaluate(threshold_rule(**{"for": 3}), GROUP, series(11, 11, 5, 11, 11, 11, 11, 1))[0]) == [
        ("trigger", 6),
        ("resolve", 7),
    ]
    by_duration, _ = evaluate(threshold_rule(**{"for": "2m"}), GROUP, series(11, 5, 11, 11, 5))
    assert timeline(by_duration) == [("trigger", 4), ("resolve", 4)]
    assert by_duration[0].starts_at_ms == T0 + 2 * 60_000  # the episode starts with the first breaching window


def test_nan_is_unknown_it_ends_a_pending_run_and_resolves_a_firing_alert():
    assert evaluate(threshold_rule(**{"for": 2}), GROUP, series(11, NAN, 11))[0] == []
    alerts, _ = evaluate(threshold_rule(), GROUP, series(11, NAN, 11))
    assert timeline(alerts) == [("trigger", 1), ("resolve", 1), ("trigger", 3)]


def test_a_gap_resolves_unless_keep_firing_for_covers_it():
    alerts, _ = evaluate(threshold_rule(), GROUP, series(11, None, None, 11))
    assert timeline(alerts) == [("trigger", 1), ("resolve", 1), ("trigger", 4)]
    kept, _ = evaluate(threshold_rule(keep_firing_for="2m"), GROUP, series(11, None, None, 11, 1, 1, 1))
    assert timeline(kept) == [("trigger", 1), ("resolve", 6)]
    assert kept[1].duration_s == 360.0


def test_keep_firing_for_holds_through_a_short_dip():
    alerts, _ = evaluate(threshold_rule(keep_firing_for=120), GROUP, series(11, 1, 11, 1, 1, 1, 1))
    assert timeline(alerts) == [("trigger", 1), ("resolve", 5)]


def test_repeat_interval_renotifies_while_firing_and_never_triggers_twice():
    alerts, _ = evaluate(threshold_rule(repeat_interval="3m"), GROUP, series(*([11] * 10), 1))
    assert timeline(alerts) == [("trigger", 1), ("repeat", 4), ("repeat", 7), ("repeat", 10), ("resolve", 10)]
    assert len({a.id for a in alerts}) == 1
    assert [a.notification for a in alerts].count("trigger") == 1


def test_evaluating_in_pieces_equals_evaluating_at_once():
    rule = threshold_rule(recovery_threshold=6, keep_firing_for=60, repeat_interval=120, **{"for": 2})
    windows = series(5, 12, 9, 12, None, 12, 9, 5, NAN, 12, 12, 12, 12, 1, 1, 1)
    whole, final = evaluate(rule, GROUP, windows)
    for cut in range(len(windows) + 1):
        first, state = evaluate(rule, GROUP, windows[:cut])
        second, state = evaluate(rule, GROUP, windows[cut:], state)
        assert first + second == whole, cut
        assert state == final
    again, _ = evaluate(rule, GROUP, windows, final)  # already evaluated windows are ignored
    assert again == []


def test_windows_may_come_in_any_order():
    windows = series(1, 11, 15, 12, 3)
    assert (
        evaluate(threshold_rule(), GROUP, list(reversed(windows)))[0] == evaluate(threshold_rule(), GROUP, windows)[0]
    )


def test_templates_render_labels_and_values_and_a_missing_label_is_empty():
    rule = threshold_rule(
        labels={"team": "fraud"},
        summary="{labels[model_name]} p95 {value:.0f} > {threshold:g} for {labels[team]}{labels[nope]}",
        resolve_summary="{labels[model_name]} ok after {duration_s:g} s",
    )
    trigger, resolve = evaluate(rule, GROUP, series(11, 1))[0]
    assert trigger.summary == "fraud p95 11 > 10 for fraud"
    assert resolve.summary == "fraud ok after 60 s"
    assert json.loads(trigger.labels) == {"environment": "prod", "model_name": "fraud", "team": "fraud"}


def test_invalid_rules_are_config_errors_naming_the_rule_and_field(tmp_path):
    document = {
        "rules": [
            {"name": "a", "metric": "m", "aggregation": "p42", "comparator": ">", "threshold": 1, "severity": "high"},
            {"name": "b", "metric": "m", "aggregation": "p95", "comparator": ">", "threshold": 5, "severity": "high",
             "recovery_threshold": 7},
            {"name": "c", "metric": "m", "aggregation": "p95", "comparator": ">", "threshold": 5, "severity": "high",
             "summary": "{valeu}", "for": "soon"},
            {"name": "d", "metric": "m", "aggregation": "p95", "comparator": ">", "threshold": 5, "severity": "high",
             "tags": {"model_name": {"regex": "fraud-("}}},
        ]
    }  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_config(document, tmp_path)
    problems = caught.value.problems
    assert any(
        p.startswith("rules[0].aggregation: Input should be 'count'") and p.endswith("(rule 'a')") for p in problems
    )
    assert (
        "rules[1].recovery_threshold: Value error, must be at or below threshold 5 for comparator > (rule 'b')"
        in problems
    )
    assert "rules[2].summary: Value error, unknown template field 'valeu' (rule 'c')" in problems
    assert any(p.startswith("rules[2].for: Value error, a duration is") for p in problems)
    assert any(
        p.startswith("rules[3].tags.model_name.regex: Value error, invalid regular expression") for p in problems
    )


def test_initial_state_is_inactive():
    assert RuleState().phase == "inactive"
