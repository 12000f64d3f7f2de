"""One step of a rule runner that evaluates a group in pieces: the piece both
stateful runners share.

A runner that does not see all of a group's windows at once (the streaming
runner, on each timer; the live runner, once per cycle) keeps, per
(rule, group), the engine's :class:`~transforms.rules.engine.RuleState` and
the partial windows that arrived but whose rule window is not complete yet.
:func:`advance` adds newly arrived partial windows, evaluates every rule
window that ends at or before ``horizon_ms`` (epoch ms) with the same
:func:`~transforms.rules.engine.evaluate` the batch runner calls, and keeps the
rest waiting. Feeding a group's windows through any sequence of increasing
horizons gives the alerts of one batch evaluation with the last horizon.

>>> step = advance(rule, key, state, waiting, new_parts, horizon_ms, window_ms)  # doctest: +SKIP
>>> step.alerts, step.state, step.waiting, step.late  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from airis_mon.schema import Alert
from transforms.rules.config import ConditionRule, PrometheusRule, RuleConfig
from transforms.rules.engine import GroupContext, RuleState, evaluate_with_points
from transforms.rules.promql import compile_expr
from transforms.rules.select import GroupKey, PartialWindow, combine_windows

__all__ = ["Step", "advance", "rule_window_end", "stale_check_due"]


class Step(NamedTuple):
    """What one :func:`advance` gives: alerts, the new state, parts still waiting, parts that came too late,
    and the metric points the rule derived (slo rules: the error budget remaining)."""

    alerts: list[Alert]
    state: RuleState
    waiting: list[PartialWindow]
    late: list[PartialWindow]
    points: tuple | list = ()


def rule_window_end(part: PartialWindow, window_ms: int) -> int:
    """End (epoch ms) of the rule window a partial (base) window belongs to."""
    return part.window_start_ms - part.window_start_ms % window_ms + window_ms


def advance(
    rule: RuleConfig,
    key: GroupKey,
    state: RuleState | None,
    waiting: Iterable[PartialWindow],
    arrived: Iterable[PartialWindow],
    horizon_ms: int,
    window_ms: int,
    until_ms: int | None = None,
) -> Step:
    """Evaluate the rule windows of one group that are complete at ``horizon_ms``.

    ``waiting``: parts kept from earlier steps; ``arrived``: new parts. A part
    whose rule window was already evaluated (it ends at or before the state's
    ``evaluated_until_ms``) is ``late``: it is not evaluated, the caller
    dead-letters it. ``until_ms`` (default ``horizon_ms``) is the engine's
    horizon for silence: no-data rules and stale series.
    """
    state = state or RuleState()
    done = state.evaluated_until_ms
    late: list[PartialWindow] = []
    due: list[PartialWindow] = []
    still_waiting: list[PartialWindow] = []
    for part in (*waiting, *arrived):
        end = rule_window_end(part, window_ms)
        if done is not None and end <= done:
            late.append(part)
        elif end <= horizon_ms:
            due.append(part)
        else:
            still_waiting.append(part)
    windows = combine_windows(due, rule, window_ms)
    silence_until = horizon_ms if until_ms is None else until_ms
    if isinstance(rule, ConditionRule):
        # Known silence ends at the last rule-window boundary: a window that starts before it and ends after
        # the horizon may still arrive on time.
        silence_until -= silence_until % window_ms
    alerts, state, points = evaluate_with_points(
        rule, GroupContext(key[1], key[2], window_ms), windows, state, silence_until
    )
    return Step(alerts, state, still_waiting, late, points)


def stale_check_due(rule: RuleConfig, state: RuleState, window_ms: int) -> int | None:
    """The smallest horizon (epoch ms) at which a firing threshold alert whose group sends nothing more
    resolves (``keep_firing_for`` after its last breach, on a rule-window boundary); None when not firing.
    A prometheus rule: the next base window while its state can still change without new data."""
    if isinstance(rule, PrometheusRule):
        # Prometheus semantics: the lookback and ranges expire, absent() can fire: next window while any can.
        busy = state.phase != "inactive" or state.recent
        absent = compile_expr(rule.expr).is_absent  # firing on silence, with nothing left to expire: stays
        stable = absent and state.phase == "firing" and not state.keep_firing_since_ms and not state.recent
        if state.evaluated_until_ms is None or not busy or stable:
            return None
        return state.evaluated_until_ms + window_ms
    if not isinstance(rule, ConditionRule) or state.phase != "firing" or state.evaluated_until_ms is None:
        return None
    keep_until = max(state.last_active_end_ms + rule.keep_firing_for * 1000, state.evaluated_until_ms)
    return (keep_until // window_ms + 1) * window_ms
