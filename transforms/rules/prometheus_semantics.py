"""Prometheus 2.42 alerting semantics for imported rules (``type: prometheus``), over base windows.

- Evaluation at every base window: the evaluation at ``S`` (epoch ms) is the window ``[S, S + interval)``
  (interval = ``aggregation.window_seconds``): a Prometheus sample at ``T`` is an AIRIS-MON point at ``T``,
  which lands in the window starting at ``T`` when samples are interval-aligned.
- A window's sample value is its mean (exact with one sample per series and window); several series of one
  group (``sum by``) add up their means.
- Instant selectors see the latest window starting in ``[S - lookback, S]`` (lookback 5 min, closed at
  both ends as in 2.42): a missing sample is bridged; a series that stops goes absent after the lookback.
- Range functions see the windows starting in ``[S - range, S]`` (2.42 includes the left end). ``rate`` is
  Prometheus's extrapolated rate (counter resets, extrapolation to the range edges, to zero).
- ``activeAt`` = the first true evaluation; firing once ``S - activeAt >= for``; ``keep_firing_for`` holds a
  firing alert while ``S - keepFiringSince < keep_firing_for``; resolved at the first evaluation where it is
  not active. Trigger ``timestamp_ms`` = the firing evaluation, ``starts_at_ms`` = activeAt, resolve
  ``timestamp_ms``/``resolved_at_ms`` = the resolving evaluation.

The recent windows the lookback and ranges need are kept in :class:`RuleState` (``recent``), bounded to
``max(lookback, longest range)``, so incremental runners give the batch's alerts.
"""

from __future__ import annotations

import json
import math
import operator
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import NamedTuple

from airis_mon.schema import Alert, model_id_of
from transforms.rules.config import PrometheusRule
from transforms.rules.engine import GroupContext, RuleState, alert_id
from transforms.rules.promql import Cond, Plan, Selector, compile_expr

__all__ = ["PromPartial", "PromWindow", "combine_prom_windows", "evaluate_prometheus", "group_of", "tag_parts"]

_CMP = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
        "!=": operator.ne}  # fmt: skip
_DEFAULT_SUMMARY = "{rule}: {value:.6g} ({group})"
_DEFAULT_RESOLVE = "{rule} resolved after {duration_s:g} s ({group})"


class PromPartial(NamedTuple):
    """A partial (base) window of one series with the data key it feeds: ``"<selector index>|<le>"``."""

    window_start_ms: int
    window_end_ms: int
    count: int
    sum: float
    min: float
    max: float
    p50: float
    p95: float
    p99: float
    key: str


class PromWindow(NamedTuple):
    """One base window of a group: data key -> ``[count, sum, min, max, sum of series means, series]``."""

    window_start_ms: int
    window_end_ms: int
    data: dict[str, list[float]]


def group_of(rule: PrometheusRule, metric: str, tags: dict[str, str]) -> tuple[str, tuple[str, ...]] | None:
    """``(group JSON, data keys)`` of a series of ``metric`` with ``tags`` (one key per selector that takes
    it), or None when no selector takes it."""
    plan = compile_expr(rule.expr)
    by = plan.histogram_by
    le = tags.get("le", "") if by is not False else ""
    keys = tuple(f"{i}|{le}" for i, selector in enumerate(plan.selectors()) if selector.selects(metric, tags))
    if not keys:
        return None
    if plan.is_absent:
        group: dict[str, str] = {}
    elif by is False:
        group = dict(tags)
    elif by is None:
        group = {k: v for k, v in tags.items() if k != "le"}
    else:
        group = {k: tags.get(k, "") for k in by}
    return json.dumps(group, sort_keys=True, separators=(",", ":")), keys


def tag_parts(parts: Iterable, key: str) -> Iterator[PromPartial]:
    """Partial windows of one series -> :class:`PromPartial` with data ``key``."""
    for part in parts:
        yield PromPartial(*part[:9], key)


