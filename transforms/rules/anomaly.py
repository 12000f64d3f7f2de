"""Scores of ``type: anomaly`` rules from Apache Beam's own detectors (``apache_beam.ml.anomaly``).

Pure: numpy, stdlib and Beam's detector/tracker objects; no pipeline, no I/O, no clock.

For each window, in order, the value is scored by the detector's ``score_one`` against the past values of
the same season slot only (scored BEFORE it is learned), then learned with ``learn_one``. The detector of
a slot sees the last ``window`` learned values of that slot (Beam's sliding trackers with
``window_size = window``); a score is given once the slot has learned ``min_history`` values.

Detectors and what their score means (formulas and default thresholds from Beam 2.77's source,
``apache_beam/ml/anomaly/detectors/*.py``; mean/median/quantiles over the slot's last ``window`` values):

- ``zscore`` (``ZScore`` with ``SimpleSlidingMeanTracker`` and ``SimpleSlidingStdevTracker``):
  ``|x - mean| / stdev``, the stdev with ``ddof=1`` (``sqrt(np.nanvar(window, ddof=1))``). Beam's
  default threshold: 3 (the 3-sigma rule). Needs 2 values for a stdev.
- ``robust_zscore`` (``RobustZScore`` with a ``MadTracker`` of two ``MedianTracker`` s on
  ``BufferedSlidingQuantileTracker(window, 0.5)``): ``|0.6745 * (x - median) / MAD|`` (0.6745 ≈ 1/1.4826,
  so ``|x - median| / (1.4826 * MAD)``: a MAD-based sigma). Beam's MAD is its *online* MAD: each learned
  value's ``|x - median|`` is taken against the median right after that value was learned and is not
  recomputed later; the MAD is the median of the last ``window`` such deviations. It is not the batch MAD
  of the window (close to it on a stationary series). Beam's default threshold: 3; Iglewicz and Hoaglin
  (1993) suggest 3.5 for the modified z-score.
- ``iqr`` (``IQR`` with ``BufferedSlidingQuantileTracker(window, 0.25)`` and a
  ``SecondaryBufferedQuantileTracker`` for 0.75; quantiles linearly interpolated as ``np.quantile``'s
  default): ``(x - Q3) / IQR`` above Q3, ``(Q1 - x) / IQR`` below Q1, 0 inside ``[Q1, Q3]``. Beam's default
  threshold: 1.5 (Tukey's fences ``Q1 - 1.5 IQR``, ``Q3 + 1.5 IQR``).

Flat baselines: every detector returns 0.0 when its spread (stdev, MAD, IQR) is below Beam's absolute
``EPSILON = 1e-9``, so a slot whose past values are (almost) constant scores 0 whatever the new value is
(e.g. an error count that is 0 in most windows, for ``robust_zscore`` and ``iqr`` as soon as more than half
or three quarters of the window is 0). Use a threshold rule for such series; for metrics on a tiny scale
(spreads below 1e-9), rescale the unit.

Seasonality (``AnomalySpec.seasonality``): ``None`` (one slot), ``"hour_of_day"`` (slot = UTC hour of the
window's start, 0..23) or ``"hour_of_week"`` (0..167, Monday 00:00 UTC = 0). Each slot has its own detector,
so a value is compared with the same hour of past days (weeks) only: ``window`` is then a number of days
(weeks) of history per slot.

Missing values: a NaN value scores NaN and is not learned. An infinite value is scored (Beam gives inf,
or 0.0 on a flat baseline) but never learned (it would poison the baseline).

Determinism: only non-incremental trackers are used: the state of a slot's detector is a function of the
slot's last ``window`` learned values (for ``robust_zscore``: also their last ``window`` deviations from
the median, which are kept in the history), so a detector rebuilt from the history at the start of each
call scores bit-identically to one fed the whole sequence (Beam's default ``IncSliding*`` trackers carry
running float sums whose rounding depends on the whole past; they are not used).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.anomaly.base import AnomalyDetector
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

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DETECTORS",
    "MAX_WINDOW",
    "SEASONALITIES",
    "AnomalySpec",
    "new_detector",
    "score_values",
    "season_slots",
]

DETECTORS = ("zscore", "robust_zscore", "iqr")
SEASONALITIES = (None, "hour_of_day", "hour_of_week")
#: Beam's default ``threshold_criterion`` (``FixedThreshold``) of each detector.
DEFAULT_THRESHOLDS = {"zscore": 3.0, "robust_zscore": 3.0, "iqr": 1.5}
#: Largest ``window``: the history holds up to ``window`` floats per slot (twice that for robust_zscore).
MAX_WINDOW = 10_000

_SLOTS = {None: 1, "hour_of_day": 24, "hour_of_week": 168}
_HOUR_MS = 3_600_000
_EPOCH_HOUR_OF_WEEK = 72  # 1970-01-01 00:00 UTC was a Thursday: 3 days after Monday 00:00


@dataclass(frozen=True)
class AnomalySpec:
    """How a rule's window values are scored.

    - ``detector``: one of :data:`DETECTORS`;
    - ``window``: number of past values (per season slot) the detector learns from, 2..:data:`MAX_WINDOW`;
    - ``min_history``: learned values (per slot) needed before a score is given (NaN before), 2..window;
    - ``seasonality``: ``None``, ``"hour_of_day"`` or ``"hour_of_week"`` (UTC hour of the window start).
    """

    detector: str = "zscore"
    window: int = 60
    min_history: int = 10
    seasonality: str | None = None

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, not {self.detector!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or not 2 <= self.window <= MAX_WINDOW:
            raise ValueError(f"window must be an int in [2, {MAX_WINDOW}], not {self.window!r}")
        if (
            isinstance(self.min_history, bool)
            or not isinstance(self.min_history, int)
            or not 2 <= self.min_history <= self.window
        ):
            raise ValueError(f"min_history must be an int in [2, window={self.window}], not {self.min_history!r}")
        if self.seasonality not in SEASONALITIES:
            raise ValueError(f"seasonality must be one of {SEASONALITIES}, not {self.seasonality!r}")

    @property
    def slots(self) -> int:
        """Number of season slots (1, 24 or 168)."""
        return _SLOTS[self.seasonality]


def season_slots(seasonality: str | None, window_starts_ms: np.ndarray) -> np.ndarray:
    """Season slot (int64) of each window start (epoch ms, UTC): 0 for ``None``, the hour of day 0..23 for
    ``"hour_of_day"``, the hour of week 0..167 (Monday 00:00 = 0) for ``"hour_of_week"``."""
    if seasonality not in SEASONALITIES:
        raise ValueError(f"seasonality must be one of {SEASONALITIES}, not {seasonality!r}")
    starts = np.asarray(window_starts_ms, dtype=np.int64)
    hours = np.floor_divide(starts, _HOUR_MS)
    if seasonality == "hour_of_day":
        return np.mod(hours, 24)
    if seasonality == "hour_of_week":
        return np.mod(hours + _EPOCH_HOUR_OF_WEEK, 168)
    return np.zeros_like(starts)


def new_detector(detector: str, window: int) -> tuple[AnomalyDetector, MedianTracker | None, MedianTracker | None]:
    """A fresh Beam detector with the sliding, non-incremental trackers of ``window`` values this module
    uses; for ``robust_zscore`` also its median tracker and its deviation-median tracker (else None)."""
    if detector == "zscore":
        det = ZScore(
            sub_stat_tracker=SimpleSlidingMeanTracker(window),
            stdev_tracker=SimpleSlidingStdevTracker(window),
        )
        return det, None, None
    if detector == "robust_zscore":
        median = MedianTracker(BufferedSlidingQuantileTracker(window, 0.5))
        deviations = MedianTracker(BufferedSlidingQuantileTracker(window, 0.5))
        return RobustZScore(mad_tracker=MadTracker(median, deviations)), median, deviations
    if detector == "iqr":
        q1 = BufferedSlidingQuantileTracker(window, 0.25)
        return IQR(q1_tracker=q1, q3_tracker=SecondaryBufferedQuantileTracker(q1, 0.75)), None, None
    raise ValueError(f"detector must be one of {DETECTORS}, not {detector!r}")


class _Slot:
    """One season slot: its Beam detector and the values (deviations) it holds, rebuilt from the history."""

    __slots__ = ("detector", "deviations", "median", "values")

    def __init__(self, spec: AnomalySpec, values: list[float], deviations: list[float] | None) -> None:
        self.detector, self.median, deviation_tracker = new_detector(spec.detector, spec.window)
        self.values: deque[float] = deque(values, maxlen=spec.window)
        self.deviations: deque[float] | None = None
        if self.median is not None:
            assert deviation_tracker is not None and deviations is not None
            # The MadTracker's state: its median tracker holds the values, its deviation tracker the
            # deviations each value had when it was learned (pushing the values again would recompute them
            # against other medians).
            for v in values:
                self.median.push(v)
            for d in deviations:
                deviation_tracker.push(d)
            self.deviations = deque(deviations, maxlen=spec.window)
        else:
            for v in values:
                self.detector.learn_one(beam.Row(value=v))

    def score(self, v: float, min_history: int) -> float:
        if len(self.values) < min_history:
            return math.nan
        s = self.detector.score_one(beam.Row(value=v))
        return math.nan if s is None else float(s)

    def learn(self, v: float) -> None:
        self.detector.learn_one(beam.Row(value=v))
        self.values.append(v)
        if self.median is not None:
            assert self.deviations is not None
            # The same expression MadTracker.push evaluates: |x - median| right after x was learned.
            self.deviations.append(abs(v - self.median.get()))


def _float_list(raw: Any, name: str, window: int) -> list[float]:
    if not isinstance(raw, list) or len(raw) > window:
        raise ValueError(f"history: {name} must be a list of at most {window} numbers")
    out = []
    for x in raw:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ValueError(f"history: {name} must hold finite numbers, not {x!r}")
        out.append(float(x) + 0.0)
    return out


def _parse_history(spec: AnomalySpec, history: dict | None) -> tuple[dict, dict]:
    """(values, deviations): the history's dicts slot -> list, ({}, {}) for None, {} or another spec's
    history. The lists are checked when their slot is used (:func:`_load_slot`); the others pass through."""
    if history is None:
        return {}, {}
    if not isinstance(history, dict):
        raise ValueError(f"history must be a dict or None, not {type(history).__name__}")
    if not history:
        return {}, {}
    if (history.get("detector"), history.get("window"), history.get("seasonality")) != (
        spec.detector,
        spec.window,
        spec.seasonality,
    ):
        return {}, {}  # made for another detector, window or seasonality: start again, as a new rule
    values = history.get("values")
    deviations = history.get("deviations") if spec.detector == "robust_zscore" else {}
    if not isinstance(values, dict) or not isinstance(deviations, dict):
        raise ValueError("history: values (and deviations for robust_zscore) must be dicts slot -> list")
    keys = {str(s) for s in range(spec.slots)}
    for key in values:
        if key not in keys:
            raise ValueError(f"history: slot {key!r} is not an integer in [0, {spec.slots})")
    if spec.detector == "robust_zscore" and set(deviations) != set(values):
        raise ValueError("history: deviations and values must have the same slots")
    return values, deviations


def _load_slot(spec: AnomalySpec, key: str, values: dict, deviations: dict) -> _Slot:
    vals = _float_list(values.get(key, []), f"values[{key!r}]", spec.window)
    devs = None
    if spec.detector == "robust_zscore":
        devs = _float_list(deviations.get(key, []), f"deviations[{key!r}]", spec.window)
        if len(devs) != len(vals):
            raise ValueError(f"history: deviations[{key!r}] and values[{key!r}] differ in length")
    return _Slot(spec, vals, devs)


def score_values(
    spec: AnomalySpec, window_starts_ms: np.ndarray, values: np.ndarray, history: dict | None
) -> tuple[np.ndarray, dict]:
    """Score each window's value with ``spec``'s Beam detector of its season slot, then learn it.

    ``window_starts_ms``: window starts, epoch ms (integers, strictly increasing); ``values``: the windows'
    values (float, NaN = missing), same length. ``history``: the dict returned by the previous call for the
    same (rule, group), possibly through ``json.dumps``/``json.loads``, or None at the start; a history made
    for another (detector, window, seasonality) is discarded (scoring starts again, as for a new rule).

    Returns ``(scores, history)``: scores float64, one per window, NaN while the slot has fewer than
    ``min_history`` learned values, for NaN values, and where the detector gives None or NaN; the new
    history is JSON-safe (no NaN)::

        {"detector": "zscore", "window": 60, "seasonality": "hour_of_day",
         "values": {"13": [v, ...], ...},        # slot -> its last <= window learned values, oldest first
         "deviations": {"13": [d, ...], ...}}    # robust_zscore only: their |x - median| when learned

    Slots that never learned a value are absent. Every window given is learned once: pass each window once.
    """
    starts = np.asarray(window_starts_ms)
    vals = np.asarray(values)
    if starts.ndim != 1:
        raise ValueError("window_starts_ms must be one-dimensional")
    integral = np.issubdtype(starts.dtype, np.integer) or (
        np.issubdtype(starts.dtype, np.floating) and bool(np.all(np.isfinite(starts) & (starts == np.round(starts))))
    )
    if starts.size and not integral:
        raise ValueError("window_starts_ms must hold integers (epoch ms)")
    starts = starts.astype(np.int64)
    if starts.size > 1 and not np.all(np.diff(starts) > 0):
        raise ValueError("window_starts_ms must be strictly increasing")
    if vals.ndim != 1 or vals.shape != starts.shape:
        raise ValueError(f"values must be one-dimensional with {starts.size} values, not shape {vals.shape}")
    try:
        vals = vals.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError("values must be numbers") from None

    stored_values, stored_devs = _parse_history(spec, history)
    slots: dict[str, _Slot] = {}
    scores = np.full(starts.size, np.nan, dtype=np.float64)
    keys = [str(s) for s in season_slots(spec.seasonality, starts).tolist()]
    for i, (key, x) in enumerate(zip(keys, vals.tolist(), strict=True)):
        if math.isnan(x):
            continue
        state = slots.get(key)
        if state is None:
            state = slots[key] = _load_slot(spec, key, stored_values, stored_devs)
        x += 0.0  # -0.0 -> 0.0: equal floats of one sign, so a rebuilt sorted window is the same
        scores[i] = state.score(x, spec.min_history)
        if math.isfinite(x):
            state.learn(x)

    out_values = {k: v for k, v in stored_values.items() if k not in slots and v}
    out_devs = {k: v for k, v in stored_devs.items() if k in out_values}
    for key, state in slots.items():
        if state.values:
            out_values[key] = list(state.values)
            if state.deviations is not None:
                out_devs[key] = list(state.deviations)
    new_history: dict[str, Any] = {
        "detector": spec.detector,
        "window": spec.window,
        "seasonality": spec.seasonality,
        "values": {k: out_values[k] for k in sorted(out_values, key=int)},
    }
    if spec.detector == "robust_zscore":
        new_history["deviations"] = {k: out_devs[k] for k in sorted(out_devs, key=int)}
    return scores, new_history
