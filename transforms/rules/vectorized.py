"""The batch fast path of the rule engine: threshold rules on NumPy columns.

The state machine in :mod:`transforms.rules.engine` stays the reference; this
module gives the same alerts and the same final state (a property test,
``tests/transforms/rules/test_vectorized.py``, checks both on random series,
rules and starting states) for native threshold rules, faster:

- :func:`select_columns` picks a rule's aggregate rows with Arrow compute and
  splits them per (rule, source, group) into :class:`PartialColumns` (one
  NumPy array per field), where :func:`~transforms.rules.select.select_partials`
  builds one Python tuple per row;
- :func:`combine_columns` folds base windows into rule windows with
  ``np.minimum.reduceat`` and friends (sums of several parts with
  ``math.fsum``, as the reference does, so values are bit-identical);
- :func:`evaluate_columns` compares every window with the threshold at once
  and runs the reference state machine only where something happens: from
  each breaching window until the alert is inactive again. Stretches with no
  breach while nothing is pending or firing (almost all windows of almost all
  series) are skipped, since the reference would only carry its state over them.

No-data rules and rules with other semantics go through the reference
(:func:`~transforms.rules.incremental.advance`); :func:`vectorizable` tells which.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airis_mon.schema import Alert
from transforms.rules.config import RuleConfig, ThresholdRule
from transforms.rules.engine import (
    GroupContext,
    RuleState,
    WindowValue,
    _Emitter,
    _stale_until,
    _step_threshold,
)
from transforms.rules.select import _PARTIAL_COLUMNS, GroupKey, PartialWindow, _group_of, rows_of

__all__ = [
    "PartialColumns",
    "combine_columns",
    "concat_columns",
    "evaluate_columns",
    "select_columns",
    "vectorizable",
]

_COMPARE = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
_FLOAT_FIELDS = ("sum", "min", "max", "p50", "p95", "p99")


class PartialColumns(NamedTuple):
    """The partial windows (aggregate rows) of one group as columns: times in epoch ms (int64), ``count``
    int64, the rest float64. Row ``i`` is ``PartialWindow(*(column[i] for column in self))``."""

    window_start_ms: np.ndarray
    window_end_ms: np.ndarray
    count: np.ndarray
    sum: np.ndarray
    min: np.ndarray
    max: np.ndarray
    p50: np.ndarray
    p95: np.ndarray
    p99: np.ndarray

    def __len__(self) -> int:  # rows, not fields
        return len(self.window_start_ms)

    def rows(self) -> list[PartialWindow]:
        """The same rows as the reference's tuples."""
        return [PartialWindow(*row) for row in zip(*(column.tolist() for column in self), strict=True)]


def vectorizable(rule: RuleConfig) -> bool:
    """True for the rules :func:`evaluate_columns` handles: native threshold rules."""
    return type(rule) is ThresholdRule and getattr(rule, "semantics", "native") == "native"


def concat_columns(parts: Sequence[PartialColumns]) -> PartialColumns:
    """One group's columns from several tables, in one."""
    if len(parts) == 1:
        return parts[0]
    return PartialColumns(*(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))


def select_columns(table: pa.Table, rules: Sequence[RuleConfig]) -> Iterator[tuple[GroupKey, PartialColumns]]:
    """Aggregate rows -> ``(group key, columns)``, one item per (rule, group) in ``table``: the rows
    :func:`~transforms.rules.select.select_partials` gives, as arrays, in table order within a group."""
    for rule in rules:
        selected = rows_of(table, rule)
        if not selected.num_rows:
            continue
        series = pc.binary_join_element_wise(selected.column("source"), selected.column("tags"), "\x1f")
        encoded = pc.dictionary_encode(series).combine_chunks()
        keys: list[GroupKey | None] = []
        for text in encoded.dictionary.to_pylist():
            source, tags = text.split("\x1f", 1)
            group = _group_of(rule, tags)
            keys.append(None if group is None else (rule.name, source, group))
        # Several series may share a group (group_by): number the groups, then sort rows by group (stable).
        group_numbers: dict[GroupKey, int] = {}
        series_group = np.array(
            [-1 if key is None else group_numbers.setdefault(key, len(group_numbers)) for key in keys], dtype=np.int64
        )
        row_group = series_group[encoded.indices.to_numpy(zero_copy_only=False)]
        order = np.argsort(row_group, kind="stable")
        row_group = row_group[order]
        columns = [selected.column(name).to_numpy() for name in _PARTIAL_COLUMNS]
        columns = [column[order] for column in columns]
        bounds = np.flatnonzero(np.diff(row_group)) + 1
        starts = np.concatenate(([0], bounds))
        ends = np.concatenate((bounds, [len(row_group)]))
        by_number = list(group_numbers)
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            number = row_group[start]
            if number >= 0:
                yield by_number[number], PartialColumns(*(column[start:end] for column in columns))