def combine_prom_windows(parts: Iterable, window_ms: int) -> list[PromWindow]:
    """Fold partial windows (tagged or not: an untagged one feeds selector 0) into base windows, ordered."""
    buckets: dict[int, dict[str, list[float]]] = defaultdict(dict)
    for part in parts:
        key = part.key if isinstance(part, PromPartial) else "0|"
        start = part.window_start_ms - part.window_start_ms % window_ms
        mean = part.sum / part.count if part.count else math.nan
        cell = buckets[start].get(key)
        if cell is None:
            buckets[start][key] = [part.count, part.sum, part.min, part.max, mean, 1]
        else:
            cell[0] += part.count
            cell[1] += part.sum
            cell[2] = min(cell[2], part.min)
            cell[3] = max(cell[3], part.max)
            cell[4] += mean
            cell[5] += 1
    return [PromWindow(start, start + window_ms, buckets[start]) for start in sorted(buckets)]


def _cells(recent: Sequence, index: int, start_ms: int, end_ms: int) -> list[tuple[int, str, list[float]]]:
    """``(window start, le, cell)`` of selector ``index`` in windows starting in ``[start_ms, end_ms]``."""
    prefix = f"{index}|"
    return [
        (start, key[len(prefix) :], cell)
        for start, data in recent
        if start_ms <= start <= end_ms
        for key, cell in data.items()
        if key.startswith(prefix)
    ]


def _extrapolated_rate(samples: list[tuple[int, float]], range_start: int, range_end: int) -> float | None:
    """Prometheus 2.42 ``rate`` of a counter's ``(ms, value)`` samples in ``[range_start, range_end]``."""
    if len(samples) < 2:
        return None
    first_t, first_v = samples[0]
    last_t, last_v = samples[-1]
    result = last_v - first_v
    previous = first_v
    for _, value in samples[1:]:
        if value < previous:
            result += previous
        previous = value
    sampled = (last_t - first_t) / 1000
    average = sampled / (len(samples) - 1)
    to_start = (first_t - range_start) / 1000
    to_end = (range_end - last_t) / 1000
    if result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled + (to_start if to_start < threshold else average / 2)
    interval += to_end if to_end < threshold else average / 2
    return result * (interval / sampled) / ((range_end - range_start) / 1000)


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's ``histogram_quantile`` over ``(upper bound, cumulative count)``."""
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets)
    if len(buckets) < 2 or buckets[-1][0] != math.inf:
        return math.nan
    counts = [c for _, c in buckets]
    for i in range(1, len(counts)):  # monotonic, as Prometheus's ensureMonotonic
        counts[i] = max(counts[i], counts[i - 1])
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], counts[b]
    if b > 0:
        start, count, rank = buckets[b - 1][0], counts[b] - counts[b - 1], rank - counts[b - 1]
    return start + (end - start) * (rank / count)


