"""SLO error-budget burn rates: the multiwindow, multi-burn-rate alert of the Google SRE workbook.

Source: The Site Reliability Workbook, chapter "Alerting on SLOs" (https://sre.google/workbook/alerting-on-slos/).
For an SLO ``objective`` (e.g. 0.999) the error budget is ``1 - objective`` of the events; the *burn rate* over
a span is ``(bad / total over the span) / (1 - objective)``: 1 spends exactly the budget over the SLO period.
``budget consumed = burn_rate * span / period``; the workbook's pages for 99.9 % over 30 days are burn 14.4
over 1 h (2 % of the budget) and 6 over 6 h (5 %), each confirmed by a short window of 1/12 of the long one
(5 m, 30 m): an alert fires while *both* windows of some pair burn at least at the pair's rate, so it stops
within the short window once the errors stop (the long window alone would keep burning for up to 1 h / 6 h).

Pure numpy/stdlib; no clock, no I/O. :func:`evaluate_slo` evaluates consecutive windows of one (rule, group)
and returns a bounded JSON-safe ``history`` for the next call.

Determinism: one call over windows w1..wn and any split into consecutive calls carrying ``history`` (also
through ``json.dumps``/``json.loads``) give bit-identical results, because every sum is computed from the same
values in the same way whatever the split:

- the sum over a burn span is, when every count in the call (history included) is a whole number and their
  sum is below 2**52, an exact int64 prefix-sum difference; otherwise a left-to-right float64 addition of the
  span's base windows, oldest first. Both are exact, hence equal, on whole-number spans, so it does not matter
  which one a call picks; fractional counts always take the second;
- a period bucket's running sum is a left-to-right float64 addition within the bucket, continued from the
  exact float stored in ``history``; the period sum is ``math.fsum`` (correctly rounded, independent of order)
  of the completed buckets plus the running sum of the current one.

Period edge: the budget is computed over hourly buckets (``bucket_ms`` = the smallest multiple of ``window_ms``
that is at least 1 h, aligned to the epoch), not base windows: the period of a window ending at ``end`` is
``[floor_bucket(end - period_s), end]``, from ``period_s`` up to one bucket longer (30 days: up to 1 h, 0.14 %,
more; a bad window leaves the budget up to one bucket later than with an exact period).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "DEFAULT_BURN_WINDOWS",
    "HISTORY_VERSION",
    "BurnWindow",
    "SloResult",
    "bucket_ms_for",
    "evaluate_slo",
]

HISTORY_VERSION = 1
_HOUR_MS = 3_600_000
_EXACT_LIMIT = 2.0**52
_GATHER_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class BurnWindow:
    """One multiwindow condition: burn over ``long_s`` and over ``short_s`` (seconds) both >= ``burn_rate``."""

    long_s: int
    short_s: int
    burn_rate: float


DEFAULT_BURN_WINDOWS = (BurnWindow(3600, 300, 14.4), BurnWindow(21600, 1800, 6.0))
"""The workbook's two pages for a 30-day period: 2 % of the budget in 1 h (5 m), 5 % in 6 h (30 m)."""


class SloResult(NamedTuple):
    """Per input window (n windows, k burn windows); NaN where the span had no traffic.

    - ``long_burn``, ``short_burn`` (n, k): burn rate over ``long_s`` / ``short_s`` ending at the window end.
    - ``score`` (n,): max over pairs of ``min(long_burn, short_burn) / burn_rate``; ``>= 1`` is the alert
      condition; NaN when no pair had traffic in both its windows.
    - ``budget_remaining`` (n,): ``1 - bad / ((1 - objective) * total)`` over the period ending at the window
      end (``< 0``: overspent; NaN: no traffic in the period).
    - ``error_ratio`` (n,): ``bad / total`` of the window itself.
    """

    long_burn: np.ndarray
    short_burn: np.ndarray
    score: np.ndarray
    budget_remaining: np.ndarray
    error_ratio: np.ndarray


