"""The rule engine: one pure function over an ordered series of windows.

``evaluate(rule, group, windows, state, until_ms)`` takes the windows of one
(rule, group) in event-time order and the state left by the previous call,
and returns the alerts and the new state. It touches no clock, no I/O and no
Beam, so batch runs (all windows at once), streaming runs (a few windows per
timer, state kept by Beam) and backtests give the same alerts: evaluating
``w1..wn`` in one call or in several consecutive calls is the same.

Threshold rules, per (rule, group)::

    inactive --breach--> pending --breach for `for` windows--> firing --recovered--> inactive
                            └──── no breach / gap / NaN ──────────┘      (resolve)

- ``recovery_threshold`` (hysteresis): while firing, a value between the
  recovery threshold and the threshold keeps the alert firing.
- ``keep_firing_for``: a firing alert resolves only once its condition has
  been false for that long.
- A missing window (a gap) or a NaN value is "unknown": it ends a pending run
  and, past ``keep_firing_for``, resolves a firing alert.
- ``repeat_interval``: while firing, a ``repeat`` notification each interval.

No-data rules fire ``absent_for`` after a group's last window, and resolve
when data returns. Rules imported from Prometheus (``type: prometheus``) are evaluated by
:mod:`transforms.rules.prometheus_semantics` with Prometheus's own timing.

``until_ms`` (the evaluation horizon: end of a bounded run,
the live runner's closed-window frontier, or the streaming watermark) lets
them fire when data never comes back, and lets a threshold alert whose series
stopped reporting resolve: the silence up to the horizon is a gap like any
other ("stale series resolve", past ``keep_firing_for``).

Episode ids are ``sha256(rule, source, group, starts_at)``: deterministic.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from airis_mon.schema import Alert, model_id_of
from transforms.rules.config import (
    DEFAULT_NO_DATA_SUMMARY,
    DEFAULT_RESOLVE_SUMMARY,
    DEFAULT_SCORED_RESOLVE_SUMMARY,
    DEFAULT_SCORED_SUMMARY,
    DEFAULT_SUMMARY,
    ConditionRule,
    NoDataRule,
    PrometheusRule,
    RuleConfig,
    ScoredRule,
)

__all__ = ["GroupContext", "RuleState", "WindowValue", "alert_id", "evaluate", "evaluate_with_points"]

_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_RECOVERED = {">": operator.lt, ">=": operator.lt, "<": operator.gt, "<=": operator.gt}


class WindowValue(NamedTuple):
    """The rule's statistic for one window of one group (times in epoch ms)."""

    window_start_ms: int
    window_end_ms: int
    value: float  # NaN when unknown


class GroupContext(NamedTuple):
    """Who the alerts are about: the group's source, tags and window size."""

    source: str
    group: str  # canonical JSON of the group's tags
    window_ms: int


@dataclass(frozen=True)
class RuleState:
    """Everything the engine remembers between calls for one (rule, group)."""

    phase: str = "inactive"  # inactive | pending | firing
    evaluated_until_ms: int | None = None  # end of the last window evaluated
    last_seen_end_ms: int | None = None  # end of the last window with data (no-data rules)
    run_start_ms: int = 0  # start of the current breaching run = episode start
    run_windows: int = 0  # consecutive breaching windows in the run
    peak: float = math.nan  # worst value of the episode
    last_active_end_ms: int = 0  # end of the last window that kept the alert firing
    last_notified_ms: int = 0
    # Prometheus semantics only (transforms.rules.prometheus_semantics); JSON-safe, bounded:
    keep_firing_since_ms: int = 0  # first evaluation the condition was false while firing (0: none)
    recent: tuple = ()  # recent base windows: ([start_ms, {source|le: [count, sum, min, max, mean_sum, n]}], ...)
    # ML monitors only (transforms.rules.scored): the past their scores need; a JSON-safe, bounded dict
    history: dict | None = None


def alert_id(rule: str, source: str, group: str, starts_at_ms: int) -> str:
    """The deterministic episode id."""
    identity = "\x1f".join((rule, source, group, str(starts_at_ms)))
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:24]


def _labels(rule: RuleConfig, group: GroupContext) -> dict[str, str]:
    return {**json.loads(group.group), **rule.labels}


def _render(template: str, fallback: str, values: dict) -> str:
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError, AttributeError, TypeError):
        return fallback.format_map(values)