class _Evaluator:
    def __init__(self, rule: PrometheusRule, plan: Plan):
        self.rule = rule
        self.plan = plan
        self.sources = plan.selectors()
        self.lookback_ms = rule.lookback * 1000

    def index(self, selector: Selector) -> int:
        return self.sources.index(selector._replace(range_s=None))

    def present(self, recent: Sequence, selector: Selector, at_ms: int) -> list:
        span = self.lookback_ms if selector.range_s is None else selector.range_s * 1000
        return _cells(recent, self.index(selector), at_ms - span, at_ms)

    def vector(self, cond: Cond, recent: Sequence, at_ms: int) -> float | None:
        vector = cond.vector
        cells = self.present(recent, vector.selector, at_ms)
        if not cells:
            return None
        if vector.func == "instant":
            newest = max(start for start, _, _ in cells)
            cell = next(c for start, _, c in cells if start == newest)
            return cell[4]
        if vector.func == "avg":
            return math.fsum(c[1] for _, _, c in cells) / sum(c[0] for _, _, c in cells)
        if vector.func == "sum":
            return math.fsum(c[1] for _, _, c in cells)
        if vector.func == "max":
            return max(c[3] for _, _, c in cells)
        if vector.func == "min":
            return min(c[2] for _, _, c in cells)
        range_start = at_ms - vector.selector.range_s * 1000
        by_le: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for start, le, cell in sorted(cells, key=lambda item: item[0]):
            by_le[le].append((start, cell[4]))
        rates = {le: _extrapolated_rate(samples, range_start, at_ms) for le, samples in by_le.items()}
        if vector.func == "rate":
            return rates.get("")
        buckets = [(float(le), r) for le, r in rates.items() if r is not None and le]
        value = _bucket_quantile(vector.quantile, buckets)
        return None if math.isnan(value) else value

    def cond(self, cond: Cond, recent: Sequence, at_ms: int) -> float | None:
        if cond.kind == "compare":
            value = self.vector(cond, recent, at_ms)
            if value is None or not _CMP[cond.comparator](value, cond.threshold):
                return None
            return value
        return None if self.present(recent, cond.selector, at_ms) else 1.0

    def result(self, recent: Sequence, at_ms: int) -> float | None:
        value = self.cond(self.plan.first, recent, at_ms)
        for op, cond in self.plan.steps:
            if value is None:
                return None
            other = self.cond(cond, recent, at_ms)
            if (op == "and") == (other is None):
                value = None
        return value


class _Emitter:
    def __init__(self, rule: PrometheusRule, group: GroupContext):
        self.rule, self.group = rule, group
        plan = compile_expr(rule.expr)
        own = {}
        if plan.is_absent:  # absent()'s result carries the selector's equality matchers
            own = {m.label: m.value for m in plan.first.selector.matchers if m.op == "="}
        self.labels = {**json.loads(group.group), **own, **rule.labels}
        self.labels_json = json.dumps(self.labels, sort_keys=True, separators=(",", ":"))
        self.alerts: list[Alert] = []
        first = compile_expr(rule.expr).first
        self.threshold = first.threshold if first.kind == "compare" else math.nan
        self.comparator = first.comparator if first.kind == "compare" else first.kind

    def emit(self, notification: str, at_ms: int, state: RuleState, value: float) -> None:
        rule, resolved = self.rule, notification == "resolve"
        values = {"rule": rule.name, "metric": rule.metric, "aggregation": "promql", "value": value,
                  "peak": state.peak, "threshold": self.threshold, "recovery_threshold": math.nan,
                  "comparator": self.comparator, "severity": rule.severity,
                  "duration_s": (at_ms - state.run_start_ms) / 1000, "source": self.group.source,
                  "group": self.group.group, "labels": defaultdict(str, self.labels), "absent_for_s": 0,
                  "notification": notification}  # fmt: skip
        default = _DEFAULT_RESOLVE if resolved else _DEFAULT_SUMMARY
        template = (rule.resolve_summary if resolved else rule.summary) or default
        try:
            summary = template.format_map(values)
        except (KeyError, ValueError, IndexError, AttributeError, TypeError):
            summary = default.format_map(values)
        try:
            description = rule.description.format_map(values) if rule.description else summary
        except (KeyError, ValueError, IndexError, AttributeError, TypeError):
            description = summary
        self.alerts.append(
            Alert(
                id=alert_id(rule.name, self.group.source, self.group.group, state.run_start_ms),
                name=rule.name, severity=rule.severity, summary=summary, description=description,
                timestamp_ms=at_ms, source=self.group.source, model_id=model_id_of(self.labels),
                environment=self.labels.get("environment", ""), alert_type=rule.alert_type,
                threshold=self.threshold, current_value=value, peak_value=state.peak,
                duration_s=values["duration_s"], status="resolved" if resolved else "firing",
                notification=notification, starts_at_ms=state.run_start_ms,
                resolved_at_ms=at_ms if resolved else 0, rule=rule.name, metric=rule.metric,
                group=self.group.group, labels=self.labels_json, silenced=False,
            )
        )  # fmt: skip


