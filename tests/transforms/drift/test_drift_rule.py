"""``type: drift`` through the rule engine: the current window's distribution (merged DDSketches, or a
Prometheus histogram's buckets) against a rolling, fixed or previous-version reference. The score an alert
carries equals :mod:`transforms.drift` on sketches of the raw samples (merging sketches is exact), and
batch, live (JSON checkpoint between cycles) and Beam give the same alerts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from airis_mon.schema import Metric
from tests.transforms.rules.ml_runs import batch_run, beam_batch_run, key_of, live_run, tables_of
from transforms.distributions import Distribution
from transforms.drift import js, ks, psi
from transforms.rules.config import DriftRule

T0 = 1_795_824_000_000  # 2026-11-28T00:00:00Z
HOUR, DAY = 3_600_000, 86_400_000
STEP = 6_000  # one score every 6 s: 600 an hour


def rule(**overrides) -> DriftRule:
    fields = {"name": "score_drift", "type": "drift", "metric": "score", "group_by": ["model_name"], "window": "1h",
              "method": "psi", "threshold": 0.25, "for": 2, "min_count": 100, "severity": "warning"}  # fmt: skip
    return DriftRule.model_validate({**fields, **overrides})


def scores(start_ms: int, end_ms: int, a: float, b: float, seed: int, version: str = "6", model: str = "fraud"):
    rng = np.random.default_rng(seed)
    times = np.arange(start_ms, end_ms, STEP)
    values = rng.beta(a, b, len(times))
    tags = json.dumps({"model_name": model, "model_version": version}, sort_keys=True, separators=(",", ":"))
    return [Metric(int(t), "scorer", "score", float(v), "", tags) for t, v in zip(times, values, strict=True)]


def sketch(points: list[Metric], start_ms: int, end_ms: int) -> Distribution:
    return Distribution.from_values([p.value for p in points if start_ms <= p.timestamp_ms < end_ms], 0.01)


def _triggers(alerts):
    return sorted((a for a in alerts if a.notification == "trigger"), key=lambda a: a.timestamp_ms)


def test_a_shifted_score_distribution_fires_against_the_previous_day_with_the_psi_of_the_raw_samples():
    drift_at = T0 + 2 * DAY
    points = scores(T0, drift_at, 2, 5, seed=1) + scores(drift_at, drift_at + 6 * HOUR, 3.5, 3, seed=2)
    daily = rule(reference={"type": "rolling", "length": "1d"})
    alerts, _ = batch_run([daily], tables_of(points, 60_000, [daily]), 60)
    (trigger,) = _triggers(alerts)  # nothing on the two stable days; one episode after the shift
    assert trigger.starts_at_ms == drift_at and trigger.timestamp_ms == drift_at + 2 * HOUR  # for: 2 windows
    window = (drift_at + HOUR, drift_at + 2 * HOUR)
    expected = psi(sketch(points, window[0] - DAY, window[0]), sketch(points, *window), bins=10)
    assert trigger.current_value == pytest.approx(expected, rel=1e-12) and trigger.current_value > 0.25
    assert "PSI" in trigger.summary and "the 1d before" in trigger.summary and trigger.alert_type == "drift"


@pytest.mark.parametrize(("method", "measure", "threshold"), [("ks", ks, 0.2), ("js", js, 0.2)])
def test_ks_and_js_scores_are_the_drift_module_on_the_merged_sketches(method, measure, threshold):
    drift_at = T0 + DAY
    points = scores(T0, drift_at, 2, 5, seed=3) + scores(drift_at, drift_at + 3 * HOUR, 4, 3, seed=4)
    fixed = rule(method=method, threshold=threshold, reference={"type": "fixed", "start": T0, "end": T0 + 12 * HOUR},
                 **{"for": 1})  # fmt: skip
    alerts, _ = batch_run([fixed], tables_of(points, 60_000, [fixed]), 60)
    (trigger,) = _triggers(alerts)
    assert trigger.timestamp_ms == drift_at + HOUR
    reference = sketch(points, T0, T0 + 12 * HOUR)
    current = sketch(points, drift_at, drift_at + HOUR)
    expected = measure(reference, current) if method == "ks" else measure(reference, current, bins=10)
    assert trigger.current_value == pytest.approx(expected, rel=1e-12)


def test_previous_version_reference_compares_the_new_version_with_the_old_ones_last_day():
    change = T0 + 2 * DAY
    points = scores(T0, change, 2, 5, seed=5) + scores(change, change + 4 * HOUR, 2.6, 4, seed=6, version="7")
    by_version = rule(reference={"type": "previous_version", "length": "1d"}, threshold=0.1, **{"for": 1})
    alerts, _ = batch_run([by_version], tables_of(points, 60_000, [by_version]), 60)
    (trigger,) = _triggers(alerts)
    assert trigger.timestamp_ms == change + HOUR
    expected = psi(sketch(points, change - DAY, change), sketch(points, change, change + HOUR), bins=10)
    assert trigger.current_value == pytest.approx(expected, rel=1e-12)
    assert "version 7" in trigger.summary and "vs version 6" in trigger.summary
    assert json.loads(trigger.group) == {"model_name": "fraud"}  # the version is not part of the group


def test_a_prometheus_histogram_drifts_through_its_bucket_increases():
    bounds = ("0.1", "0.25", "0.5", "1", "+Inf")
    before, after = (0.3, 0.6, 0.85, 0.97, 1.0), (0.05, 0.2, 0.5, 0.8, 1.0)  # cumulative shares per le
    points = []
    for minute in range(0, 3 * 24 * 60):
        t = T0 + minute * 60_000
        shares = after if t >= T0 + 2 * DAY else before
        for le, share in zip(bounds, shares, strict=True):
            tags = json.dumps({"le": le, "model_name": "fraud"}, sort_keys=True, separators=(",", ":"))
            points.append(Metric(t, "prometheus", "latency_seconds_bucket_increase", 100 * share, "", tags))
    histogram = rule(metric="latency_seconds_bucket_increase", histogram=True, reference={"type": "rolling"},
                     method="ks", threshold=0.2, **{"for": 1})  # fmt: skip
    alerts, _ = batch_run([histogram], tables_of(points, 60_000, [histogram]), 60)
    (trigger,) = _triggers(alerts)
    assert trigger.timestamp_ms == T0 + 2 * DAY + HOUR
    assert trigger.current_value == pytest.approx(0.4, abs=1e-9)  # the largest CDF gap: le=0.25, 0.6 vs 0.2


def test_batch_live_and_beam_agree():
    drift_at = T0 + DAY + 6 * HOUR
    points = (scores(T0, drift_at, 2, 5, seed=7) + scores(drift_at, drift_at + 5 * HOUR, 4, 2, seed=8)
              + scores(T0, drift_at + 5 * HOUR, 2, 2, seed=9, model="churn"))  # fmt: skip
    rules = [rule(reference={"type": "rolling", "length": "6h"}), rule(name="ks_drift", method="ks", threshold=0.2)]
    tables = tables_of(points, 60_000, rules)
    batch, _ = batch_run(rules, tables, 60)
    assert {a.rule for a in _triggers(batch)} == {"score_drift", "ks_drift"}
    for per_cycle in (5, 60, 700):
        live, _ = live_run(rules, tables, 60, windows_per_cycle=per_cycle)
        assert [key_of(a) for a in live] == [key_of(a) for a in batch], per_cycle
    beam_batch_run(rules, tables, 60, batch)
