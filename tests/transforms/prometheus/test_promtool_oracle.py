"""promtool is the oracle: each case's expected first-firing and resolve instants (hand-derived) pass
``promtool test rules``, and the rule imported into AIRIS-MON fires and resolves at the same instants."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from typing import NamedTuple

import pytest
import yaml

from airis_mon.schema import Metric, metrics_to_table
from transforms.aggregate import aggregate_table
from transforms.rules.config import PrometheusRule
from transforms.rules.engine import RuleState
from transforms.rules.incremental import advance
from transforms.rules.prometheus_import import import_rules
from transforms.rules.select import select_partials

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed")
T0 = 1_795_824_000_000
MIN = 60_000
_ = None


class Case(NamedTuple):
    name: str
    expr: str
    series: dict[str, list]  # promtool series -> one value a minute from 0 (None: missing)
    fire: int | None  # minute of the first firing evaluation
    resolve: int | None  # minute of the first evaluation where it is no longer firing
    labels: list[dict[str, str]]  # labels of the firing alerts
    for_: str = "0s"
    keep: str | None = None
    end: int = 14  # evaluate up to this minute


S9 = [9] * 6 + [1] * 8
A = {"job": "a"}
CASES = [
    Case("for0", "m > 5", {"m": [1, 1, 9, 9, 1, 1, 1]}, 2, 4, [{}]),
    Case("for1m", "m > 5", {"m": [1, 1, 9, 9, 9, 1, 1, 1]}, 3, 5, [{}], "1m"),
    Case("exactly_for_never_fires", "m > 5", {"m": [1, 9, 9, 1, 1, 1, 1]}, None, None, [{}], "2m"),
    Case("for_plus_one", "m > 5", {"m": [1, 9, 9, 9, 1, 1, 1]}, 3, 4, [{}], "2m"),
    Case("dip_resets", "m > 5", {"m": [9, 9, 9, 1, 9, 9, 9, 9, 1, 1, 1]}, 7, 8, [{}], "3m"),
    Case("gap_bridged", "m > 5", {"m": [9, 9, _, 9, 9, 1, 1, 1]}, 3, 5, [{}], "3m"),
    Case("stops_resolves_after_lookback", "m > 5", {"m": [9, 9, 9]}, 0, 8, [{}]),
    Case("stops_pending_fires_in_lookback", "m > 5", {"m": [9, 9, 9]}, 4, 8, [{}], "4m"),
    Case("lookback_closed", "m > 5", {"m": [9]}, 0, 6, [{}]),
    Case("long_gap", "m > 5", {"m": [9, _, _, _, _, _, _, 9, 1, 1]}, 2, 6, [{}], "2m"),
    Case("keep_firing_for", "m > 5", {"m": [9, 9, 1, 1, 1, 1, 1]}, 0, 4, [{}], keep="2m"),
    Case("keep_firing_rebreach", "m > 5", {"m": [9, 1, 9, 1, 1, 1, 1, 1]}, 0, 5, [{}], keep="2m"),
    Case("keep_not_for_pending", "m > 5", {"m": [9, 9, 1, 1, 1, 1, 1]}, None, None, [{}], "2m", "5m"),
    Case("keep_stale", "m > 5", {"m": [9, 9]}, 0, 10, [{}], keep="3m"),
    Case("avg_over_time_left_closed", "avg_over_time(m[3m]) > 5", {"m": [0, 0, 0, 24, 0, 0, 0, 0, 0, 0]},
         3, 7, [{}]),
    Case("max_over_time", "max_over_time(m[2m]) > 5", {"m": [0, 9, 0, 0, 0, 0, 0]}, 2, 4, [{}], "1m"),
    Case("min_over_time", "min_over_time(m[2m]) < 1", {"m": [5, 5, 0, 5, 5, 5, 5]}, 2, 5, [{}]),
    Case("sum_over_time", "sum_over_time(m[2m]) >= 10", {"m": [4, 4, 4, 0, 0, 0]}, 2, 3, [{}]),
    Case("over_time_gap", "avg_over_time(m[2m]) > 5", {"m": [9, _, _, _, 1, 1, 1]}, 0, 3, [{}]),
    Case("rate", "rate(c[2m]) > 0.5", {"c": [0, 60, 120, 180, 180, 180, 180, 180]}, 2, 4, [{}]),
    Case("rate_for", "rate(c[2m]) > 0.5", {"c": [0, 60, 120, 180, 240, 240, 240, 240]}, 3, 5, [{}], "1m"),
    Case("absent_stopped", 'absent(m{job="a"})', {'m{job="a"}': [1, 1, 1]}, 8, None, [A]),
    Case("absent_returns", 'absent(m{job="a"})', {'m{job="a"}': [1, _, _, _, _, _, _, _, 1, 1]}, 6, 8, [A]),
    Case("absent_over_time", "absent_over_time(m[3m])", {"m": [1, 1, _, _, _, _, _, 1, 1]}, 5, 7, [{}]),
    Case("absent_over_time_for", "absent_over_time(m[3m])", {"m": [1, 1, _, _, _, _, _, 1, 1]}, 6, 7, [{}], "1m"),
    Case("two_series_one_alerts", "m > 5", {'m{job="a"}': S9, 'm{job="b"}': [1] * 14}, 0, 6, [A]),
    Case("two_series_both", "m > 5", {'m{job="a"}': S9, 'm{job="b"}': S9}, 0, 6, [A, {"job": "b"}]),
    Case("regex", 'm{job=~"a|b"} > 5', {'m{job="a"}': S9, 'm{job="c"}': S9}, 0, 6, [A]),
    Case("not_equal", 'm{job!="b"} > 5', {'m{job="a"}': S9, 'm{job="b"}': S9}, 0, 6, [A]),
    Case("not_regex", 'm{job!~"b.*"} > 5', {'m{job="a"}': S9, 'm{job="bb"}': S9}, 0, 6, [A]),
    Case("and", "m > 5 and n < 3", {'m{job="a"}': [9, 9, 9, 9, 9, 1, 1], 'n{job="a"}': [5, 1, 1, 5, 5, 5, 5]},
         1, 3, [A]),
    Case("unless", "m > 5 unless n > 0", {'m{job="a"}': [9] * 8, 'n{job="a"}': [0, 0, 1, 1, 0, 0, 0, 0]},
         0, 2, [A]),
    Case("and_labels_differ", "m > 5 and n < 3", {'m{job="a"}': [9] * 6, 'n{job="b"}': [1] * 6},
         None, None, [A]),
    Case("same_metric_and", "m > 5 and m < 10", {"m": [9, 9, 12, 12, 9, 1]}, 0, 2, [{}]),
    Case("number_first", "5 < m", {"m": [1, 9, 9, 1, 1]}, 1, 3, [{}]),
    Case("histogram_quantile", "histogram_quantile(0.9, rate(h_bucket[2m])) > 0.35",
         {'h_bucket{le="0.1"}': [0, 6, 12, 18, 28, 38, 48, 58, 68, 78],
          'h_bucket{le="0.5"}': [0, 10, 20, 30, 40, 50, 60, 70, 80, 90],
          'h_bucket{le="+Inf"}': [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]}, 1, 4, [{}]),
    Case("histogram_sum_by", "histogram_quantile(0.9, sum by (le) (rate(h_bucket[2m]))) > 0.35",
         {'h_bucket{le="0.1",job="a"}': [0, 3, 6, 9, 14, 19, 24, 29, 34],
          'h_bucket{le="0.1",job="b"}': [0, 3, 6, 9, 14, 19, 24, 29, 34],
          'h_bucket{le="0.5",job="a"}': [0, 5, 10, 15, 20, 25, 30, 35, 40],
          'h_bucket{le="0.5",job="b"}': [0, 5, 10, 15, 20, 25, 30, 35, 40],
          'h_bucket{le="+Inf",job="a"}': [0, 5, 10, 15, 20, 25, 30, 35, 40],
          'h_bucket{le="+Inf",job="b"}': [0, 5, 10, 15, 20, 25, 30, 35, 40]}, 1, 4, [{}]),
]  # fmt: skip


def _prom_rule(case: Case) -> dict:
    rule = {"alert": f"A_{case.name}", "expr": case.expr, "for": case.for_}
    if case.keep:
        rule["keep_firing_for"] = case.keep
    return rule


def _values(values: list) -> str:
    return " ".join("_" if v is None else str(v) for v in values)


def _expect(case: Case, minute: int, firing: bool) -> dict:
    alerts = [{"exp_labels": labels} for labels in case.labels] if firing else []
    return {"eval_time": f"{minute}m", "alertname": f"A_{case.name}", "exp_alerts": alerts}


def _promtool_test(case: Case, shift: int = 0) -> dict:
    checks = []
    if case.fire is None:
        checks += [_expect(case, m, False) for m in range(case.end)]
    else:
        fire = case.fire + shift
        if fire > 0:
            checks.append(_expect(case, fire - 1, False))
        checks.append(_expect(case, fire, True))
        if case.resolve is not None:
            checks += [_expect(case, case.resolve - 1, True), _expect(case, case.resolve, False)]
        else:
            checks.append(_expect(case, case.end - 1, True))
    series = [{"series": name, "values": _values(values)} for name, values in case.series.items()]
    return {"interval": "1m", "name": case.name, "input_series": series, "alert_rule_test": checks}


def _run_promtool(tmp_path, cases: list[Case], shift: int = 0) -> subprocess.CompletedProcess:
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [_prom_rule(c) for c in cases]}]}))
    test = tmp_path / "test.yml"
    tests = [_promtool_test(c, shift) for c in cases]
    test.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}))
    return subprocess.run([PROMTOOL, "test", "rules", str(test)], capture_output=True, text=True, timeout=120)


def test_promtool_confirms_every_expected_instant(tmp_path):
    assert len(CASES) >= 30
    result = _run_promtool(tmp_path, CASES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_oracle_can_fail(tmp_path):
    result = _run_promtool(tmp_path, [CASES[0]], shift=1)  # a firing instant one minute late
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def _parse_series(name: str) -> tuple[str, dict[str, str]]:
    if "{" not in name:
        return name, {}
    metric, rest = name.split("{", 1)
    labels = {}
    for pair in rest.rstrip("}").split(","):
        key, value = pair.split("=", 1)
        labels[key.strip()] = value.strip().strip('"')
    return metric, labels


def _table(case: Case):
    points = []
    for name, values in case.series.items():
        metric, labels = _parse_series(name)
        tags = json.dumps(labels, sort_keys=True, separators=(",", ":"))
        points += [
            Metric(T0 + i * MIN, "prom", metric, float(v), "", tags) for i, v in enumerate(values) if v is not None
        ]
    return aggregate_table(metrics_to_table(points), MIN)


def _imported(case: Case) -> PrometheusRule:
    rules, refusals = import_rules({"groups": [{"name": "g", "rules": [_prom_rule(case)]}]})
    assert refusals == []
    return PrometheusRule.model_validate(rules[0])


def _instants(alerts) -> dict:
    triggers = sorted((a.timestamp_ms - T0) // MIN for a in alerts if a.notification == "trigger")
    resolves = sorted((a.timestamp_ms - T0) // MIN for a in alerts if a.notification == "resolve")
    return {"fire": triggers[0] if triggers else None, "resolve": resolves[0] if resolves else None}


def _alerts_batch(case: Case):
    rule = _imported(case)
    alerts = []
    for key, parts in select_partials(_table(case), [rule]):
        alerts += advance(rule, key, None, (), parts, T0 + case.end * MIN, MIN).alerts
    return rule, alerts


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_airis_mon_matches_promtool(case):
    rule, alerts = _alerts_batch(case)
    assert _instants(alerts) == {"fire": case.fire, "resolve": case.resolve}
    if case.fire is not None:
        firing = sorted((json.loads(a.labels) for a in alerts if a.notification == "trigger"
                         and a.timestamp_ms == T0 + case.fire * MIN), key=json.dumps)  # fmt: skip
        assert firing == sorted(case.labels, key=json.dumps)
        trigger = next(a for a in alerts if a.notification == "trigger")
        assert trigger.timestamp_ms - trigger.starts_at_ms >= rule.for_ * 1000


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_minute_by_minute_with_checkpointed_state_gives_the_same_alerts(case):
    """The incremental runners' path: one advance() per minute, the state through JSON each time."""
    rule, batch = _alerts_batch(case)
    states: dict = {}
    waiting: dict = {}
    alerts = []
    selected = list(select_partials(_table(case), [rule]))
    for minute in range(1, case.end + 1):
        for key, parts in selected:
            arrived = [p for p in parts if p.window_start_ms == T0 + (minute - 1) * MIN]
            step = advance(rule, key, states.get(key), waiting.get(key, ()), arrived, T0 + minute * MIN, MIN)
            states[key] = RuleState(**json.loads(json.dumps(dataclasses.asdict(step.state))))
            waiting[key] = step.waiting
            alerts += step.alerts
    assert sorted((a.notification, a.timestamp_ms, a.group) for a in alerts) == sorted(
        (a.notification, a.timestamp_ms, a.group) for a in batch
    )
