"""Scoring of ``type: anomaly`` rules (transforms.rules.anomaly) against Beam's own detectors."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import zlib

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.anomaly.detectors.iqr import IQR
from apache_beam.ml.anomaly.detectors.robust_zscore import RobustZScore
from apache_beam.ml.anomaly.detectors.zscore import ZScore
from apache_beam.ml.anomaly.univariate.mad import MadTracker
from apache_beam.ml.anomaly.univariate.mean import SimpleSlidingMeanTracker
from apache_beam.ml.anomaly.univariate.median import MedianTracker
from apache_beam.ml.anomaly.univariate.quantile import (
    BufferedSlidingQuantileTracker,
    SecondaryBufferedQuantileTracker,
)
from apache_beam.ml.anomaly.univariate.stdev import SimpleSlidingStdevTracker

from transforms.rules.anomaly import (
    DEFAULT_THRESHOLDS,
    DETECTORS,
    MAX_WINDOW,
    AnomalySpec,
    score_values,
    season_slots,
)

HOUR_MS = 3_600_000
MONDAY_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday


def _beam_detector(detector: str, window: int):
    """A Beam detector built here, independently of the module: same classes and trackers."""
    if detector == "zscore":
        mean, stdev = SimpleSlidingMeanTracker(window), SimpleSlidingStdevTracker(window)
        return ZScore(sub_stat_tracker=mean, stdev_tracker=stdev)
    if detector == "robust_zscore":
        return RobustZScore(
            mad_tracker=MadTracker(
                MedianTracker(BufferedSlidingQuantileTracker(window, 0.5)),
                MedianTracker(BufferedSlidingQuantileTracker(window, 0.5)),
            )
        )
    q1 = BufferedSlidingQuantileTracker(window, 0.25)
    return IQR(q1_tracker=q1, q3_tracker=SecondaryBufferedQuantileTracker(q1, 0.75))


def _oracle(spec: AnomalySpec, starts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Beam itself: one detector object per season slot, fed the whole sequence continuously."""
    detectors: dict[int, object] = {}
    learned: dict[int, int] = {}
    out = np.full(len(values), np.nan)
    for i, (start, v) in enumerate(zip(starts.tolist(), values.tolist(), strict=True)):
        if math.isnan(v):
            continue
        hour = (start // HOUR_MS) % 24
        if spec.seasonality == "hour_of_week":
            hour = dt.datetime.fromtimestamp(start / 1000, dt.timezone.utc).weekday() * 24 + hour
        slot = hour if spec.seasonality else 0
        det = detectors.setdefault(slot, _beam_detector(spec.detector, spec.window))
        if min(learned.get(slot, 0), spec.window) >= spec.min_history:
            s = det.score_one(beam.Row(value=v))
            out[i] = np.nan if s is None else float(s)
        if math.isfinite(v):
            det.learn_one(beam.Row(value=v))
            learned[slot] = learned.get(slot, 0) + 1
    return out


def _series(rng: np.random.Generator, n: int, hours_step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    starts = MONDAY_MS - 5 * 24 * HOUR_MS + np.arange(n, dtype=np.int64) * hours_step * HOUR_MS
    values = rng.normal(100.0, 15.0, n)
    values[rng.random(n) < 0.05] = np.nan
    values[rng.random(n) < 0.02] *= 4.0  # outliers
    values[rng.random(n) < 0.05] = 100.0  # ties (quantile trackers, MAD)
    return starts, values


def _chunked(spec: AnomalySpec, starts: np.ndarray, values: np.ndarray, cuts: list[int]):
    history = None
    parts = []
    bounds = [0, *cuts, len(values)]
    for a, b in itertools.pairwise(bounds):
        scores, history = score_values(spec, starts[a:b], values[a:b], history)
        history = json.loads(json.dumps(history, allow_nan=False))
        parts.append(scores)
    return np.concatenate(parts), history


# -- (a) Beam itself is the oracle ---------------------------------------------------------------------------


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("seasonality", [None, "hour_of_day", "hour_of_week"])
def test_scores_equal_beam_detectors_fed_continuously(detector: str, seasonality: str | None) -> None:
    rng = np.random.default_rng(7)
    n = 3000 if seasonality else 1500
    starts, values = _series(rng, n)
    values[100] = math.inf  # scored, never learned
    spec = AnomalySpec(detector=detector, window=25, min_history=5, seasonality=seasonality)
    scores, _ = score_values(spec, starts, values, None)
    expected = _oracle(spec, starts, values)
    assert np.array_equal(scores, expected, equal_nan=True)
    assert np.isfinite(scores).sum() > n // 2  # the comparison is not between NaNs
    assert scores.dtype == np.float64


def test_default_thresholds_are_beams() -> None:
    for name, det in [("zscore", ZScore()), ("robust_zscore", RobustZScore()), ("iqr", IQR())]:
        assert DEFAULT_THRESHOLDS[name] == det._threshold_criterion.threshold


# -- (b) independent numpy formulas --------------------------------------------------------------------------


def test_zscore_formula_numpy() -> None:
    """|x - mean| / stdev over the previous `window` values, stdev with ddof=1 (Beam's np.nanvar(ddof=1))."""
    values = np.array([3.0, 7.0, 1.0, 4.0, 10.0, 2.0, 8.0, 5.0, 9.0, 6.0, 30.0])
    spec = AnomalySpec(detector="zscore", window=4, min_history=3)
    scores, history = score_values(spec, np.arange(values.size) * 60_000, values, None)
    for i, x in enumerate(values):
        past = values[max(0, i - 4) : i]
        if past.size < 3:
            assert math.isnan(scores[i])
        else:
            assert scores[i] == pytest.approx(abs(x - past.mean()) / past.std(ddof=1), rel=1e-12)
    # by hand: values[7] = 5 against [4, 10, 2, 8]: mean 6, deviations -2 4 -4 2, var 40/3 (ddof=1)
    assert scores[7] == pytest.approx(1 / math.sqrt(40 / 3), rel=1e-12)
    assert history["values"] == {"0": [5.0, 9.0, 6.0, 30.0]}


def test_robust_zscore_formula_numpy() -> None:
    """0.6745 |x - median| / MAD, Beam's online MAD: median of the last `window` deviations, each taken
    against the median right after its value was learned."""
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, 200)
    w = 15
    spec = AnomalySpec(detector="robust_zscore", window=w, min_history=w)
    scores, _ = score_values(spec, np.arange(values.size) * 60_000, values, None)
    deviations = [abs(values[j] - np.median(values[max(0, j - w + 1) : j + 1])) for j in range(values.size)]
    for i in range(w, values.size):
        median = np.median(values[i - w : i])
        mad = np.median(deviations[i - w : i])
        assert scores[i] == pytest.approx(0.6745 * abs(values[i] - median) / mad, rel=1e-12)


def test_iqr_formula_numpy() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(0, 1, 200)
    w = 12
    scores, _ = score_values(AnomalySpec("iqr", w, w), np.arange(values.size) * 60_000, values, None)
    for i in range(w, values.size):
        q1, q3 = np.quantile(values[i - w : i], [0.25, 0.75])
        x = values[i]
        expected = (x - q3) / (q3 - q1) if x > q3 else (q1 - x) / (q3 - q1) if x < q1 else 0.0
        assert scores[i] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_flat_baseline_scores_zero_as_in_beam() -> None:
    """Beam returns 0.0 when the spread is below its EPSILON (1e-9), whatever the value."""
    values = np.array([5.0] * 12 + [500.0])
    for detector in DETECTORS:
        scores, _ = score_values(AnomalySpec(detector, 20, 10), np.arange(13) * 60_000, values, None)
        assert scores[-1] == 0.0


def test_nan_values_are_not_learned_and_min_history_gates() -> None:
    values = np.array([1.0, np.nan, 2.0, 4.0, np.nan, 3.0, 100.0])
    spec = AnomalySpec("zscore", window=10, min_history=3)
    scores, history = score_values(spec, np.arange(7) * 60_000, values, None)
    assert np.isnan(scores[:5]).all()  # 0, 1, 2 learned values before windows 0..3; window 4 is NaN
    past = np.array([1.0, 2.0, 4.0])
    assert scores[5] == pytest.approx(abs(3.0 - past.mean()) / past.std(ddof=1))
    assert history["values"] == {"0": [1.0, 2.0, 4.0, 3.0, 100.0]}
    inf_scores, inf_history = score_values(spec, np.array([10**6]), np.array([math.inf]), history)
    assert inf_scores[0] == math.inf and inf_history == history


# -- (c) seasonality -------------------------------------------------------------------------------------------


def test_season_slots() -> None:
    rng = np.random.default_rng(5)
    starts = rng.integers(-(10**12), 4 * 10**12, 2000)
    days = season_slots("hour_of_day", starts)
    weeks = season_slots("hour_of_week", starts)
    for s, d, w in zip(starts.tolist(), days.tolist(), weeks.tolist(), strict=True):
        t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=s)
        assert d == t.hour
        assert w == t.weekday() * 24 + t.hour
    assert season_slots("hour_of_week", np.array([MONDAY_MS, MONDAY_MS - 1])).tolist() == [0, 167]
    assert season_slots(None, starts).tolist() == [0] * starts.size


