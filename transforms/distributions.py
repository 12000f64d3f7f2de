"""Mergeable per-(series, window) distributions: DDSketch bins, or Prometheus histogram buckets.

Why DDSketch (DataDog's sketch, Masson et al., VLDB 2019; the ``ddsketch`` package is the definition
followed here, and the tests' oracle):

- relative-error guarantee over any value range: every quantile it returns is within
  ``relative_accuracy`` (e.g. 1 %) of the exact rank-``floor(q(n-1))`` value, for 1 ns latencies and
  1e9 byte counts alike, with no per-metric bucket configuration;
- exactly mergeable: a value's bin depends on the value alone (``key = ceil(log_gamma(|x|))``), so the
  sketch of a union is the bin-wise sum of the parts' sketches, in any order, bit for bit;
- deterministic: no sampling, no randomness, integer counts.

A distribution of one series-window is its non-empty bins sorted ascending by representative value
(signed: a negative bin holds ``-value(key)``, the zero bin ``0.0``) with int64 counts. Storage keeps
``bins: list<float64>``, ``counts: list<int64>`` and ``mapping``: ``"ddsketch:<relative accuracy>"``
(:func:`mapping_name`), or ``"buckets"`` for a Prometheus histogram, whose bins are the ``le`` upper
bounds (ascending, ``+Inf`` allowed) with per-bucket (not cumulative) counts; a buckets distribution
keeps its empty buckets too (their bounds are the interpolation's lower bounds).

Like ``DDSketch.add``: ``x > min_possible`` goes to the positive store, ``x < -min_possible`` to the
negative one (mirrored: key of ``-x``), anything else counts as zero. Non-finite values are refused
(``ddsketch`` itself raises OverflowError on infinities and counts NaN as zero).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from ddsketch.mapping import LogarithmicMapping

__all__ = [
    "BUCKETS",
    "DDSKETCH_PREFIX",
    "Distribution",
    "LogMapping",
    "distributions_from_columns",
    "log_mapping",
    "mapping_name",
    "sketch_columns",
]

BUCKETS = "buckets"
DDSKETCH_PREFIX = "ddsketch:"
_LN2 = math.log(2.0)  # math.log(x, 2) == math.log(x) / math.log(2.0) in CPython
# |y - round(y)| below this (relative) is recomputed with the library's own math.log, so numpy's log
# (a few ulp from libm's) can never put a value in another bin than ddsketch does.
_EDGE_TOLERANCE = 1e-9


def mapping_name(relative_accuracy: float) -> str:
    """The ``mapping`` string of a DDSketch with this relative accuracy (``"ddsketch:0.01"``)."""
    return DDSKETCH_PREFIX + repr(float(_check_accuracy(relative_accuracy)))


def _check_accuracy(relative_accuracy: float) -> float:
    try:
        value = float(relative_accuracy)
    except (TypeError, ValueError):
        raise ValueError(f"relative_accuracy must be a number in (0, 1), got {relative_accuracy!r}") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy!r}")
    return value


class LogMapping:
    """Vectorised ``ddsketch.mapping.LogarithmicMapping``: :meth:`keys` equals ``mapping.key(x)`` and
    :meth:`values` equals ``mapping.value(key)``, element for element, bit for bit."""

    def __init__(self, relative_accuracy: float) -> None:
        self.relative_accuracy = _check_accuracy(relative_accuracy)
        self.library = LogarithmicMapping(self.relative_accuracy)
        self.gamma: float = self.library.gamma
        self.min_possible: float = self.library.min_possible
        self._multiplier: float = self.library._multiplier
        self._offset: float = self.library._offset
        self._lock = threading.Lock()
        self._table: tuple[int, np.ndarray] = (0, np.empty(0, dtype=np.float64))

    @property
    def name(self) -> str:
        """The ``mapping`` string, ``"ddsketch:<relative accuracy>"``."""
        return mapping_name(self.relative_accuracy)

    def keys(self, values: np.ndarray) -> np.ndarray:
        """The bin key (int64) of each positive value (``values > min_possible``, finite)."""
        x = np.asarray(values, dtype=np.float64)
        y = np.log(x)
        y /= _LN2
        y *= self._multiplier
        keys = np.ceil(y)
        if self._offset:
            keys += self._offset
        out = keys.astype(np.int64)
        near = np.abs(y - np.rint(y)) <= _EDGE_TOLERANCE * np.maximum(1.0, np.abs(y))
        if near.any():
            key = self.library.key
            idx = np.flatnonzero(near)
            out[idx] = [key(v) for v in x[idx].tolist()]
        return out

    def values(self, keys: np.ndarray) -> np.ndarray:
        """``mapping.value(key)`` (float64) of each key: the bin's representative positive value."""
        k = np.asarray(keys, dtype=np.int64)
        if k.size == 0:
            return np.empty(0, dtype=np.float64)
        low, high = int(k.min()), int(k.max())
        start, table = self._table
        if table.size == 0 or low < start or high >= start + table.size:
            with self._lock:
                start, table = self._table
                new_start = low if table.size == 0 else min(low, start)
                new_end = high + 1 if table.size == 0 else max(high + 1, start + table.size)
                value = self.library.value
                fresh = np.empty(new_end - new_start, dtype=np.float64)
                for i in range(new_end - new_start):
                    j = new_start + i - start
                    fresh[i] = table[j] if table.size and 0 <= j < table.size else value(new_start + i)
                self._table = (new_start, fresh)
                start, table = new_start, fresh
        return table[k - start]

    def signed_values(self, values: np.ndarray) -> np.ndarray:
        """The representative value of each value's bin: ``value(key(x))``, ``-value(key(-x))`` or 0.0."""
        x = np.asarray(values, dtype=np.float64)
        a = np.abs(x)
        nonzero = a > self.min_possible
        out = np.zeros(x.shape, dtype=np.float64)
        if nonzero.any():
            reps = self.values(self.keys(a[nonzero]))
            out[nonzero] = np.where(x[nonzero] < 0, -reps, reps)
        return out