def _fsum_buckets(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per-bucket sums of ``values`` as the reference's ``math.fsum``: exact for buckets of several parts,
    and a single ``-0.0`` is ``0.0`` (adding ``0.0`` does that and changes no other value)."""
    totals = values[starts] + 0.0
    for index in np.flatnonzero(sizes > 1).tolist():
        begin = starts[index]
        totals[index] = math.fsum(values[begin : begin + sizes[index]].tolist())
    return totals


def combine_columns(parts: PartialColumns, rule: ThresholdRule, window_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold one group's partial rows into the rule's windows: ``(window starts in epoch ms, values)``,
    ordered, the same as :func:`~transforms.rules.select.combine_windows`."""
    if not len(parts):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    buckets = parts.window_start_ms - parts.window_start_ms % window_ms
    order = np.argsort(buckets, kind="stable")
    buckets = buckets[order]
    first = np.flatnonzero(np.concatenate(([True], buckets[1:] != buckets[:-1])))
    sizes = np.diff(np.concatenate((first, [len(buckets)])))
    aggregation = rule.aggregation
    if aggregation in ("count", "sum", "rate", "mean"):
        counts = np.add.reduceat(parts.count[order], first)
        totals = _fsum_buckets(parts.sum[order], first, sizes)
        if aggregation == "count":
            values = counts.astype(np.float64)
        elif aggregation == "sum":
            values = totals
        elif aggregation == "rate":
            values = totals / (window_ms / 1000)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(counts > 0, totals / np.where(counts > 0, counts, 1), np.nan)
    elif aggregation == "min":
        values = _extreme_like_python(parts.min[order], first, sizes, np.minimum, min)
    else:  # max, p50, p95, p99: the worst part (the reference's max() of Python floats)
        values = _extreme_like_python(getattr(parts, aggregation)[order], first, sizes, np.maximum, max)
    return buckets[first], values


def _extreme_like_python(values: np.ndarray, first: np.ndarray, sizes: np.ndarray, ufunc, builtin) -> np.ndarray:
    """``ufunc.reduceat`` (``np.minimum``/``np.maximum``), except in a bucket with a NaN part, which
    Python's ``min()``/``max()`` (``builtin``) treat by order (a NaN first wins, a NaN later is
    skipped), or with a zero (``0.0`` and ``-0.0`` are equal; Python keeps the first): there the
    reference's own call decides, so values match it exactly."""
    result = ufunc.reduceat(values, first)
    for index in np.flatnonzero((np.isnan(result) | (result == 0)) & (sizes > 1)).tolist():
        begin = first[index]
        result[index] = builtin(values[begin : begin + sizes[index]].tolist())
    return result


def _skip_quiet(state: RuleState, values: np.ndarray, ends: np.ndarray, begin: int, stop: int) -> RuleState:
    """The reference's state after windows ``begin..stop-1`` in which nothing breaches, from an inactive
    state: the evaluation point moves on, and a known (non-NaN) window resets the run and the peak."""
    if stop <= begin:
        return state
    if np.any(~np.isnan(values[begin:stop])):
        return replace(state, evaluated_until_ms=int(ends[stop - 1]), run_windows=0, peak=math.nan)
    return replace(state, evaluated_until_ms=int(ends[stop - 1]))


def evaluate_columns(
    rule: ThresholdRule,
    group: GroupContext,
    starts: np.ndarray,
    values: np.ndarray,
    state: RuleState | None = None,
    until_ms: int | None = None,
) -> tuple[list[Alert], RuleState]:
    """:func:`~transforms.rules.engine.evaluate` of a native threshold rule over windows given as columns
    (``starts``: window starts in epoch ms, ordered and distinct; each window is ``group.window_ms`` long)."""
    state = state or RuleState()
    window_ms = group.window_ms
    ends = starts + window_ms
    if state.evaluated_until_ms is not None:
        keep = ends > state.evaluated_until_ms
        starts, values, ends = starts[keep], values[keep], ends[keep]
    out = _Emitter(rule, group)
    for_windows = rule.for_windows(window_ms)
    breaching = np.flatnonzero(_COMPARE[rule.comparator](values, rule.threshold))  # NaN compares False
    position, count = 0, len(starts)
    start_list: list[int] | None = None
    while position < count:
        if state.phase == "inactive":
            upcoming = np.searchsorted(breaching, position)
            if upcoming == len(breaching):
                state = _skip_quiet(state, values, ends, position, count)
                break
            breach = int(breaching[upcoming])
            state = _skip_quiet(state, values, ends, position, breach)
            position = breach
        if start_list is None:
            start_list, value_list = starts.tolist(), values.tolist()
        window_start = start_list[position]
        window = WindowValue(window_start, window_start + window_ms, value_list[position])
        state = _step_threshold(rule, for_windows, state, window, out)
        position += 1
    if until_ms is not None:
        state = _stale_until(rule, state, until_ms, out)
    return out.alerts, state