def _step(rule: PrometheusRule, state: RuleState, value: float | None, at_ms: int, out: _Emitter) -> RuleState:
    """One Prometheus evaluation at ``at_ms`` with the group's result ``value`` (None: not in the result)."""
    if value is not None:
        if state.phase == "inactive":
            state = replace(state, phase="pending", run_start_ms=at_ms, peak=value)
        else:
            peak = value if math.isnan(state.peak) else _worse(out, state.peak, value)
            state = replace(state, keep_firing_since_ms=0, peak=peak)
        if state.phase == "pending" and at_ms - state.run_start_ms >= rule.for_ * 1000:
            state = replace(state, phase="firing", last_notified_ms=at_ms)
            out.emit("trigger", at_ms, state, value)
        return state
    if state.phase == "pending":
        return replace(state, phase="inactive", peak=math.nan)
    if state.phase == "firing":
        since = state.keep_firing_since_ms or at_ms
        if rule.keep_firing_for and at_ms - since < rule.keep_firing_for * 1000:
            return replace(state, keep_firing_since_ms=since)
        out.emit("resolve", at_ms, state, math.nan)
        return replace(state, phase="inactive", keep_firing_since_ms=0, peak=math.nan)
    return state


def _worse(out: _Emitter, a: float, b: float) -> float:
    return min(a, b) if out.comparator in ("<", "<=") else max(a, b)


def evaluate_prometheus(
    rule: PrometheusRule,
    group: GroupContext,
    windows: Iterable,
    state: RuleState,
    until_ms: int | None,
) -> tuple[list[Alert], RuleState]:
    """:func:`~transforms.rules.engine.evaluate` for a prometheus rule: evaluate at every base window start
    ``S`` with ``S + interval <= max(end of the newest window, until_ms)`` not yet evaluated."""
    plan = compile_expr(rule.expr)
    evaluator = _Evaluator(rule, plan)
    out = _Emitter(rule, group)
    step_ms = group.window_ms
    done = state.evaluated_until_ms
    new = sorted((w for w in windows if done is None or w.window_end_ms > done), key=lambda w: w.window_start_ms)
    recent = [(start, data) for start, data in state.recent]
    recent.extend((w.window_start_ms, w.data) for w in new)
    if not recent and done is None:
        return [], state
    limit = max([w.window_end_ms for w in new] + [until_ms or 0, done or 0])
    keep_ms = max(evaluator.lookback_ms, plan.max_range_s() * 1000)
    at = done if done is not None else recent[0][0]
    starts = [w.window_start_ms for w in new]
    next_data = 0
    while at + step_ms <= limit:
        while next_data < len(starts) and starts[next_data] <= at:
            next_data += 1
        quiet = not any(at - keep_ms <= start <= at for start, _ in recent)
        if quiet:
            upcoming = starts[next_data] if next_data < len(starts) else None
            value = 1.0 if plan.is_absent else None
            stable = (value is None and state.phase == "inactive") or (
                value is not None and state.phase == "firing" and not state.keep_firing_since_ms
            )
            if stable:  # nothing can change before the next window with data
                if upcoming is not None and upcoming + step_ms <= limit:
                    at = upcoming
                    state = replace(state, evaluated_until_ms=at)
                    continue
                at += (limit - step_ms - at) // step_ms * step_ms + step_ms
                state = replace(state, evaluated_until_ms=at)
                break
        else:
            value = evaluator.result(recent, at)
        state = _step(rule, state, value, at, out)
        at += step_ms
        state = replace(state, evaluated_until_ms=at)
    horizon = state.evaluated_until_ms or at
    kept = tuple([start, data] for start, data in recent if start >= horizon - step_ms - keep_ms)
    return out.alerts, replace(state, recent=kept)