class _Emitter:
    """Builds the Alert records of one (rule, group)."""

    def __init__(self, rule: RuleConfig, group: GroupContext):
        self.rule = rule
        self.group = group
        self.labels = _labels(rule, group)
        self.labels_json = json.dumps(self.labels, sort_keys=True, separators=(",", ":"))
        self.alerts: list[Alert] = []
        self.details: dict[int, str] = {}  # scored rules: window start ms -> what the score means

    def emit(self, notification: str, at_ms: int, state: RuleState, value: float, resolved_at_ms: int = 0,
             window_start_ms: int | None = None) -> None:  # fmt: skip
        rule, labels = self.rule, self.labels
        is_threshold = isinstance(rule, ConditionRule)
        scored = isinstance(rule, ScoredRule)
        detail_of = at_ms - self.group.window_ms if window_start_ms is None else window_start_ms
        values = {
            "rule": rule.name,
            "metric": rule.metric,
            "aggregation": rule.statistic if is_threshold else "count",
            "value": value,
            "peak": state.peak,
            "threshold": rule.threshold if is_threshold else float(rule.absent_for),
            "recovery_threshold": rule.recovery_threshold if is_threshold else math.nan,
            "comparator": rule.comparator if is_threshold else "absent for",
            "severity": rule.severity,
            "duration_s": (at_ms - state.run_start_ms) / 1000,
            "source": self.group.source,
            "group": self.group.group,
            "labels": defaultdict(str, labels),
            "absent_for_s": 0 if is_threshold else rule.absent_for,
            "notification": notification,
            "detail": self.details.get(detail_of, ""),
        }
        if notification == "resolve":
            default = DEFAULT_SCORED_RESOLVE_SUMMARY if scored else DEFAULT_RESOLVE_SUMMARY
            template = rule.resolve_summary
        else:
            default = DEFAULT_SCORED_SUMMARY if scored else DEFAULT_SUMMARY if is_threshold else DEFAULT_NO_DATA_SUMMARY
            template = rule.summary
        summary = _render(template or default, default, values)
        self.alerts.append(
            Alert(
                id=alert_id(rule.name, self.group.source, self.group.group, state.run_start_ms),
                name=rule.name,
                severity=rule.severity,
                summary=summary,
                description=_render(rule.description, "", values) if rule.description else summary,
                timestamp_ms=at_ms,
                source=self.group.source,
                model_id=model_id_of(labels),
                environment=labels.get("environment", ""),
                alert_type=rule.alert_type,
                threshold=values["threshold"],
                current_value=value,
                peak_value=state.peak,
                duration_s=values["duration_s"],
                status="resolved" if notification == "resolve" else "firing",
                notification=notification,
                starts_at_ms=state.run_start_ms,
                resolved_at_ms=resolved_at_ms,
                rule=rule.name,
                metric=rule.metric,
                group=self.group.group,
                labels=self.labels_json,
                silenced=False,
            )
        )


def _worse(rule: ConditionRule, a: float, b: float) -> float:
    if math.isnan(a):
        return b
    return max(a, b) if rule.comparator in (">", ">=") else min(a, b)


def _unknown_span(rule: ConditionRule, state: RuleState, start_ms: int, end_ms: int, out: _Emitter) -> RuleState:
    """A gap or a NaN window from ``start_ms`` to ``end_ms``: nothing is known to breach."""
    if state.phase == "pending":
        return replace(state, phase="inactive", run_windows=0)
    if state.phase == "firing":
        return _maybe_resolve(rule, state, start_ms, end_ms, math.nan, out)
    return state


def _maybe_resolve(rule: ConditionRule, state: RuleState, start_ms: int, end_ms: int, value: float, out: _Emitter):
    keep_until = state.last_active_end_ms + rule.keep_firing_for * 1000
    if end_ms <= keep_until:
        return state  # still inside keep_firing_for
    resolved_at = max(start_ms, keep_until)
    out.emit("resolve", resolved_at, state, value, resolved_at_ms=resolved_at, window_start_ms=start_ms)
    return replace(state, phase="inactive", run_windows=0, peak=math.nan)


def _step_threshold(rule: ConditionRule, for_windows: int, state: RuleState, w: WindowValue, out: _Emitter):
    value = w.value
    inactive = state.phase == "inactive" and value is not None and not math.isnan(value)
    if inactive and not _COMPARE[rule.comparator](value, rule.threshold):
        # The common case, in one copy of the state: nothing pending or firing (so a gap before
        # this window changes nothing) and no breach.
        return replace(state, evaluated_until_ms=w.window_end_ms, run_windows=0, peak=math.nan)
    if state.evaluated_until_ms is not None and w.window_start_ms > state.evaluated_until_ms:
        state = _unknown_span(rule, state, state.evaluated_until_ms, w.window_start_ms, out)
    state = replace(state, evaluated_until_ms=w.window_end_ms)
    value = w.value
    if value is None or math.isnan(value):
        return _unknown_span(rule, state, w.window_start_ms, w.window_end_ms, out)
    breach = _COMPARE[rule.comparator](value, rule.threshold)

    if state.phase == "firing":
        recovered = not breach
        if rule.recovery_threshold is not None:
            recovered = _RECOVERED[rule.comparator](value, rule.recovery_threshold)
        if not recovered:
            state = replace(state, last_active_end_ms=w.window_end_ms, peak=_worse(rule, state.peak, value))
            repeat_ms = (rule.repeat_interval or 0) * 1000
            if repeat_ms and w.window_end_ms - state.last_notified_ms >= repeat_ms:
                state = replace(state, last_notified_ms=w.window_end_ms)
                out.emit("repeat", w.window_end_ms, state, value)
            return state
        return _maybe_resolve(rule, state, w.window_start_ms, w.window_end_ms, value, out)

    if not breach:
        return replace(state, phase="inactive", run_windows=0, peak=math.nan)
    if state.phase == "inactive":
        state = replace(state, phase="pending", run_start_ms=w.window_start_ms, run_windows=0, peak=math.nan)
    state = replace(state, run_windows=state.run_windows + 1, peak=_worse(rule, state.peak, value))
    if state.run_windows >= for_windows:
        state = replace(state, phase="firing", last_active_end_ms=w.window_end_ms, last_notified_ms=w.window_end_ms)
        out.emit("trigger", w.window_end_ms, state, value)
    return state


