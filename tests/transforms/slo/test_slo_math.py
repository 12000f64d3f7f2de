"""transforms.rules.slo: the SRE workbook's multiwindow, multi-burn-rate math, the error budget, determinism.

Worked numbers: The Site Reliability Workbook, "Alerting on SLOs" (https://sre.google/workbook/alerting-on-slos/),
for a 99.9 % SLO over 30 days: burn rate 14.4 over 1 h spends 2 % of the budget, 6 over 6 h 5 %, 1 over 3 days
10 %; ``budget consumed = burn_rate * alert_window / period``; ``detection time = (1 - SLO) / error_ratio *
alert_window * burn_rate``; short windows are 1/12 of the long ones (5 m, 30 m).
"""

from __future__ import annotations

import itertools
import json
import math
import time

import numpy as np
import pytest

from transforms.rules.slo import DEFAULT_BURN_WINDOWS, BurnWindow, SloResult, bucket_ms_for, evaluate_slo

MIN = 60_000
HOUR = 3_600_000
DAY_S = 86_400
T0 = 1_700_000_000_000 // HOUR * HOUR  # an hour boundary: the period buckets line up with the data


def _run(
    starts, good, total, window_ms=MIN, objective=0.999, period_s=30 * DAY_S, burn=DEFAULT_BURN_WINDOWS, hist=None
):
    arrays = np.asarray(starts, dtype=np.int64), np.asarray(good, dtype=float), np.asarray(total, dtype=float)
    return evaluate_slo(*arrays, window_ms, objective, period_s, burn, hist)


def _minutes(n: int, start: int = T0) -> np.ndarray:
    return start + np.arange(n, dtype=np.int64) * MIN


# -- the workbook's worked numbers ----------------------------------------------------------------------------


def test_an_error_rate_of_1_44_percent_burns_a_99_9_slo_at_14_4():
    # workbook: a 14.4 burn rate against 99.9 % is an error ratio of 14.4 * 0.1 % = 1.44 %
    n = 60
    total = np.full(n, 10_000.0)
    result, _ = _run(_minutes(n), total - 144, total)
    assert result.long_burn[-1, 0] == pytest.approx(14.4, rel=1e-12)  # 1 h full of 1.44 %
    assert result.short_burn[-1, 0] == pytest.approx(14.4, rel=1e-12)
    assert result.error_ratio[-1] == pytest.approx(0.0144, rel=1e-15)
    # the 6 h window has seen only that hour of traffic (nothing before counts): the same ratio
    assert result.long_burn[-1, 1] == pytest.approx(14.4, rel=1e-12)
    # score = max(14.4 / 14.4, 14.4 / 6): the 1 h page exactly at its factor, the 6 h page at 2.4x its factor
    assert result.score[-1] == pytest.approx(2.4, rel=1e-12)


@pytest.mark.parametrize(
    ("burn_rate", "span_s", "consumed"),
    [(14.4, 3600, 0.02), (6.0, 6 * 3600, 0.05), (1.0, 3 * DAY_S, 0.10)],  # the workbook's table, 30-day period
)
def test_budget_consumed_is_burn_rate_times_window_over_period(burn_rate, span_s, consumed):
    n = 30 * 24 * 60  # 30 days of one-minute windows
    total = np.full(n, 10_000.0)
    bad = np.zeros(n)
    burning = span_s // 60
    bad[-burning:] = burn_rate * 0.001 * 10_000  # 144, 60, 10 per window: whole numbers
    result, _ = _run(_minutes(n), total - bad, total)
    assert consumed == pytest.approx(burn_rate * span_s / (30 * DAY_S), rel=1e-12)  # the workbook's formula
    assert result.budget_remaining[-1] == pytest.approx(1 - consumed, rel=1e-9)
    assert result.budget_remaining[n - burning - 1] == 1.0  # before the burn, the whole budget is left


