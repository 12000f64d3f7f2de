"""``type: slo`` through the rule engine: the SRE workbook's multiwindow, multi-burn-rate pages fire when
the workbook's formulas say, resolve through the short window, and store the error budget remaining as a
metric; batch, live (JSON checkpoint between cycles) and Beam agree, points included."""

from __future__ import annotations

import json

import pytest

from airis_mon.schema import Metric
from tests.transforms.rules.ml_runs import batch_run, beam_batch_run, key_of, live_run, tables_of
from transforms.rules.config import SloRule
from transforms.rules.scored import BUDGET_METRIC

T0 = 1_795_824_000_000  # 2026-11-28T00:00:00Z
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
TAGS = json.dumps({"endpoint_name": "fraud"}, separators=(",", ":"))


def rule(**overrides) -> SloRule:
    fields = {"name": "availability", "type": "slo", "metric": "requests", "bad_metric": "errors",
              "group_by": ["endpoint_name"], "objective": 0.999, "period": "1d", "severity": "critical"}  # fmt: skip
    return SloRule.model_validate({**fields, **overrides})


def traffic(minutes: int, error_ratio, per_minute: float = 1000.0) -> list[Metric]:
    """``per_minute`` requests a minute from T0; ``error_ratio(minute)`` of them fail."""
    points = []
    for minute in range(minutes):
        t = T0 + minute * MIN
        errors = per_minute * error_ratio(minute)
        points += [Metric(t, "gw", "requests", per_minute, "", TAGS), Metric(t, "gw", "errors", errors, "", TAGS),
                   Metric(t, "gw", "ok", per_minute - errors, "", TAGS)]  # fmt: skip
    return points


def _ordered(alerts):
    return sorted(alerts, key=lambda a: (a.timestamp_ms, a.notification))


def test_a_fast_burn_pages_when_the_one_hour_window_reaches_14_4_and_resolves_through_the_short_window():
    start, stop = DAY, DAY + 2 * HOUR  # 2.5 % errors (burn 25) for two hours after a clean day
    points = traffic(DAY // MIN + 3 * 60, lambda m: 0.025 if start <= m * MIN < stop else 0.0)
    alerts, budget = batch_run([rule()], tables_of(points, MIN, [rule()]), 60)
    trigger, resolve = _ordered(alerts)
    # workbook: the 1 h window's burn = 25 x (minutes of errors / 60) reaches 14.4 after 34.56 min -> end of the
    # 35th minute; the 5 m window burns 25 from the first minute
    assert trigger.notification == "trigger" and trigger.timestamp_ms == T0 + start + 35 * MIN
    assert trigger.starts_at_ms == T0 + start + 34 * MIN and trigger.current_value == pytest.approx(35 / 60 * 25 / 14.4)
    assert "1h 14.6x / 5m 25x" in trigger.summary and trigger.alert_type == "slo"
    # the errors stop at `stop`: the 5 m window falls under 14.4 at the 3rd minute (2/5 of 25 = 10) while the
    # 1 h window still burns 25; the 6 h pair (burn 6) holds it: 6 h burn = 25 x 2 h / 6 h = 8.3 >= 6, until its
    # 30 m window burns 25 x (30 - j) / 30 < 6, j = 23: the window [stop + 22 m, stop + 23 m) resolves it
    assert resolve.notification == "resolve" and resolve.timestamp_ms == T0 + stop + 22 * MIN
    by_time = {p.timestamp_ms: p.value for p in budget}
    assert {p.name for p in budget} == {BUDGET_METRIC} and json.loads(budget[0].tags)["rule"] == "availability"
    assert by_time[T0 + start - MIN] == 1.0  # a clean day: all of it left
    # after the two hours: 3,000 bad of 1.44 M requests in the last day; 1,440 allowed -> 1 - 3000/1440
    assert by_time[T0 + stop + 59 * MIN] == pytest.approx(1 - 3000 / 1440, rel=0.05)


def test_a_slow_burn_pages_through_the_six_hour_pair_only():
    points = traffic(DAY // MIN + 8 * 60, lambda m: 0.007 if m * MIN >= DAY else 0.0)  # burn 7
    alerts, _ = batch_run([rule(period="30d")], tables_of(points, MIN, [rule()]), 60)
    (trigger,) = [a for a in alerts if a.notification == "trigger"]
    # 7 < 14.4 never pages the 1 h pair; the 6 h window reaches 6 after 6 h x 6/7 = 308.6 min -> minute 309
    assert trigger.timestamp_ms == T0 + DAY + 309 * MIN
    assert trigger.current_value == pytest.approx(7 * 309 / 360 / 6)


def test_good_metric_and_bad_metric_give_the_same_alerts():
    points = traffic(DAY // MIN, lambda m: 0.05 if 600 <= m < 700 else 0.001)
    bad, good = rule(), rule(bad_metric=None, good_metric="ok")
    alerts_bad, budget_bad = batch_run([bad], tables_of(points, MIN, [bad]), 60)
    alerts_good, budget_good = batch_run([good], tables_of(points, MIN, [good]), 60)
    assert len(alerts_bad) == 2
    assert [(a.notification, a.timestamp_ms, a.current_value) for a in alerts_bad] == [
        (a.notification, a.timestamp_ms, a.current_value) for a in alerts_good
    ]
    assert [p.value for p in budget_bad] == pytest.approx([p.value for p in budget_good], rel=1e-9)


def test_batch_live_and_beam_agree_points_included():
    points = traffic(DAY // MIN, lambda m: 0.03 if 300 <= m < 400 or 900 <= m < 1000 else 0.0)
    rules = [
        rule(),
        rule(name="tight", objective=0.9995, burn_windows=[{"long": "30m", "short": "5m", "burn_rate": 10}]),
    ]
    tables = tables_of(points, MIN, rules)
    batch, batch_points = batch_run(rules, tables, 60)
    assert len([a for a in batch if a.notification == "trigger"]) == 4
    for per_cycle in (1, 7, 120):
        live, live_points = live_run(rules, tables, 60, windows_per_cycle=per_cycle)
        assert [key_of(a) for a in live] == [key_of(a) for a in batch], per_cycle
        assert live_points == batch_points
    beam_batch_run(rules, tables, 60, batch)


def test_config_errors():
    with pytest.raises(ValueError, match="exactly one of good_metric or bad_metric"):
        rule(good_metric="ok")
    with pytest.raises(ValueError, match=r"for 99\.9 % write 0\.999"):
        rule(objective=99.9)
    with pytest.raises(ValueError, match="shorter than long"):
        rule(burn_windows=[{"long": "5m", "short": "1h", "burn_rate": 14.4}])
