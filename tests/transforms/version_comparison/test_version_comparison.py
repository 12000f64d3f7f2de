"""``type: version_comparison``: after a model version change, the new version against the previous one over
matched periods (the same window when both serve, else the same hours a day earlier); the alert says which
version is worse and by how much. Batch, live (cycles through the JSON checkpoint) and Beam agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from airis_mon.config import ConfigError, parse_config
from airis_mon.schema import Metric
from tests.transforms.rules.ml_runs import batch_run, beam_batch_run, key_of, live_run, tables_of
from transforms.rules.config import VersionComparisonRule

T0 = 1_795_824_000_000  # 2026-11-28T00:00:00Z
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000


def rule(**overrides) -> VersionComparisonRule:
    fields = {"name": "new_version_latency", "type": "version_comparison", "metric": "latency",
              "aggregation": "p95", "group_by": ["model_name"], "window": "1h", "threshold": 0.2, "for": 2,
              "severity": "warning"}  # fmt: skip
    return VersionComparisonRule.model_validate({**fields, **overrides})


def latency(version: str, start_ms: int, end_ms: int, scale: float, seed: int, model: str = "fraud") -> list[Metric]:
    """One point a minute: lognormal latency around 100 ms times ``scale``."""
    rng = np.random.default_rng(seed)
    times = range(start_ms, end_ms, MIN)
    values = 100 * scale * rng.lognormal(0, 0.2, len(times))
    tags = json.dumps({"model_name": model, "model_version": version}, sort_keys=True, separators=(",", ":"))
    return [Metric(t, "tfserving", "latency", float(v), "ms", tags) for t, v in zip(times, values, strict=True)]


def p95(points: list[Metric], start_ms: int, end_ms: int) -> float:
    """A rule window's p95 as the engine combines base windows: the worst one-minute p95 (one point a minute:
    the largest value)."""
    by_minute: dict[int, list[float]] = {}
    for p in points:
        if start_ms <= p.timestamp_ms < end_ms:
            by_minute.setdefault(p.timestamp_ms // MIN, []).append(p.value)
    return max(float(np.quantile(values, 0.95)) for values in by_minute.values())


def test_a_worse_new_version_alerts_naming_both_versions_against_the_same_hours_a_day_earlier():
    old = latency("6", T0, T0 + 2 * DAY, 1.0, seed=1)
    new = latency("7", T0 + 2 * DAY, T0 + 2 * DAY + 6 * HOUR, 1.4, seed=2)
    tables = tables_of(old + new, MIN, [rule()])
    alerts, _ = batch_run([rule()], tables, 60)
    triggers = [a for a in alerts if a.notification == "trigger"]
    assert len(triggers) == 1
    trigger = triggers[0]
    # for: 2 -> the second compared window of version 7 (02:00 on day 3) fires at its end
    assert trigger.starts_at_ms == T0 + 2 * DAY and trigger.timestamp_ms == T0 + 2 * DAY + 2 * HOUR
    window = (T0 + 2 * DAY + HOUR, T0 + 2 * DAY + 2 * HOUR)
    expected_new, expected_old = p95(new, *window), p95(old, window[0] - DAY, window[1] - DAY)
    assert trigger.current_value == pytest.approx((expected_new - expected_old) / expected_old, rel=1e-12)
    assert "model_version 7" in trigger.summary and "model_version 6" in trigger.summary
    assert "higher (worse)" in trigger.summary and "1d earlier" in trigger.summary
    assert f"{abs(trigger.current_value):.0%}" in trigger.summary
    assert trigger.alert_type == "version_comparison"


def test_a_canary_is_compared_in_the_same_window_and_a_better_version_stays_quiet():
    both = T0 + DAY
    old = latency("6", T0, both + 4 * HOUR, 1.0, seed=3)
    canary = latency("7", both, both + 4 * HOUR, 1.3, seed=4)
    better = latency("8", T0, both + 4 * HOUR, 0.9, seed=5, model="churn")  # its own group: no previous version
    churn_old = latency("7", T0 - DAY, T0, 1.0, seed=6, model="churn")
    tables = tables_of(old + canary + better + churn_old, MIN, [rule()])
    alerts, _ = batch_run([rule()], tables, 60)
    triggers = [a for a in alerts if a.notification == "trigger"]
    assert [json.loads(a.group)["model_name"] for a in triggers] == ["fraud"]
    trigger = triggers[0]
    window = (trigger.timestamp_ms - HOUR, trigger.timestamp_ms)
    expected = (p95(canary, *window) - p95(old, *window)) / p95(old, *window)
    assert trigger.current_value == pytest.approx(expected, rel=1e-12)
    assert "in the same window" in trigger.summary


def test_lower_is_worse_flips_the_sign_and_compare_for_ends_the_comparison():
    throughput = rule(name="accuracy_drop", aggregation="mean", higher_is_worse=False, compare_for="3h", threshold=0.1,
                      **{"for": 1})  # fmt: skip
    old = latency("6", T0, T0 + DAY, 1.0, seed=7)
    new = latency("7", T0 + DAY, T0 + DAY + 6 * HOUR, 0.8, seed=8)  # 20 % lower: worse when lower is worse
    alerts, _ = batch_run([throughput], tables_of(old + new, MIN, [throughput]), 60)
    alerts.sort(key=lambda a: a.timestamp_ms)
    assert [a.notification for a in alerts] == ["trigger", "resolve"]
    assert alerts[0].timestamp_ms == T0 + DAY + HOUR and alerts[0].current_value > 0.1
    assert "lower (worse)" in alerts[0].summary
    assert alerts[1].timestamp_ms == T0 + DAY + 3 * HOUR  # compare_for over: unknown -> resolves


def test_an_error_rate_is_compared_as_errors_over_requests_per_version():
    points = []
    for minute in range(2 * 24 * 60 + 3 * 60):
        t = T0 + minute * MIN
        version, errors = ("6", 10.0) if t < T0 + 2 * DAY else ("7", 25.0)  # 1 % then 2.5 % of 1,000 requests
        tags = json.dumps({"model_name": "fraud", "model_version": version}, sort_keys=True, separators=(",", ":"))
        points += [Metric(t, "gw", "requests", 1000.0, "", tags), Metric(t, "gw", "errors", errors, "", tags)]
    errors = rule(name="error_rate", metric="errors", denominator="requests", threshold=0.5, **{"for": 1})
    alerts, _ = batch_run([errors], tables_of(points, MIN, [errors]), 60)
    trigger = next(a for a in alerts if a.notification == "trigger")
    assert trigger.timestamp_ms == T0 + 2 * DAY + HOUR and trigger.current_value == pytest.approx(1.5, rel=1e-12)
    assert "model_version 7 errors/requests 0.025 is 150% higher (worse) than model_version 6 (0.01" in trigger.summary


def test_batch_live_and_beam_give_the_same_alerts():
    day2 = T0 + 2 * DAY
    points = (latency("6", T0, day2, 1.0, seed=9) + latency("7", day2, day2 + 5 * HOUR, 1.5, seed=10)
              + latency("6", T0 + DAY, T0 + 2 * DAY, 1.0, seed=11, model="churn")
              + latency("9", T0 + 2 * DAY, T0 + 2 * DAY + 5 * HOUR, 1.25, seed=12, model="churn"))  # fmt: skip
    rules = [rule(), rule(name="mean_change", aggregation="mean", threshold=0.1, **{"for": 1})]
    tables = tables_of(points, MIN, rules)
    batch, _ = batch_run(rules, tables, 60)
    assert len([a for a in batch if a.notification == "trigger"]) == 4
    for per_cycle in (1, 7, 60, 1000):
        live, _ = live_run(rules, tables, 60, windows_per_cycle=per_cycle)
        assert [key_of(a) for a in live] == [key_of(a) for a in batch], per_cycle
    beam_batch_run(rules, tables, 60, batch)


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"rules\[0\].*group_by must not hold the version tag"):
        grouped = {"name": "v", "type": "version_comparison", "metric": "m", "aggregation": "p95",
                   "group_by": ["model_version"], "threshold": 0.2, "severity": "high"}  # fmt: skip
        parse_config({"rules": [grouped]}, tmp_path)
    with pytest.raises(ConfigError, match=r"rules\[0\]\.aggregation"):
        parse_config({"rules": [{"name": "v", "type": "version_comparison", "metric": "m", "aggregation": "p42",
                                 "threshold": 0.2, "severity": "high"}]}, tmp_path)  # fmt: skip