@pytest.mark.parametrize(("bad_per_s", "error_ratio"), [(10, 1.0), (1, 0.1)])
def test_detection_time_of_both_pages_matches_the_workbook_formula(bad_per_s, error_ratio):
    # one-second windows, 10 requests/s, 6 h of clean traffic, then error_ratio of the requests fail
    clean = 6 * 3600
    n = clean + 3000
    total = np.full(n, 10.0)
    bad = np.zeros(n)
    bad[clean:] = bad_per_s
    result, _ = _run(T0 + np.arange(n, dtype=np.int64) * 1000, total - bad, total, window_ms=1000)
    for j, bw in enumerate(DEFAULT_BURN_WINDOWS):
        detection_s = (1 - 0.999) / error_ratio * bw.long_s * bw.burn_rate  # 51.84 s and 129.6 s at 100 %
        fired = np.flatnonzero(result.long_burn[clean:, j] >= bw.burn_rate)
        assert fired[0] + 1 == math.ceil(detection_s)  # window k ends k + 1 s after the errors start
        # the short window (1/12) confirms sooner: the pair fires as soon as the long one does
        pair = np.minimum(result.long_burn[clean:, j], result.short_burn[clean:, j]) / bw.burn_rate
        assert np.flatnonzero(pair >= 1)[0] == fired[0]
    assert np.flatnonzero(result.score[clean:] >= 1)[0] + 1 == math.ceil(0.001 / error_ratio * 3600 * 14.4)


def test_the_short_window_resets_the_alert_once_a_spike_ends():
    before, spike, after = 7 * 60, 10, 120  # minutes: 7 h clean, 10 min fully failing, 2 h clean
    n = before + spike + after
    total = np.full(n, 100.0)
    bad = np.zeros(n)
    bad[before : before + spike] = 100
    result, _ = _run(_minutes(n), total - bad, total)
    end = before + spike  # the first clean window after the spike
    pair = np.minimum(result.long_burn, result.short_burn) / np.array([b.burn_rate for b in DEFAULT_BURN_WINDOWS])
    # the 1 h page fires in the spike's first minute, the 6 h page after ceil(0.001 * 360 min * 6) = 3 minutes
    assert np.all(pair[before:end, 0] >= 1) and pair[before - 1, 0] < 1
    assert np.all(pair[before + 2 : end, 1] >= 1) and pair[before + 1, 1] < 1
    for j, bw in enumerate(DEFAULT_BURN_WINDOWS):
        short = bw.short_s // 60
        # the pair stops once its short window holds only clean windows: within short_s of the spike's end
        assert pair[end + short - 2, j] >= 1
        assert np.all(pair[end + short - 1 :, j][~np.isnan(pair[end + short - 1 :, j])] < 1)
        # while the long window alone still burns above the factor
        assert result.long_burn[end + short - 1, j] >= bw.burn_rate
    assert result.score[end + 28] >= 1 and np.all(result.score[end + 29 :] < 1)  # the 30 m window is the last
    assert result.long_burn[end + 45, 0] >= 14.4  # a long-window-only rule would still page 45 min later


# -- the error budget -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bad_per_window", "remaining"), [(10, 0.0), (5, 0.5), (0, 1.0), (20, -1.0)])
def test_budget_remaining_over_30_days(bad_per_window, remaining):
    n = 30 * 24 * 60
    total = np.full(n, 10_000.0)  # 0.1 % of 10 000 = 10 bad per window is exactly the objective
    result, _ = _run(_minutes(n), total - bad_per_window, total)
    assert result.budget_remaining[-1] == pytest.approx(remaining, abs=1e-9)


def test_budget_forgets_what_leaves_the_period_by_whole_buckets():
    # one failing minute, then clean traffic: the period [floor_hour(end - 1 day), end] keeps it for one day
    # and up to one more bucket (the documented period edge), then the budget is whole again
    n = 2 * 24 * 60
    total = np.full(n, 1000.0)
    bad = np.zeros(n)
    bad[30] = 1000  # minute 30 of the first hour
    result, _ = _run(_minutes(n), total - bad, total, period_s=DAY_S)
    ends_min = np.arange(n) + 1
    period_start_min = (ends_min - 24 * 60) // 60 * 60
    expected_in = (period_start_min <= 30) & (ends_min > 30)
    spent = result.budget_remaining < 1
    assert np.array_equal(spent, expected_in)
    # the bad window [30 m, 31 m) counts while floor_hour(end - 1 day) <= 30 m: up to the window ending at
    # 1 day + 59 m, 29 minutes longer than an exact 1-day period (which drops it for the window ending at 1 d + 31 m)
    assert spent[24 * 60 + 58] and not spent[24 * 60 + 59]
    assert spent[24 * 60 + 30]