def test_hour_of_day_learns_the_daily_pattern() -> None:
    """A daily sine (peak 15 at noon, trough 5 at midnight) with noise. Per hour of day, the normal noon peak
    scores low and a 3 a.m. value at noon's level scores high; over all hours the detector cannot tell
    them apart: it misses the 3 a.m. anomaly and rates the normal noon peaks like it."""
    rng = np.random.default_rng(11)
    days = 40
    starts = MONDAY_MS + np.arange(days * 24, dtype=np.int64) * HOUR_MS
    hours = np.arange(days * 24) % 24
    normal = 10.0 + 5.0 * np.cos(2 * np.pi * (hours - 12) / 24) + rng.normal(0, 0.3, days * 24)
    last_noon = (days - 1) * 24 + 12
    three_am = (days - 1) * 24 + 3
    anomalous = normal.copy()
    anomalous[three_am] = normal[last_noon]
    noons = np.arange(days - 10, days) * 24 + 12  # the last 10 days' normal noon peaks

    seasonal = AnomalySpec("zscore", window=20, min_history=10, seasonality="hour_of_day")
    flat = AnomalySpec("zscore", window=48, min_history=24)
    s_normal, _ = score_values(seasonal, starts, normal, None)
    s_anomalous, _ = score_values(seasonal, starts, anomalous, None)
    f_normal, _ = score_values(flat, starts, normal, None)
    f_anomalous, _ = score_values(flat, starts, anomalous, None)

    # with hour_of_day: the noon peak is normal, the 3 a.m. value is far out
    assert s_normal[last_noon] < 3.0
    assert s_anomalous[three_am] > 10.0
    assert np.mean(s_normal[noons]) < 1.2
    # without seasonality: the anomaly is missed, and it scores like the normal noon peaks
    assert f_anomalous[three_am] < 3.0
    assert abs(f_anomalous[three_am] - np.mean(f_normal[noons])) < 0.5
    assert np.mean(f_normal[noons]) > np.mean(s_normal[noons]) + 0.3  # the peak itself looks unusual
    # ranked by its score the noon peak is among the most unusual hours of the day without seasonality
    per_hour = [np.mean(f_normal[np.arange(days - 10, days) * 24 + h]) for h in range(24)]
    assert sorted(per_hour, reverse=True).index(per_hour[12]) < 3


