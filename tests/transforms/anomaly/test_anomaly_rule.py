"""``type: anomaly`` through the rule engine: a window statistic scored by Beam's own detectors against the
same hour of past days; the alert's value is what a Beam detector fed that hour's past values gives, and
batch, live (JSON checkpoint between cycles) and Beam agree."""

from __future__ import annotations

import json
import math

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.anomaly.detectors.zscore import ZScore
from apache_beam.ml.anomaly.univariate.mean import SimpleSlidingMeanTracker
from apache_beam.ml.anomaly.univariate.stdev import SimpleSlidingStdevTracker

from airis_mon.schema import Metric
from tests.transforms.rules.ml_runs import batch_run, beam_batch_run, key_of, live_run, tables_of
from transforms.rules.config import AnomalyRule

T0 = 1_795_824_000_000  # 2026-11-28T00:00:00Z
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
DAYS = 21
ODD_HOUR = T0 + 20 * DAY + 3 * HOUR  # 03:00 on the 21st day runs at noon's latency
TAGS = json.dumps({"endpoint_name": "fraud"}, separators=(",", ":"))


def rule(**overrides) -> AnomalyRule:
    fields = {"name": "latency_anomaly", "type": "anomaly", "metric": "latency", "aggregation": "mean",
              "group_by": ["endpoint_name"], "window": "1h", "detector": "zscore", "seasonality": "hour_of_day",
              "history": 14, "min_history": 7, "threshold": 6, "severity": "warning"}  # fmt: skip
    return AnomalyRule.model_validate({**fields, **overrides})


def daily(hour: float) -> float:
    """Latency over the day: about 43 ms at 3 a.m., 180 ms at noon."""
    return 100 + 80 * math.sin(2 * math.pi * (hour - 6) / 24)


def latency(seed: int = 1) -> list[Metric]:
    rng = np.random.default_rng(seed)
    points = []
    for minute in range(DAYS * 24 * 60):
        t = T0 + minute * MIN
        hour = (minute // 60) % 24
        level = daily(12) if ODD_HOUR <= t < ODD_HOUR + HOUR else daily(hour)
        points.append(Metric(t, "gw", "latency", level + rng.normal(0, 2), "ms", TAGS))
    return points


def hourly_means(points: list[Metric]) -> dict[int, float]:
    by_hour: dict[int, list[float]] = {}
    for p in points:
        by_hour.setdefault(p.timestamp_ms - p.timestamp_ms % HOUR, []).append(p.value)
    return {start: math.fsum(values) / len(values) for start, values in by_hour.items()}


def test_a_noon_level_latency_at_3_am_fires_with_the_score_of_beams_zscore_on_that_hour_of_past_days():
    points = latency()
    alerts, _ = batch_run([rule()], tables_of(points, MIN, [rule()]), 60)
    triggers = [a for a in alerts if a.notification == "trigger"]
    assert [a.starts_at_ms for a in triggers] == [ODD_HOUR]  # the daily noon peaks never fire
    means = hourly_means(points)
    detector = ZScore(sub_stat_tracker=SimpleSlidingMeanTracker(14), stdev_tracker=SimpleSlidingStdevTracker(14))
    for day in range(20):  # the same hour of the 20 days before: the detector keeps the last 14
        detector.learn_one(beam.Row(value=means[T0 + day * DAY + 3 * HOUR]))
    expected = detector.score_one(beam.Row(value=means[ODD_HOUR]))
    assert triggers[0].current_value == pytest.approx(expected, rel=1e-12) and expected > 6
    assert "by zscore for the same hour of day" in triggers[0].summary and triggers[0].alert_type == "anomaly"


def test_without_seasonality_the_same_hour_is_normal_for_the_whole_day():
    flat = rule(seasonality=None, history=14 * 24, min_history=24)
    alerts, _ = batch_run([flat], tables_of(latency(), MIN, [flat]), 60)
    assert not [a for a in alerts if a.starts_at_ms == ODD_HOUR]  # 180 ms is an ordinary noon value


@pytest.mark.parametrize("detector", ["robust_zscore", "iqr"])
def test_the_robust_detectors_fire_on_the_same_hour(detector):
    # 14 hourly means make a noisy median/MAD or IQR: a high threshold (the odd hour scores in the hundreds),
    # and Beam's online MAD needs more than 7 values to settle (at 7 a normal hour scored 28)
    robust = rule(detector=detector, threshold=20, min_history=10)
    alerts, _ = batch_run([robust], tables_of(latency(), MIN, [robust]), 60)
    assert [a.starts_at_ms for a in alerts if a.notification == "trigger"] == [ODD_HOUR]


def test_batch_live_and_beam_agree():
    points = latency(seed=2)
    rules = [rule(), rule(name="p95_iqr", aggregation="p95", detector="iqr", threshold=3, seasonality="hour_of_week",
                          history=3, min_history=2)]  # fmt: skip
    tables = tables_of(points, MIN, rules)
    batch, _ = batch_run(rules, tables, 60)
    assert any(a.rule == "latency_anomaly" for a in batch)
    for per_cycle in (7, 90, 2000):
        live, _ = live_run(rules, tables, 60, windows_per_cycle=per_cycle)
        assert [key_of(a) for a in live] == [key_of(a) for a in batch], per_cycle
    beam_batch_run(rules, tables, 60, batch)
