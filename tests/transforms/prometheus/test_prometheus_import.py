"""The Prometheus rule importer: what maps, what is refused (naming the rule and the part), templates, the
command's --strict, and native ``for: 0``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from airis_mon.config import parse_config
from tests.transforms.rules.scenarios import GROUP, MIN, T0, series, threshold_rule, timeline
from transforms.rules.checkpointed import RuleEntry
from transforms.rules.config import PrometheusRule
from transforms.rules.engine import evaluate
from transforms.rules.incremental import advance
from transforms.rules.prometheus_import import convert_template, import_rules
from transforms.rules.prometheus_semantics import PromPartial
from transforms.rules.promql import Unsupported, compile_expr
from transforms.rules.select import PartialWindow, combine_windows

ROOT = Path(__file__).resolve().parents[3]


def _one(rule: dict):
    return import_rules({"groups": [{"name": "g", "rules": [rule]}]})


@pytest.mark.parametrize(
    "expr",
    [
        'm{a="x", b!="y", c=~"z.*", d!~"w"} > 1',
        "avg_over_time(m[5m]) >= 1",
        "max_over_time(m[1h30m]) < 1",
        "min_over_time(m[90s]) <= -1.5",
        "sum_over_time(m[5m]) == 3",
        "rate(m_total[5m]) != 0",
        "histogram_quantile(0.99, rate(h_bucket[5m])) > 0.5",
        "histogram_quantile(0.9, sum by (le, job) (rate(h_bucket[5m]))) > 0.5",
        'absent(up{job="x"})',
        "absent_over_time(m[10m])",
        "m > 1 and n < 2",
        "m > 1 unless rate(n[5m]) > 2 and o > 3",
        "2 < m",
    ],
)
def test_supported_shapes_import(expr):
    rules, refusals = _one({"alert": "A", "expr": expr})
    assert refusals == [] and rules[0]["type"] == "prometheus"
    PrometheusRule.model_validate(rules[0])


@pytest.mark.parametrize(
    ("expr", "part"),
    [
        ("rate(a[5m]) / rate(b[5m]) > 0.1", "'/'"),
        ("sum(m) > 1", "sum()"),
        ("m > 1 or n > 1", "'or'"),
        ("m > bool 1", "bool"),
        ("m offset 5m > 1", "offset"),
        ("m > 1 and on(job) n > 1", "on(...)"),
        ("increase(m[5m]) > 1", "increase()"),
        ("max_over_time(m[5m:1m]) > 1", "subqueries"),
        ("m", "comparison"),
        ('m > 1 and absent(n{job="x"})', "absent()"),
        ("avg_over_time(m) > 1", "range selector"),
        ("histogram_quantile(0.9, sum by (job) (rate(h_bucket[5m]))) > 1", "'le'"),
        ("histogram_quantile(0.9, rate(h[5m])) > 1", "_bucket"),
    ],
)
def test_unsupported_is_refused_naming_the_part(expr, part):
    rules, refusals = _one({"alert": "Bad", "expr": expr})
    assert rules == [] and len(refusals) == 1
    assert refusals[0].rule == "Bad" and part in refusals[0].reason, refusals[0].reason
    with pytest.raises(Unsupported):
        compile_expr(expr)


def test_recording_rules_and_unknown_fields_are_refused():
    rules, refusals = import_rules({"groups": [{"name": "g", "rules": [
        {"record": "job:m:rate5m", "expr": "rate(m[5m])"},
        {"alert": "A", "expr": "m > 1", "limit": 3},
    ]}]})  # fmt: skip
    assert rules == []
    assert [(r.rule, r.reason) for r in refusals] == [
        ("job:m:rate5m", "recording rules are not imported (only alerting rules)"),
        ("A", "unsupported fields ['limit']"),
    ]


def test_labels_severity_for_and_templates():
    annotations = {
        "summary": "{{ $value | humanize }} on {{ $labels.job }}",
        "description": "value {{$value}} {literal}",
        "runbook_url": "http://r",
    }
    labels = {"severity": "critical", "team": "x"}
    rules, _ = _one({"alert": "A", "expr": "m > 1", "for": "5m", "keep_firing_for": "1m", "labels": labels,
                     "annotations": annotations})  # fmt: skip
    assert rules == [
        {
            "name": "A", "type": "prometheus", "expr": "m > 1", "severity": "critical", "for": "5m",
            "keep_firing_for": "1m", "labels": {"team": "x", "annotation_runbook_url": "http://r"},
            "summary": "{value:.4g} on {labels[job]}", "description": "value {value} {{literal}}",
        }
    ]  # fmt: skip
    rule = PrometheusRule.model_validate(rules[0])
    assert (rule.for_, rule.keep_firing_for) == (300, 60)
    assert rule.description.format(value=2.5) == "value 2.5 {literal}"


def test_unknown_severity_becomes_warning_and_keeps_the_label():
    rules, _ = _one({"alert": "A", "expr": "m > 1", "labels": {"severity": "page"}})
    assert rules[0]["severity"] == "warning" and rules[0]["labels"] == {"severity": "page"}


def test_a_template_action_that_does_not_map_refuses_the_rule():
    _, refusals = _one({"alert": "A", "expr": "m > 1", "annotations": {"summary": "{{ range $x }}{{ end }}"}})
    assert "annotation summary" in refusals[0].reason
    with pytest.raises(ValueError, match="not supported"):
        convert_template('{{ $value | printf "%.2f" }}')


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.rules", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)  # fmt: skip


def test_command_imports_the_example_and_refuses_one(tmp_path):
    out = tmp_path / "rules.yml"
    result = _run("import", "examples/prometheus-rules.yml", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "refused model-serving/ErrorRatio: expected a comparison" in result.stderr
    assert "imported 4 rule(s), refused 1" in result.stderr
    rules = yaml.safe_load(out.read_text())["rules"]
    assert [r["name"] for r in rules] == ["ModelLatencyHigh", "ModelP95High", "ErrorsWithoutTraffic", "ModelSilent"]
    config = parse_config({"rules": rules}, tmp_path)  # the config loader takes them (type: prometheus)
    assert all(isinstance(rule, PrometheusRule) for rule in config.rules) and len(config.rules) == 4


def test_command_strict_fails_and_writes_nothing(tmp_path):
    out = tmp_path / "rules.yml"
    result = _run("import", "examples/prometheus-rules.yml", "--output", str(out), "--strict")
    assert result.returncode == 1 and not out.exists()
    assert _run("import", str(tmp_path / "missing.yml")).returncode == 2


@pytest.mark.parametrize("for_", [0, "0m", "0s", 1])
def test_native_for_zero_fires_on_the_first_breaching_window(for_):
    rule = threshold_rule(**{"for": for_})
    alerts, _ = evaluate(rule, GROUP, series(1, 20, 20, 1))
    assert timeline(alerts) == [("trigger", 2.0), ("resolve", 3.0)]


def test_native_negative_for_is_refused():
    with pytest.raises(ValueError, match="0 or more"):
        threshold_rule(**{"for": -1})


def test_prometheus_rule_fields_come_from_expr():
    with pytest.raises(ValueError, match="not settable"):
        PrometheusRule.model_validate({"name": "A", "expr": "m > 1", "severity": "high", "window": 300})
    rule = PrometheusRule.model_validate({"name": "A", "expr": 'absent(m{job="x"})', "severity": "high"})
    assert (rule.metric, rule.group_by) == ("m", [])


def test_a_breach_lasting_exactly_for_fires_natively_but_not_imported():
    """The README's worked example: native rules count windows, imported rules keep Prometheus's ``for``."""
    native = threshold_rule(aggregation="mean", threshold=5, **{"for": "2m"})
    alerts, _ = evaluate(native, GROUP, series(1, 9, 9, 1, 1))
    assert timeline(alerts) == [("trigger", 3.0), ("resolve", 3.0)]
    imported = PrometheusRule.model_validate({"name": "A", "expr": "m > 5", "for": "2m", "severity": "high"})
    windows = combine_windows(series_parts(1, 9, 9, 1, 1), imported, MIN)
    assert evaluate(imported, GROUP, windows)[0] == []
    windows = combine_windows(series_parts(1, 9, 9, 9, 1, 1), imported, MIN)
    assert timeline(evaluate(imported, GROUP, windows)[0]) == [("trigger", 3.0), ("resolve", 4.0)]


def series_parts(*values: float) -> list[PartialWindow]:
    """One-sample base windows a minute apart from T0."""
    return [PartialWindow(T0 + i * MIN, T0 + (i + 1) * MIN, 1, v, v, v, v, v, v) for i, v in enumerate(values)]


def test_a_live_entry_of_a_prometheus_rule_round_trips_through_json():
    """The live runner's checkpoint: recent windows and tagged waiting parts come back as they were."""
    rule = PrometheusRule.model_validate({"name": "A", "expr": "m > 5 and n < 3", "for": "1m", "severity": "high"})
    parts = [PromPartial(*p, "0|") for p in series_parts(9, 9)] + [PromPartial(*p, "1|") for p in series_parts(1)]
    step = advance(rule, ("A", "s", "{}"), None, (), parts, T0 + MIN, MIN)
    assert step.waiting and step.state.recent  # minute 1 waits; minute 0 is in the lookback
    entry = RuleEntry(("A", "s", "{}"), step.state, tuple(step.waiting))
    back = RuleEntry.from_json(json.loads(json.dumps(entry.to_json(), allow_nan=True)))
    assert back.waiting == entry.waiting and isinstance(back.waiting[0], PromPartial)
    later = advance(rule, back.key, back.state, back.waiting, (), T0 + 3 * MIN, MIN)
    direct = advance(rule, entry.key, entry.state, entry.waiting, (), T0 + 3 * MIN, MIN)
    assert [a.timestamp_ms for a in later.alerts] == [a.timestamp_ms for a in direct.alerts] == [T0 + MIN]