def test_hour_of_week_keeps_weekdays_apart() -> None:
    """A weekend level shift is normal per hour of week, an anomaly per hour of day."""
    rng = np.random.default_rng(12)
    weeks = 8
    n = weeks * 168
    starts = MONDAY_MS + np.arange(n, dtype=np.int64) * HOUR_MS
    weekend = (np.arange(n) % 168) >= 120
    values = np.where(weekend, 50.0, 10.0) + rng.normal(0, 1.0, n)
    saturday_noon = (weeks - 1) * 168 + 5 * 24 + 12
    by_week, _ = score_values(AnomalySpec("robust_zscore", 6, 4, "hour_of_week"), starts, values, None)
    by_day, _ = score_values(AnomalySpec("robust_zscore", 6, 4, "hour_of_day"), starts, values, None)
    assert by_week[saturday_noon] < 3.0
    assert by_day[saturday_noon] > 3.5


# -- (d) determinism -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("seasonality", [None, "hour_of_day", "hour_of_week"])
def test_random_splits_are_bit_identical(detector: str, seasonality: str | None) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{detector} {seasonality}".encode()))
    n = 3400 if seasonality == "hour_of_week" else 1200  # 20 weeks: 20 values per hour-of-week slot
    starts, values = _series(rng, n)
    values[rng.integers(0, n, 5)] = -math.inf
    values[300:330] = np.nan  # an all-NaN chunk
    values[400] = -0.0
    spec = AnomalySpec(detector=detector, window=9, min_history=3, seasonality=seasonality)
    whole, whole_history = score_values(spec, starts, values, None)
    assert np.isfinite(whole).sum() > n // 2
    for trial in range(6):
        k = int(rng.integers(1, 80))
        cuts = sorted(set(rng.integers(0, n + 1, k).tolist()))  # may hold 0 and n: empty chunks
        if trial == 0:
            cuts = list(range(1, n))  # one window per call
        chunked, history = _chunked(spec, starts, values, cuts)
        assert np.array_equal(whole, chunked, equal_nan=True), f"cuts {cuts}"
        assert json.dumps(history) == json.dumps(whole_history)