def test_no_traffic_is_nan_not_zero():
    n = 20
    total = np.zeros(n)
    total[10:] = 100
    good = total.copy()
    good[12] = 90
    result, _ = _run(_minutes(n), good, total)
    assert np.all(np.isnan(result.long_burn[:10])) and np.all(np.isnan(result.short_burn[:10]))
    assert np.all(np.isnan(result.score[:10])) and np.all(np.isnan(result.budget_remaining[:10]))
    assert np.all(np.isnan(result.error_ratio[:10]))
    assert result.long_burn[10, 0] == 0.0 and result.budget_remaining[10] == 1.0
    assert result.error_ratio[12] == pytest.approx(0.1)
    assert result.short_burn[17, 0] == 0.0 and result.short_burn[16, 0] > 0  # 5 windows from minute 12 on


def test_missing_windows_are_windows_without_traffic():
    rng = np.random.default_rng(7)
    n = 2000
    total = rng.integers(0, 50, n).astype(float)
    good = total - rng.binomial(total.astype(int), 0.05)
    present = rng.random(n) < 0.6
    total[~present] = 0
    good[~present] = 0
    dense, _ = _run(_minutes(n), good, total, period_s=DAY_S)
    sparse, _ = _run(_minutes(n)[present], good[present], total[present], period_s=DAY_S)
    for field in SloResult._fields:
        assert getattr(sparse, field).tobytes() == getattr(dense, field)[present].tobytes(), field
    # after a 20-minute gap the 5 m span holds only the window itself; an empty span is NaN, not 0
    starts = _minutes(40)[[0, 1, 25, 31]]
    result, _ = _run(starts, [10, 10, 9, 0], [10, 10, 10, 0])
    assert result.short_burn[2, 0] == pytest.approx(0.1 / (1 - 0.999))
    assert np.isnan(result.short_burn[3, 0]) and result.long_burn[3, 0] == pytest.approx(1 / 30 / (1 - 0.999))


# -- an oracle over the documented definitions --------------------------------------------------------------------


def _oracle(starts, good, total, window_ms, objective, period_s, burn_windows):
    """Brute force with math.fsum over the documented spans: burn over (end - L, end], period over buckets."""
    bucket = bucket_ms_for(window_ms)
    bad = [t - g for g, t in zip(good, total, strict=True)]
    budget = 1.0 - objective

    def over(lo_ms, end_ms):
        sel = [i for i, s in enumerate(starts) if lo_ms <= s < end_ms]
        return math.fsum(bad[i] for i in sel), math.fsum(total[i] for i in sel)

    def ratio(b, t):
        return b / t / budget if t > 0 else math.nan

    rows = []
    for s in starts:
        end = s + window_ms
        longs = [ratio(*over(end - bw.long_s * 1000, end)) for bw in burn_windows]
        shorts = [ratio(*over(end - bw.short_s * 1000, end)) for bw in burn_windows]
        pairs = [
            min(a, b) / bw.burn_rate
            for a, b, bw in zip(longs, shorts, burn_windows, strict=True)
            if not (math.isnan(a) or math.isnan(b))
        ]
        score = max(pairs) if pairs else math.nan
        period_lo = (end - period_s * 1000) // bucket * bucket
        rows.append((longs, shorts, score, 1.0 - ratio(*over(period_lo, end))))
    return rows