@functools.lru_cache(maxsize=64)
def _log_mapping(relative_accuracy: float) -> LogMapping:
    return LogMapping(relative_accuracy)


def log_mapping(relative_accuracy: float) -> LogMapping:
    """The shared :class:`LogMapping` of a relative accuracy (its value table is cached)."""
    return _log_mapping(_check_accuracy(relative_accuracy))


def _list_array(offsets: np.ndarray, values: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError(f"too many bins for one list column: {offsets[-1]}")
    return pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32), type=pa.int32()), pa.array(values, type=value_type)
    )


def sketch_columns(
    group_starts: np.ndarray, sorted_values: np.ndarray, relative_accuracy: float
) -> tuple[pa.ListArray, pa.ListArray]:
    """The DDSketch of every group, vectorised: ``(bins, counts)`` list columns, one list per group.

    ``sorted_values``: every point, sorted by (group, value); ``group_starts``: the index of each
    group's first point (strictly increasing from 0; every group non-empty). ``bins`` holds each
    group's non-empty bins' signed representative values ascending, ``counts`` their int64 counts;
    the mapping string is :func:`mapping_name` of ``relative_accuracy``.
    """
    mapping = log_mapping(relative_accuracy)
    values = np.ascontiguousarray(sorted_values, dtype=np.float64)
    starts = np.ascontiguousarray(group_starts, dtype=np.int64)
    if values.ndim != 1:
        raise ValueError(f"sorted_values must be 1-D, got shape {values.shape}")
    if starts.ndim != 1:
        raise ValueError(f"group_starts must be 1-D, got shape {starts.shape}")
    n = values.size
    if starts.size == 0:
        if n:
            raise ValueError("group_starts is empty but sorted_values is not")
        empty = np.zeros(1, dtype=np.int64)
        return (
            _list_array(empty, np.empty(0, np.float64), pa.float64()),
            _list_array(empty, np.empty(0, np.int64), pa.int64()),
        )
    if starts[0] != 0 or starts[-1] >= n or (starts.size > 1 and (np.diff(starts) <= 0).any()):
        raise ValueError("group_starts must increase strictly from 0, each group non-empty, below len(sorted_values)")
    if not np.isfinite(values).all():
        raise ValueError("sorted_values must be finite (NaN and ±inf have no bin)")
    descending = values[1:] < values[:-1]
    descending[starts[1:] - 1] = False
    if descending.any():
        raise ValueError("sorted_values must be ascending within each group")

    a = np.abs(values)
    zero = a <= mapping.min_possible
    sign = np.sign(values)
    any_zero = zero.any()
    if any_zero:
        a[zero] = 1.0
        sign[zero] = 0.0
    keys = mapping.keys(a)
    if any_zero:
        keys[zero] = 0

    is_bin_start = np.empty(n, dtype=bool)
    is_bin_start[0] = True
    np.not_equal(keys[1:], keys[:-1], out=is_bin_start[1:])
    is_bin_start[1:] |= sign[1:] != sign[:-1]
    is_bin_start[starts] = True
    bin_starts = np.flatnonzero(is_bin_start)
    counts = np.diff(np.append(bin_starts, n))
    bin_values = mapping.values(keys[bin_starts]) * sign[bin_starts]
    bin_values[bin_values == 0.0] = 0.0  # -0.0 never appears, but be explicit: the zero bin is +0.0
    offsets = np.append(np.searchsorted(bin_starts, starts), bin_starts.size)
    return _list_array(offsets, bin_values, pa.float64()), _list_array(offsets, counts, pa.int64())