@pytest.mark.parametrize("detector", DETECTORS)
def test_history_is_bounded_and_json_safe(detector: str) -> None:
    rng = np.random.default_rng(13)
    starts, values = _series(rng, 5000)
    spec = AnomalySpec(detector=detector, window=7, min_history=2, seasonality="hour_of_week")
    _, history = score_values(spec, starts, values, None)
    json.dumps(history, allow_nan=False)
    assert set(history["values"]) <= {str(s) for s in range(168)}
    assert all(len(v) == 7 for v in history["values"].values())
    assert (detector == "robust_zscore") == ("deviations" in history)
    if detector == "robust_zscore":
        assert {k: len(v) for k, v in history["deviations"].items()} == {k: 7 for k in history["values"]}


def test_history_of_another_spec_is_discarded() -> None:
    rng = np.random.default_rng(14)
    starts, values = _series(rng, 200)
    _, old = score_values(AnomalySpec("zscore", window=20, min_history=5), starts[:100], values[:100], None)
    for spec in [AnomalySpec("zscore", 21, 5), AnomalySpec("iqr", 20, 5), AnomalySpec("zscore", 20, 5, "hour_of_day")]:
        fresh, _ = score_values(spec, starts[100:], values[100:], None)
        reused, _ = score_values(spec, starts[100:], values[100:], old)
        assert np.array_equal(fresh, reused, equal_nan=True)
    # min_history is not part of the state: a history serves another min_history
    cont, _ = score_values(AnomalySpec("zscore", 20, 12), starts[100:], values[100:], old)
    whole, _ = score_values(AnomalySpec("zscore", 20, 12), starts, values, None)
    assert np.array_equal(cont, whole[100:], equal_nan=True)