def bucket_ms_for(window_ms: int) -> int:
    """The period bucket, ms: the smallest multiple of ``window_ms`` that is at least one hour."""
    return window_ms * max(1, -(-_HOUR_MS // window_ms))


def _check_params(
    window_ms: int, objective: float, period_s: int, burn_windows: Sequence[BurnWindow]
) -> list[tuple[int, int, float]]:
    if isinstance(window_ms, bool) or not isinstance(window_ms, int | np.integer) or window_ms <= 0:
        raise ValueError(f"window_ms: a positive integer of ms, got {window_ms!r}")
    if not isinstance(objective, int | float | np.floating) or not 0.0 < float(objective) < 1.0:
        raise ValueError(f"objective: a ratio in (0, 1) exclusive, got {objective!r}")
    if isinstance(period_s, bool) or not isinstance(period_s, int | np.integer) or period_s <= 0:
        raise ValueError(f"period_s: a positive integer of seconds, got {period_s!r}")
    bucket_ms = bucket_ms_for(int(window_ms))
    if int(period_s) * 1000 < bucket_ms:
        raise ValueError(f"period_s: {period_s} s is shorter than one period bucket ({bucket_ms} ms)")
    if not burn_windows:
        raise ValueError("burn_windows: at least one")
    spans = []
    for i, bw in enumerate(burn_windows):
        for field in ("long_s", "short_s"):
            value = getattr(bw, field)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ValueError(f"burn_windows[{i}].{field}: a positive integer of seconds, got {value!r}")
            if (value * 1000) % window_ms:
                raise ValueError(f"burn_windows[{i}].{field}: {value} s is not a multiple of window_ms={window_ms}")
        if bw.short_s > bw.long_s:
            raise ValueError(f"burn_windows[{i}].short_s: {bw.short_s} s is longer than long_s={bw.long_s} s")
        rate = bw.burn_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float | np.number) or not 0 < rate < math.inf:
            raise ValueError(f"burn_windows[{i}].burn_rate: a positive finite factor, got {rate!r}")
        spans.append((int(bw.long_s) * 1000 // window_ms, int(bw.short_s) * 1000 // window_ms, float(rate)))
    return spans


def _check_counts(name: str, values: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name}: shape {arr.shape}, expected ({n},) like window_starts_ms")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: counts must be finite")
    if np.any(arr < 0):
        raise ValueError(f"{name}: counts must not be negative")
    return arr + 0.0  # -0.0 -> 0.0


def _empty_history(window_ms: int, bucket_ms: int) -> dict:
    return {
        "v": HISTORY_VERSION,
        "window_ms": window_ms,
        "bucket_ms": bucket_ms,
        "last_start_ms": None,
        "idx": [],
        "bad": [],
        "total": [],
        "bucket_idx": [],
        "bucket_bad": [],
        "bucket_total": [],
    }


def _load_history(history: dict | None, window_ms: int, bucket_ms: int) -> dict:
    if not history:
        return _empty_history(window_ms, bucket_ms)
    if not isinstance(history, dict) or history.get("v") != HISTORY_VERSION:
        raise ValueError(f"history: not a version {HISTORY_VERSION} slo history")
    if history.get("window_ms") != window_ms or history.get("bucket_ms") != bucket_ms:
        raise ValueError(
            f"history: made for window_ms={history.get('window_ms')}, bucket_ms={history.get('bucket_ms')}; "
            f"now window_ms={window_ms}, bucket_ms={bucket_ms}"
        )
    lengths = {len(history[k]) for k in ("idx", "bad", "total")}
    bucket_lengths = {len(history[k]) for k in ("bucket_idx", "bucket_bad", "bucket_total")}
    if len(lengths) != 1 or len(bucket_lengths) != 1:
        raise ValueError("history: lists of unequal length")
    return history


def _span_sums(idx: np.ndarray, values: np.ndarray, out_pos: np.ndarray, m: int, exact: bool) -> np.ndarray:
    """Sum of ``values`` over the windows with index in ``(idx[p] - m, idx[p]]`` for each ``p`` in ``out_pos``."""
    hi = out_pos + 1
    lo = np.searchsorted(idx, idx[out_pos] - (m - 1), side="left")
    if exact:
        prefix = np.concatenate(([0], np.cumsum(values.astype(np.int64))))
        return (prefix[hi] - prefix[lo]).astype(np.float64)
    out = np.zeros(len(out_pos), dtype=np.float64)
    if len(out_pos) == 0:
        return out
    width = int((hi - lo).max())
    padded = np.concatenate((values, np.zeros(width)))  # + 0.0 leaves a sum unchanged
    rows = max(1, _GATHER_ELEMENTS // width)
    for first in range(0, len(out_pos), rows):
        block_lo = lo[first : first + rows, None]
        pos = block_lo + np.arange(width)
        gathered = np.where(pos < hi[first : first + rows, None], padded[pos], 0.0)
        out[first : first + rows] = np.add.accumulate(gathered, axis=1)[:, -1]  # left to right, row by row
    return out


def _ratio(num: np.ndarray, den: np.ndarray, scale: float) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    has = den > 0
    out[has] = num[has] / den[has] / scale
    return out


def evaluate_slo(
    window_starts_ms: np.ndarray,
    good: np.ndarray,
    total: np.ndarray,
    window_ms: int,
    objective: float,
    period_s: int,
    burn_windows: Sequence[BurnWindow],
    history: dict | None,
) -> tuple[SloResult, dict]:
    """Burn rates, alert score and error budget of consecutive windows of one (rule, group).

    ``window_starts_ms``: window starts (ms), strictly increasing, multiples of ``window_ms``, after the last
    window of ``history``; gaps are windows without traffic. ``good``, ``total``: event counts per window
    (sums of the metrics' values in the window; whole numbers or not), ``0 <= good <= total``. ``window_ms``:
    the window length, ms; every ``long_s``/``short_s`` (s) must be a multiple of it. ``objective``: in
    (0, 1). ``period_s``: the SLO period, s. ``history``: the dict returned by the previous call (or None).

    A span of L seconds ending at a window's end covers that window and the ``L/window - 1`` before it;
    windows before the first one ever seen count as no traffic (no warm-up gate).

    Returns the :class:`SloResult` and the new history, a JSON-safe dict (ints, floats, lists; no NaN, as
    counts are finite) holding, besides its parameters, the base windows (``idx`` = start / window_ms,
    ``bad``, ``total``) of the last ``max(long_s) / window - 1`` windows and the (bad, total) sums of the
    period's buckets (``bucket_idx`` = bucket start / bucket_ms; the last one may be partial). Bound: at
    most ``max(long_s)/window - 1`` windows plus ``period/bucket + 2`` buckets, e.g. 359 + 722 entries for
    30 days of one-minute windows with the default 6 h window.
    """
    spans = _check_params(window_ms, objective, period_s, burn_windows)
    window_ms = int(window_ms)
    bucket_ms = bucket_ms_for(window_ms)
    period_ms = int(period_s) * 1000
    budget = 1.0 - float(objective)

    starts = np.asarray(window_starts_ms)
    if starts.ndim != 1 or (starts.size and not np.issubdtype(starts.dtype, np.integer)):
        raise ValueError("window_starts_ms: a 1-D array of integer ms")
    starts = starts.astype(np.int64)
    n = len(starts)
    good_arr = _check_counts("good", good, n)
    total_arr = _check_counts("total", total, n)
    if np.any(good_arr > total_arr):
        raise ValueError("good: a count above the total")
    if np.any(starts % window_ms):
        raise ValueError(f"window_starts_ms: not aligned to window_ms={window_ms}")
    if np.any(np.diff(starts) <= 0):
        raise ValueError("window_starts_ms: not strictly increasing")

    hist = _load_history(history, window_ms, bucket_ms)
    last_start = hist["last_start_ms"]
    if n and last_start is not None and starts[0] <= last_start:
        raise ValueError(f"window_starts_ms: {int(starts[0])} is not after the history's last window {last_start}")

    k = len(spans)
    if n == 0:
        empty = np.empty((0, k))
        return SloResult(empty, empty.copy(), np.empty(0), np.empty(0), np.empty(0)), hist

    bad_arr = total_arr - good_arr  # once per window: every call subtracts the same two values
    new_idx = starts // window_ms

    # -- burn rates over the base windows (history + this call) --------------------------------------------
    h_idx = np.asarray(hist["idx"], dtype=np.int64)
    all_idx = np.concatenate((h_idx, new_idx))
    all_bad = np.concatenate((np.asarray(hist["bad"], dtype=np.float64), bad_arr))
    all_total = np.concatenate((np.asarray(hist["total"], dtype=np.float64), total_arr))
    exact = bool(
        np.all(all_total == np.floor(all_total))
        and np.all(all_bad == np.floor(all_bad))
        and math.fsum(all_total) < _EXACT_LIMIT
    )
    out_pos = np.arange(len(h_idx), len(all_idx))
    sums: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for m in sorted({s for pair in spans for s in pair[:2]}):
        sums[m] = (_span_sums(all_idx, all_bad, out_pos, m, exact), _span_sums(all_idx, all_total, out_pos, m, exact))
    long_burn = np.empty((n, k))
    short_burn = np.empty((n, k))
    pair_scores = np.empty((n, k))
    for j, (m_long, m_short, rate) in enumerate(spans):
        long_burn[:, j] = _ratio(*sums[m_long], budget)
        short_burn[:, j] = _ratio(*sums[m_short], budget)
        pair_scores[:, j] = np.minimum(long_burn[:, j], short_burn[:, j]) / rate  # NaN if either is NaN
    score = np.fmax.reduce(pair_scores, axis=1)  # ignores NaN pairs; NaN when all are
    error_ratio = _ratio(bad_arr, total_arr, 1.0)

    # -- the period budget over buckets ---------------------------------------------------------------------
    b_idx = list(hist["bucket_idx"])
    b_bad = [float(v) for v in hist["bucket_bad"]]
    b_total = [float(v) for v in hist["bucket_total"]]
    new_bucket = starts // bucket_ms
    run_bad = np.empty(n)
    run_total = np.empty(n)
    cuts = np.flatnonzero(np.diff(new_bucket)) + 1
    for lo, hi in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [n])), strict=True):
        bucket = int(new_bucket[lo])
        if b_idx and b_idx[-1] == bucket:  # continue the partial bucket of the previous call
            seed_bad, seed_total = b_bad.pop(), b_total.pop()
            b_idx.pop()
        else:
            seed_bad = seed_total = 0.0
        run_bad[lo:hi] = np.add.accumulate(np.concatenate(([seed_bad], bad_arr[lo:hi])))[1:]
        run_total[lo:hi] = np.add.accumulate(np.concatenate(([seed_total], total_arr[lo:hi])))[1:]
        b_idx.append(bucket)
        b_bad.append(float(run_bad[hi - 1]))
        b_total.append(float(run_total[hi - 1]))
    bucket_arr = np.asarray(b_idx, dtype=np.int64)
    first_bucket = (starts + window_ms - period_ms) // bucket_ms
    lo_pos = np.searchsorted(bucket_arr, first_bucket, side="left")
    hi_pos = np.searchsorted(bucket_arr, new_bucket, side="left")  # completed buckets: before the current one
    period_bad = np.empty(n)
    period_total = np.empty(n)
    keys = lo_pos * (len(b_idx) + 1) + hi_pos
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    done_bad = np.empty(len(uniq))
    done_total = np.empty(len(uniq))
    for u, i in enumerate(first):
        lo, hi = int(lo_pos[i]), int(hi_pos[i])
        done_bad[u] = math.fsum(b_bad[lo:hi])
        done_total[u] = math.fsum(b_total[lo:hi])
    period_bad = done_bad[inverse] + run_bad
    period_total = done_total[inverse] + run_total
    budget_remaining = 1.0 - _ratio(period_bad, period_total, budget)

    # -- the bounded history ----------------------------------------------------------------------------------
    last = int(starts[-1])
    m_max = max(m for pair in spans for m in pair[:2])
    keep = all_idx >= last // window_ms - m_max + 2
    keep_bucket = (last + 2 * window_ms - period_ms) // bucket_ms  # the next window's first bucket, at the earliest
    first_kept = int(np.searchsorted(bucket_arr, keep_bucket, side="left"))
    new_hist = {
        "v": HISTORY_VERSION,
        "window_ms": window_ms,
        "bucket_ms": bucket_ms,
        "last_start_ms": last,
        "idx": all_idx[keep].tolist(),
        "bad": all_bad[keep].tolist(),
        "total": all_total[keep].tolist(),
        "bucket_idx": bucket_arr[first_kept:].tolist(),
        "bucket_bad": b_bad[first_kept:],
        "bucket_total": b_total[first_kept:],
    }
    return SloResult(long_burn, short_burn, score, budget_remaining, error_ratio), new_hist