def _parse_mapping(mapping: str) -> tuple[str, float | None]:
    if not isinstance(mapping, str):
        raise ValueError(f"mapping must be a string, got {mapping!r}")
    if mapping == BUCKETS:
        return BUCKETS, None
    if mapping.startswith(DDSKETCH_PREFIX):
        try:
            accuracy = _check_accuracy(float(mapping[len(DDSKETCH_PREFIX) :]))
        except ValueError:
            raise ValueError(f"mapping: bad relative accuracy in {mapping!r}") from None
        return mapping_name(accuracy), accuracy
    raise ValueError(f"mapping must be 'ddsketch:<relative accuracy>' or 'buckets', got {mapping!r}")


def _json_float(value: float) -> float | str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    return float(value)


def _from_json_float(value: Any) -> float:
    if isinstance(value, str):
        if value in ("+Inf", "Inf", "inf", "+inf"):
            return math.inf
        if value in ("-Inf", "-inf"):
            return -math.inf
        raise ValueError(f"bins: bad value {value!r}")
    return float(value)


@dataclass(frozen=True, eq=False)
class Distribution:
    """One mergeable distribution: ``bins`` (float64, strictly ascending) with ``counts`` (int64).

    ``mapping`` is ``"ddsketch:<relative accuracy>"`` (bins are signed DDSketch representative values,
    counts > 0) or ``"buckets"`` (bins are Prometheus ``le`` upper bounds, ``+Inf`` allowed as the
    last; counts >= 0, per bucket). Arrays are read-only; equality is exact (mapping, bins, counts).
    """

    mapping: str
    bins: np.ndarray
    counts: np.ndarray

    def __post_init__(self) -> None:
        name, accuracy = _parse_mapping(self.mapping)
        bins = np.array(self.bins, dtype=np.float64, copy=True).reshape(-1) if np.ndim(self.bins) else None
        if bins is None:
            raise ValueError("bins must be a 1-D sequence of numbers")
        raw = np.asarray(self.counts)
        if raw.ndim != 1 or raw.size != bins.size:
            raise ValueError(f"counts must be a 1-D sequence as long as bins ({bins.size})")
        if raw.size and raw.dtype.kind not in "iu":
            as_float = raw.astype(np.float64)
            if not np.isfinite(as_float).all() or (as_float != np.round(as_float)).any():
                raise ValueError("counts must be non-negative integers")
        counts = raw.astype(np.int64)
        if (counts < 0).any():
            raise ValueError("counts must be non-negative integers")
        if np.isnan(bins).any():
            raise ValueError("bins must not be NaN")
        if bins.size > 1 and (np.diff(bins) <= 0).any():
            raise ValueError("bins must be strictly ascending")
        if accuracy is not None:
            if not np.isfinite(bins).all():
                raise ValueError("bins of a ddsketch distribution must be finite")
            if (counts == 0).any():
                raise ValueError("counts of a ddsketch distribution must be positive (non-empty bins only)")
            if bins.size and not np.array_equal(log_mapping(accuracy).signed_values(bins), bins):
                raise ValueError(f"bins are not representative values of {name}")
            bins[bins == 0.0] = 0.0
        elif bins.size and bins[0] == -math.inf:
            raise ValueError("bins: -Inf is not a bucket upper bound")
        bins.setflags(write=False)
        int_counts = counts.copy()
        int_counts.setflags(write=False)
        object.__setattr__(self, "mapping", name)
        object.__setattr__(self, "bins", bins)
        object.__setattr__(self, "counts", int_counts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Distribution):
            return NotImplemented
        return (
            self.mapping == other.mapping
            and np.array_equal(self.bins, other.bins)
            and np.array_equal(self.counts, other.counts)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Distribution({self.mapping!r}, bins={self.bins.tolist()!r}, counts={self.counts.tolist()!r})"

    @property
    def total(self) -> int:
        """The number of points (sum of counts)."""
        return int(self.counts.sum())

    @property
    def relative_accuracy(self) -> float | None:
        """The DDSketch relative accuracy, None for buckets."""
        return _parse_mapping(self.mapping)[1]

    def merge(self, *others: Distribution) -> Distribution:
        """The distribution of the union: counts of bins with identical values add (exact, any order).

        All must share ``mapping``; buckets distributions must also share their bucket bounds.
        """
        for other in others:
            if not isinstance(other, Distribution):
                raise ValueError(f"others must be Distributions, got {type(other).__name__}")
            if other.mapping != self.mapping:
                raise ValueError(f"others: cannot merge mapping {other.mapping!r} into {self.mapping!r}")
        if not others:
            return self
        if self.mapping == BUCKETS:
            counts = self.counts.copy()
            for other in others:
                if not np.array_equal(other.bins, self.bins):
                    raise ValueError("others: buckets distributions with different bucket bounds do not merge")
                counts += other.counts
            return Distribution(self.mapping, self.bins, counts)
        bins = np.concatenate([self.bins, *(o.bins for o in others)])
        counts = np.concatenate([self.counts, *(o.counts for o in others)])
        unique, inverse = np.unique(bins, return_inverse=True)
        summed = np.zeros(unique.size, dtype=np.int64)
        np.add.at(summed, inverse, counts)
        return Distribution(self.mapping, unique, summed)

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 <= q <= 1), in the metric's unit; NaN when there are no points.

        ddsketch: the value of the bin holding rank ``q*(total-1)``, exactly as
        ``DDSketch.get_quantile_value``. buckets: Prometheus ``histogram_quantile`` (linear
        interpolation within the bucket; lower bound 0 for the first bucket when its upper bound is
        positive, else that bound; the ``+Inf`` bucket returns the highest finite bound; fewer than 2
        buckets -> NaN). A buckets distribution without a ``+Inf`` bound is read as having an empty one
        (Prometheus would return NaN).
        """
        try:
            q = float(q)
        except (TypeError, ValueError):
            raise ValueError(f"q must be a number in [0, 1], got {q!r}") from None
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q!r}")
        if self.mapping == BUCKETS:
            return self._bucket_quantile(q)
        return self._sketch_quantile(q)

    def _sketch_quantile(self, q: float) -> float:
        total = self.total
        if total == 0:
            return math.nan
        bins, counts = self.bins, self.counts
        n_neg = int(np.searchsorted(bins, 0.0, side="left"))
        n_nonpos = int(np.searchsorted(bins, 0.0, side="right"))
        neg = float(counts[:n_neg].sum())
        zero = float(counts[n_neg:n_nonpos].sum())
        rank = q * (float(total) - 1)
        if rank < neg:
            reversed_rank = neg - rank - 1
            running = np.cumsum(counts[:n_neg][::-1])
            hit = np.flatnonzero(running >= reversed_rank + 1)
            i = int(hit[0]) if hit.size else n_neg - 1
            return float(bins[n_neg - 1 - i])
        if rank < zero + neg:
            return 0.0
        running = np.cumsum(counts[n_nonpos:])
        hit = np.flatnonzero(running > rank - zero - neg)
        i = int(hit[0]) if hit.size else running.size - 1
        return float(bins[n_nonpos + i])

    def _bucket_quantile(self, q: float) -> float:
        bounds = self.bins
        cumulative = np.cumsum(self.counts).astype(np.float64)
        if bounds.size == 0 or bounds[-1] != math.inf:
            bounds = np.append(bounds, math.inf)
            cumulative = np.append(cumulative, cumulative[-1] if cumulative.size else 0.0)
        if bounds.size < 2:
            return math.nan
        observations = float(cumulative[-1])
        if observations == 0:
            return math.nan
        rank = q * observations
        b = int(np.searchsorted(cumulative[:-1], rank, side="left"))  # first with cumulative >= rank
        if b == bounds.size - 1:
            return float(bounds[-2])
        if b == 0 and bounds[0] <= 0:
            return float(bounds[0])
        start, end, count = 0.0, float(bounds[b]), float(cumulative[b])
        if b > 0:
            start = float(bounds[b - 1])
            count -= float(cumulative[b - 1])
            rank -= float(cumulative[b - 1])
        return start + (end - start) * (rank / count)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (``+Inf`` bounds as the string ``"+Inf"``); :meth:`from_json` inverts it exactly."""
        return {
            "mapping": self.mapping,
            "bins": [_json_float(v) for v in self.bins.tolist()],
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Distribution:
        """The distribution :meth:`to_json` wrote (also after json.dumps/json.loads)."""
        if not isinstance(data, dict) or not {"mapping", "bins", "counts"} <= set(data):
            raise ValueError("data must be a dict with mapping, bins and counts")
        bins = np.array([_from_json_float(v) for v in data["bins"]], dtype=np.float64)
        return cls(data["mapping"], bins, np.array(data["counts"], dtype=np.int64))

    @classmethod
    def from_values(cls, values: Sequence[float] | np.ndarray, relative_accuracy: float = 0.01) -> Distribution:
        """The DDSketch of ``values`` (any order; finite), as :func:`sketch_columns` makes it."""
        array = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
        name = mapping_name(relative_accuracy)
        if array.size == 0:
            return cls(name, np.empty(0), np.empty(0, dtype=np.int64))
        bins, counts = sketch_columns(np.zeros(1, dtype=np.int64), array, relative_accuracy)
        return cls(name, bins.values.to_numpy(), counts.values.to_numpy())

    @classmethod
    def from_cumulative_buckets(cls, le: Sequence[float], cumulative: Sequence[float]) -> Distribution:
        """A buckets distribution from Prometheus ``_bucket`` samples: ``le`` upper bounds (floats or
        strings like ``"+Inf"``, any order, distinct) and their cumulative counts (integral).

        A cumulative count below the previous bound's (a non-monotonic scrape) raises ValueError
        naming ``le``.
        """
        try:
            bounds = np.array([_from_json_float(v) if isinstance(v, str) else float(v) for v in le], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"le must be numbers or '+Inf', got {le!r}") from None
        try:
            cum = np.array([float(v) for v in cumulative], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"cumulative must be numbers, got {cumulative!r}") from None
        if bounds.size != cum.size:
            raise ValueError(f"le and cumulative must have the same length ({bounds.size} != {cum.size})")
        if np.isnan(bounds).any():
            raise ValueError("le must not be NaN")
        if not np.isfinite(cum).all() or (cum < 0).any() or (cum != np.round(cum)).any():
            raise ValueError("cumulative must be non-negative integral counts")
        order = np.argsort(bounds, kind="stable")
        bounds, cum = bounds[order], cum[order]
        if bounds.size > 1 and (np.diff(bounds) == 0).any():
            raise ValueError(f"le: duplicate bucket bound {bounds[np.flatnonzero(np.diff(bounds) == 0)[0]]!r}")
        counts = np.diff(cum, prepend=0.0)
        if (counts < 0).any():
            i = int(np.flatnonzero(counts < 0)[0])
            raise ValueError(
                f"le={_json_float(bounds[i])!r}: cumulative count {cum[i]:g} is below the previous bucket's "
                f"{cum[i - 1]:g} (non-monotonic histogram)"
            )
        return cls(BUCKETS, bounds, counts.astype(np.int64))


def distributions_from_columns(mapping: pa.Array, bins: pa.ListArray, counts: pa.ListArray) -> list[Distribution]:
    """One :class:`Distribution` per row of the ``mapping``, ``bins``, ``counts`` columns (storage rows)."""
    if not (len(mapping) == len(bins) == len(counts)):
        raise ValueError("mapping, bins and counts must have the same length")
    out = []
    for m, b, c in zip(mapping.to_pylist(), bins.to_pylist(), counts.to_pylist(), strict=True):
        out.append(Distribution(m, np.asarray(b, dtype=np.float64), np.asarray(c, dtype=np.int64)))
    return out