@pytest.mark.parametrize("whole", [True, False])
def test_matches_a_brute_force_oracle(whole):
    rng = np.random.default_rng(11 if whole else 12)
    window_ms = 5 * MIN
    n = 700
    idx = np.sort(rng.choice(3 * n, n, replace=False))
    starts = T0 + 7 * window_ms + idx * window_ms  # not on an hour boundary
    total = rng.integers(0, 40, n).astype(float)
    good = total - rng.binomial(total.astype(int), 0.02)
    if not whole:
        total = total * 0.37
        good = good * 0.37
    burn = (BurnWindow(3600, 300, 14.4), BurnWindow(6 * 3600, 1800, 6.0), BurnWindow(12 * 3600, 3600, 2.0))
    period_s = 5400 + 86_400  # not a whole number of buckets
    result, _ = _run(starts, good, total, window_ms=window_ms, objective=0.99, period_s=period_s, burn=burn)
    oracle = _oracle(starts.tolist(), good.tolist(), total.tolist(), window_ms, 0.99, period_s, burn)
    want_long = np.array([r[0] for r in oracle])
    want_short = np.array([r[1] for r in oracle])
    np.testing.assert_allclose(result.long_burn, want_long, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(result.short_burn, want_short, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(result.score, [r[2] for r in oracle], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(result.budget_remaining, [r[3] for r in oracle], rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.isnan(want_short).any() and (np.nan_to_num(result.score) >= 1).any()  # the data exercise both


# -- determinism and the history ----------------------------------------------------------------------------------


def _split_run(starts, good, total, cuts, via_json, **kw):
    hist = None
    parts = []
    bounds = [0, *cuts, len(starts)]
    for lo, hi in itertools.pairwise(bounds):
        result, hist = _run(starts[lo:hi], good[lo:hi], total[lo:hi], hist=hist, **kw)
        if via_json:
            hist = json.loads(json.dumps(hist, allow_nan=False))
        parts.append(result)
    return SloResult(*(np.concatenate([getattr(p, f) for p in parts]) for f in SloResult._fields)), hist


@pytest.mark.parametrize("whole", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_splits_are_bit_identical_to_one_call(whole, seed):
    rng = np.random.default_rng(seed)
    n = 3000
    idx = np.sort(rng.choice(int(n * 1.5), n, replace=False))  # gaps, some of them long
    idx[n // 2 :] += 500
    starts = T0 + idx * MIN
    total = rng.integers(0, 200, n).astype(float)
    good = total - rng.binomial(total.astype(int), rng.uniform(0, 0.05, n))
    if not whole:
        total = total * 1.1 + rng.random(n)  # fractional counts: the float path
        good = np.minimum(good * 1.1, total)
    kw = {"period_s": 2 * DAY_S}
    whole_call, whole_hist = _run(starts, good, total, **kw)
    for trial in range(4):
        cuts = sorted(rng.choice(np.arange(1, n), size=int(rng.integers(1, 60)), replace=False).tolist())
        split, hist = _split_run(starts, good, total, cuts, via_json=trial % 2 == 0, **kw)
        for field in SloResult._fields:
            assert getattr(split, field).tobytes() == getattr(whole_call, field).tobytes(), (field, cuts)
        assert json.dumps(hist) == json.dumps(json.loads(json.dumps(whole_hist)))
    # chunks of ten, as the live runner calls
    split, _ = _split_run(starts, good, total, list(range(10, n, 10)), via_json=True, **kw)
    for field in SloResult._fields:
        assert getattr(split, field).tobytes() == getattr(whole_call, field).tobytes(), field


def test_a_mix_of_whole_and_fractional_chunks_is_bit_identical():
    # whole-number chunks may take the exact integer path, a fractional one the float path: same sums
    rng = np.random.default_rng(5)
    n = 1500
    starts = _minutes(n)
    total = rng.integers(0, 100, n).astype(float)
    good = total - rng.binomial(total.astype(int), 0.01)
    total[700:710] += 0.25
    good[700:710] += 0.25
    whole_call, _ = _run(starts, good, total)
    for cuts in ([400, 1200], [705], [690, 720, 1100], list(range(50, n, 50))):
        split, _ = _split_run(starts, good, total, cuts, via_json=True)
        for field in SloResult._fields:
            assert getattr(split, field).tobytes() == getattr(whole_call, field).tobytes(), (field, cuts)


def test_history_is_bounded_and_json_safe():
    n = 30 * 24 * 60
    total = np.full(n, 100.0)
    _, hist = _run(_minutes(n), total - 1, total)
    text = json.dumps(hist, allow_nan=False)
    assert len(hist["idx"]) == 6 * 60 - 1  # the longest burn window, less the next window itself
    assert len(hist["bucket_idx"]) <= 30 * 24 + 2  # hourly buckets over the period
    assert len(text) < 40_000
    # after a long silence the history keeps nothing of the old windows' burn
    later, hist2 = _run(_minutes(5, T0 + (n + 40 * 24 * 60) * MIN), np.full(5, 100.0), np.full(5, 100.0), hist=hist)
    assert later.budget_remaining.tolist() == [1.0] * 5 and len(hist2["bucket_idx"]) == 1


def test_performance_30_days_of_minutes_in_one_call():
    n = 30 * 24 * 60
    rng = np.random.default_rng(3)
    total = rng.integers(50, 150, n).astype(float)
    good = total - rng.binomial(total.astype(int), 0.001)
    began = time.perf_counter()
    result, _ = _run(_minutes(n), good, total)
    elapsed = time.perf_counter() - began
    assert result.score.shape == (n,)
    assert elapsed < 5.0, f"{n / elapsed:,.0f} windows/s"  # target < 1 s; slack for a shared CI machine


def test_empty_input_returns_empty_arrays_and_keeps_the_history():
    _, hist = _run(_minutes(3), [1, 1, 1], [1, 1, 1])
    result, same = _run(np.empty(0, dtype=np.int64), [], [], hist=hist)
    assert result.long_burn.shape == (0, 2) and result.score.shape == (0,) and same == hist


# -- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"burn": (BurnWindow(3630, 300, 14.4),)}, r"burn_windows\[0\]\.long_s"),
        ({"burn": (BurnWindow(3600, 300, 14.4), BurnWindow(21600, 90, 6.0))}, r"burn_windows\[1\]\.short_s"),
        ({"burn": (BurnWindow(300, 3600, 14.4),)}, r"burn_windows\[0\]\.short_s"),
        ({"burn": (BurnWindow(3600, 300, 0.0),)}, r"burn_windows\[0\]\.burn_rate"),
        ({"burn": ()}, "burn_windows"),
        ({"objective": 0.0}, "objective"),
        ({"objective": 1.0}, "objective"),
        ({"objective": 99.9}, "objective"),
        ({"period_s": 0}, "period_s"),
        ({"period_s": 1800}, "period_s"),
        ({"window_ms": 0}, "window_ms"),
    ],
)
def test_bad_parameters_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _run(_minutes(3), [1, 1, 1], [2, 2, 2], **kwargs)


@pytest.mark.parametrize(
    ("starts", "good", "total", "field"),
    [
        (_minutes(3), [1, 3, 1], [2, 2, 2], "good"),
        (_minutes(3), [1, -1, 1], [2, 2, 2], "good"),
        (_minutes(3), [1, 1, 1], [2, -2, 2], "total"),
        (_minutes(3), [1, np.nan, 1], [2, 2, 2], "good"),
        (_minutes(3), [1, 1, 1], [2, np.inf, 2], "total"),
        (_minutes(3), [1, 1], [2, 2], "good"),
        (_minutes(3) + 1, [1, 1, 1], [2, 2, 2], "window_starts_ms"),
        (_minutes(3)[::-1], [1, 1, 1], [2, 2, 2], "window_starts_ms"),
        (np.array([T0, T0, T0 + MIN]), [1, 1, 1], [2, 2, 2], "window_starts_ms"),
    ],
)
def test_bad_windows_name_the_parameter(starts, good, total, field):
    with pytest.raises(ValueError, match=field):
        _run(starts, good, total)


def test_history_from_another_call_shape_is_refused():
    _, hist = _run(_minutes(3), [1, 1, 1], [2, 2, 2])
    with pytest.raises(ValueError, match="window_starts_ms"):  # not after the history's last window
        _run(_minutes(2, T0 + 2 * MIN), [1, 1], [2, 2], hist=hist)
    with pytest.raises(ValueError, match="history"):
        two_minutes = T0 + 10 * 2 * MIN + np.arange(2) * 2 * MIN
        _run(two_minutes, [1, 1], [2, 2], window_ms=2 * MIN, burn=(BurnWindow(3600, 600, 14.4),), hist=hist)
    with pytest.raises(ValueError, match="history"):
        _run(_minutes(2, T0 + 10 * MIN), [1, 1], [2, 2], hist={"v": 99})