# -- (e) invalid input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"detector": "pyod"}, "detector"),
        ({"detector": None}, "detector"),
        ({"window": 1}, "window"),
        ({"window": 0}, "window"),
        ({"window": 2.5}, "window"),
        ({"window": True}, "window"),
        ({"window": MAX_WINDOW + 1}, "window"),
        ({"min_history": 1}, "min_history"),
        ({"min_history": 61}, "min_history"),
        ({"min_history": 5.0}, "min_history"),
        ({"window": 5, "min_history": 6}, "min_history"),
        ({"seasonality": "daily"}, "seasonality"),
        ({"seasonality": "none"}, "seasonality"),
    ],
)
def test_invalid_spec(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AnomalySpec(**kwargs)


def test_valid_spec_edges() -> None:
    assert AnomalySpec(window=2, min_history=2).slots == 1
    assert AnomalySpec(window=MAX_WINDOW, min_history=MAX_WINDOW, seasonality="hour_of_week").slots == 168
    assert AnomalySpec(seasonality="hour_of_day").slots == 24


def test_invalid_arguments() -> None:
    spec = AnomalySpec("zscore", 5, 2)
    starts = np.arange(4, dtype=np.int64) * 60_000
    values = np.ones(4)
    with pytest.raises(ValueError, match="values"):
        score_values(spec, starts, values[:3], None)
    with pytest.raises(ValueError, match="values"):
        score_values(spec, starts, values.reshape(2, 2)[0].reshape(1, 2), None)
    with pytest.raises(ValueError, match="values"):
        score_values(spec, starts, np.array(["a", "b", "c", "d"]), None)
    with pytest.raises(ValueError, match="window_starts_ms"):
        score_values(spec, starts[::-1], values, None)
    with pytest.raises(ValueError, match="window_starts_ms"):
        score_values(spec, np.array([0, 0, 1, 2]), values, None)
    with pytest.raises(ValueError, match="window_starts_ms"):
        score_values(spec, starts + 0.5, values, None)
    with pytest.raises(ValueError, match="window_starts_ms"):
        score_values(spec, starts.reshape(2, 2), values, None)
    with pytest.raises(ValueError, match="seasonality"):
        season_slots("daily", starts)
    assert score_values(spec, starts.astype(np.float64), values, None)[1]["values"] == {"0": [1.0] * 4}
    empty, history = score_values(spec, np.array([], dtype=np.int64), np.array([]), None)
    assert empty.size == 0 and history["values"] == {}


@pytest.mark.parametrize(
    "history",
    [
        [1, 2],
        {"detector": "zscore", "window": 5, "seasonality": None, "values": [1.0]},
        {"detector": "zscore", "window": 5, "seasonality": None, "values": {"1": [1.0]}},
        {"detector": "zscore", "window": 5, "seasonality": None, "values": {"x": [1.0]}},
        {"detector": "zscore", "window": 5, "seasonality": None, "values": {"0": [1.0, None]}},
        {"detector": "zscore", "window": 5, "seasonality": None, "values": {"0": [1.0, "2"]}},
        {"detector": "zscore", "window": 5, "seasonality": None, "values": {"0": [1.0, math.nan]}},
        {"detector": "zscore", "window": 5, "seasonality": None, "values": {"0": [1.0] * 6}},
        {"detector": "zscore", "window": 5, "seasonality": None, "values": {"0": 1.0}},
        {"detector": "robust_zscore", "window": 5, "seasonality": None, "values": {"0": [1.0]}},
        {
            "detector": "robust_zscore",
            "window": 5,
            "seasonality": None,
            "values": {"0": [1.0]},
            "deviations": {"0": [0.0, 0.0]},
        },
    ],
)
def test_invalid_history(history) -> None:
    spec = AnomalySpec(history.get("detector", "zscore") if isinstance(history, dict) else "zscore", 5, 2)
    with pytest.raises(ValueError, match="history"):
        score_values(spec, np.array([0]), np.array([1.0]), history)