def _no_data_silence(rule: NoDataRule, state: RuleState, now_ms: int, out: _Emitter) -> RuleState:
    """Fire if the group has been silent for ``absent_for`` at ``now_ms``."""
    last_seen = state.last_seen_end_ms
    if state.phase == "firing" or last_seen is None or now_ms - last_seen < rule.absent_for * 1000:
        return state
    fired_at = last_seen + rule.absent_for * 1000
    state = replace(state, phase="firing", run_start_ms=last_seen, peak=float(rule.absent_for))
    out.emit("trigger", fired_at, state, float(rule.absent_for))
    return state


def _step_no_data(rule: NoDataRule, state: RuleState, w: WindowValue, out: _Emitter) -> RuleState:
    state = _no_data_silence(rule, state, w.window_start_ms, out)
    if state.phase == "firing":
        silent_s = (w.window_start_ms - state.run_start_ms) / 1000
        state = replace(state, peak=silent_s)
        out.emit("resolve", w.window_start_ms, state, silent_s, resolved_at_ms=w.window_start_ms)
        state = replace(state, phase="inactive")
    return replace(state, last_seen_end_ms=w.window_end_ms, evaluated_until_ms=w.window_end_ms)


def evaluate(
    rule: RuleConfig,
    group: GroupContext,
    windows: Iterable,
    state: RuleState | None = None,
    until_ms: int | None = None,
) -> tuple[list[Alert], RuleState]:
    """Run ``rule`` over ``windows`` of one group, from ``state``.

    Windows already covered by ``state`` (ending at or before its
    ``evaluated_until_ms``) are ignored; the rest are taken in time order.
    ``until_ms`` is the horizon up to which the absence of data is known:
    no-data rules fire on it, and threshold rules treat the silence after the
    group's last window as a gap (pending ends, firing resolves past
    ``keep_firing_for``).
    """
    alerts, state, _ = evaluate_with_points(rule, group, windows, state, until_ms)
    return alerts, state


def evaluate_with_points(
    rule: RuleConfig,
    group: GroupContext,
    windows: Iterable,
    state: RuleState | None = None,
    until_ms: int | None = None,
) -> tuple[list[Alert], RuleState, list]:
    """:func:`evaluate`, and the metric points the rule derives to be stored (slo rules: the error budget
    remaining per window, :class:`~airis_mon.schema.Metric`)."""
    state = state or RuleState()
    if isinstance(rule, PrometheusRule):
        from transforms.rules.prometheus_semantics import evaluate_prometheus

        alerts, state = evaluate_prometheus(rule, group, windows, state, until_ms)
        return alerts, state, []
    out = _Emitter(rule, group)
    done = state.evaluated_until_ms
    ordered = sorted((w for w in windows if done is None or w.window_end_ms > done), key=lambda w: w.window_start_ms)
    points: list = []
    if isinstance(rule, ScoredRule):
        from transforms.rules.scored import score_windows

        scored = score_windows(rule, group.group, ordered, state.history)
        state = replace(state, history=scored.history)
        out.details = scored.details
        ordered, points = scored.windows, scored.points
    if isinstance(rule, ConditionRule):
        for_windows = rule.for_windows(group.window_ms)
        for window in ordered:
            state = _step_threshold(rule, for_windows, state, window, out)
        if until_ms is not None:
            state = _stale_until(rule, state, until_ms, out)
    else:
        for window in ordered:
            state = _step_no_data(rule, state, window, out)
        if until_ms is not None:
            state = _no_data_silence(rule, state, until_ms, out)
    return out.alerts, state, points


def _stale_until(rule: ConditionRule, state: RuleState, until_ms: int, out: _Emitter) -> RuleState:
    """The group has no data from its last window up to the horizon ``until_ms``: that span is unknown.

    A pending run ends; a firing alert resolves once ``keep_firing_for`` has passed without a breach
    (at ``max(end of the last window, last breach + keep_firing_for)``), exactly as when a later window
    arrives after the same gap. ``evaluated_until_ms`` stays at the last window, so a later window sees the
    same gap and nothing is emitted twice.
    """
    evaluated = state.evaluated_until_ms
    if state.phase == "inactive" or evaluated is None or until_ms <= evaluated:
        return state
    return _unknown_span(rule, state, evaluated, until_ms, out)
