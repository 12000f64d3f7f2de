"""From aggregate tables to the windows each (rule, group) evaluates.

:func:`select_partials` picks the aggregate rows a rule selects (metric,
source, tag matchers) and keys them by ``(rule, source, group)``, where the
group is the rule's ``group_by`` tags (all tags when it has none).
:func:`combine_windows` folds the rows of one group into the rule's windows:

- count, sum, min, max, mean and rate (sum per second) are exact, whatever
  the number of series in the group or base windows in a rule window;
- p50/p95/p99 are exact for one series in one base window; otherwise they are
  the maximum of the parts' quantiles ("the worst replica"), an upper bound.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from airis_mon.routing import matches
from airis_mon.schema import tags_from_json
from transforms.rules.config import ConditionRule, PrometheusRule, RuleConfig, ScoredRule
from transforms.rules.engine import WindowValue
from transforms.rules.promql import compile_expr

__all__ = ["GroupKey", "PartialWindow", "combine_windows", "rows_of", "select_partials"]

GroupKey = tuple[str, str, str]
"""(rule name, source, canonical JSON of the group's tags)"""


class PartialWindow(NamedTuple):
    """One aggregate row (one series, one base window) as a rule needs it."""

    window_start_ms: int
    window_end_ms: int
    count: int
    sum: float
    min: float
    max: float
    p50: float
    p95: float
    p99: float


_PARTIAL_COLUMNS = ("window_start_ms", "window_end_ms", "count", "sum", "min", "max", "p50", "p95", "p99")


def _group_of(rule: RuleConfig, tags_json: str) -> str | None:
    """The group JSON of a series, or None when the rule does not select it."""
    tags = tags_from_json(tags_json)
    if isinstance(rule, PrometheusRule):
        from transforms.rules.prometheus_semantics import group_of

        found = group_of(rule, rule.metric, tags)
        return None if found is None else found[0]
    if not matches(rule.tags, tags):
        return None
    if rule.group_by is not None:
        tags = {key: tags.get(key, "") for key in rule.group_by}
    return json.dumps(tags, sort_keys=True, separators=(",", ":"))


def rows_of(table: pa.Table, rule: RuleConfig, metric: str | None = None) -> pa.Table:
    """The aggregate rows of ``table`` a rule reads: its metric (or ``metric``, for rules reading several),
    and its source when it names one."""
    mask = pc.equal(table.column("name"), metric or rule.metric)
    if rule.source is not None:
        mask = pc.and_(mask, pc.equal(table.column("source"), rule.source))
    return table.filter(mask)


def select_partials(table: pa.Table, rules: Sequence[RuleConfig]) -> Iterator[tuple[GroupKey, list[PartialWindow]]]:
    """Aggregate rows -> ``(group key, partial windows)``, one item per group in ``table``."""
    from transforms.rules.scored import is_distribution_table, select_scored

    distributions = is_distribution_table(table)
    for rule in rules:
        if isinstance(rule, ScoredRule):
            yield from select_scored(table, rule)
            continue
        if distributions:  # distribution rows feed drift rules only
            continue
        if isinstance(rule, PrometheusRule):
            yield from _select_prometheus(table, rule)
            continue
        selected = rows_of(table, rule)
        if not selected.num_rows:
            continue
        groups = {tags: _group_of(rule, tags) for tags in pc.unique(selected.column("tags")).to_pylist()}
        by_key: dict[GroupKey, list[PartialWindow]] = {}
        columns = [selected.column(c).to_pylist() for c in ("source", "tags", *_PARTIAL_COLUMNS)]
        for source, tags, *values in zip(*columns, strict=True):
            group = groups[tags]
            if group is not None:
                by_key.setdefault((rule.name, source, group), []).append(PartialWindow(*values))
        yield from by_key.items()


def _select_prometheus(table: pa.Table, rule: PrometheusRule) -> Iterator[tuple[GroupKey, list]]:
    """The rows of every selector of a prometheus rule, tagged with the data key they feed."""
    from transforms.rules.prometheus_semantics import PromPartial, group_of

    by_key: dict[GroupKey, list] = {}
    for metric in dict.fromkeys(s.metric for s in compile_expr(rule.expr).selectors()):
        selected = rows_of(table, rule, metric)
        if not selected.num_rows:
            continue
        found = {t: group_of(rule, metric, tags_from_json(t)) for t in pc.unique(selected.column("tags")).to_pylist()}
        columns = [selected.column(c).to_pylist() for c in ("source", "tags", *_PARTIAL_COLUMNS)]
        for source, tags, *values in zip(*columns, strict=True):
            hit = found[tags]
            if hit is not None:
                by_key.setdefault((rule.name, source, hit[0]), []).extend(PromPartial(*values, k) for k in hit[1])
    yield from by_key.items()


def combine_windows(parts: Iterable[PartialWindow], rule: RuleConfig, window_ms: int) -> list[WindowValue]:
    """Fold partial rows into the rule's windows (ordered), valued by its aggregation (prometheus rules:
    :class:`~transforms.rules.prometheus_semantics.PromWindow` base windows; ML monitors:
    :class:`~transforms.rules.scored.ScoreWindow`)."""
    if isinstance(rule, PrometheusRule):
        from transforms.rules.prometheus_semantics import combine_prom_windows

        return combine_prom_windows(parts, window_ms)
    if isinstance(rule, ScoredRule):
        from transforms.rules.scored import combine_scored

        return combine_scored(parts, rule, window_ms)
    buckets: dict[int, list[PartialWindow]] = {}
    for part in parts:
        buckets.setdefault(part.window_start_ms - part.window_start_ms % window_ms, []).append(part)
    aggregation = rule.aggregation if isinstance(rule, ConditionRule) else "count"
    windows = []
    for start in sorted(buckets):
        rows = buckets[start]
        count = sum(r.count for r in rows)
        total = math.fsum(r.sum for r in rows)
        if aggregation == "count":
            value = float(count)
        elif aggregation == "sum":
            value = total
        elif aggregation == "rate":
            value = total / (window_ms / 1000)
        elif aggregation == "mean":
            value = total / count if count else math.nan
        elif aggregation == "min":
            value = min(r.min for r in rows)
        elif aggregation == "max":
            value = max(r.max for r in rows)
        else:  # p50 | p95 | p99
            value = max(getattr(r, aggregation) for r in rows)
        windows.append(WindowValue(start, start + window_ms, value))
    return windows
