"""``EvaluateRulesStreaming``: the streaming runner of the rule engine.

Input: aggregate tables, as the batch runner takes them. Their rows are
selected and keyed per (rule, group) (:func:`~transforms.rules.select.select_partials`),
one element per row, timestamped at its window end, in the global window
(state is per key *and* window). Per key, Beam keeps the engine's
:class:`~transforms.rules.engine.RuleState` and a buffer of windows not yet
evaluated. An event-time timer fires when the watermark passes a rule
window's end plus the rule's ``allowed_lateness``; then every buffered window
that is due is evaluated, in order, by the same
:func:`~transforms.rules.engine.evaluate` the batch runner calls. So a window
that arrives out of order or late, but within ``allowed_lateness``, is
evaluated in its place, exactly as in batch. A window arriving after its
rule window was evaluated goes to the ``dead_letters`` output with the reason.

No-data rules also set a timer at ``last data + absent_for``, and a firing
threshold alert one at ``last breach + keep_firing_for``, so that silence is
noticed (and a series that stopped reporting resolves) even when nothing else
arrives for the group.

Timer timestamps are truncated to milliseconds by Beam: all times here are
integer ms.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.coders import PickleCoder, VarIntCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from airis_mon import streams
from airis_mon.schema import DeadLetter
from transforms.rules.batch import POINTS, SelectPartials, count_alert
from transforms.rules.config import NoDataRule, RuleConfig
from transforms.rules.engine import RuleState
from transforms.rules.incremental import advance, rule_window_end, stale_check_due
from transforms.rules.select import GroupKey, PartialWindow

__all__ = ["EvaluateRulesStreaming"]

COMPONENT = "rules"


class _EvaluateWithState(beam.DoFn):
    BUFFER = BagStateSpec("buffer", PickleCoder())
    STATE = ReadModifyWriteStateSpec("state", PickleCoder())
    NEXT_FIRE = ReadModifyWriteStateSpec("next_fire_ms", VarIntCoder())
    EVALUATE = TimerSpec("evaluate", TimeDomain.WATERMARK)

    def __init__(self, rules: Sequence[RuleConfig], window_seconds: int):
        self._rules = {rule.name: rule for rule in rules}
        self._window_seconds = window_seconds

    def _setup_for(self, key: GroupKey) -> tuple[RuleConfig, int, int]:
        rule = self._rules[key[0]]
        return rule, rule.window_ms(self._window_seconds), rule.allowed_lateness * 1000

    def process(
        self,
        element: tuple[GroupKey, PartialWindow],
        buffer=beam.DoFn.StateParam(BUFFER),
        state=beam.DoFn.StateParam(STATE),
        next_fire=beam.DoFn.StateParam(NEXT_FIRE),
        timer=beam.DoFn.TimerParam(EVALUATE),
    ):
        key, part = element
        rule, window_ms, lateness_ms = self._setup_for(key)
        window_end = rule_window_end(part, window_ms)
        evaluated_until = (state.read() or RuleState()).evaluated_until_ms
        if evaluated_until is not None and window_end <= evaluated_until:
            reason = (
                f"late data: window ending {window_end} arrived after rule {rule.name!r} evaluated its group "
                f"up to {evaluated_until} (allowed_lateness {rule.allowed_lateness} s)"
            )
            original = {"key": list(key), "window": part._asdict()}
            yield beam.pvalue.TaggedOutput(
                streams.DEAD_LETTERS,
                DeadLetter(part.window_start_ms, f"{COMPONENT}:{rule.name}", reason, json.dumps(original)),
            )
            return
        buffer.add(part)
        self._schedule(window_end + lateness_ms, next_fire, timer)

    @staticmethod
    def _schedule(fire_ms: int, next_fire, timer) -> None:
        current = next_fire.read()
        if current is None or fire_ms < current:
            next_fire.write(fire_ms)
            timer.set(Timestamp(micros=fire_ms * 1000))

    @on_timer(EVALUATE)
    def on_evaluate(
        self,
        key=beam.DoFn.KeyParam,
        fired_at=beam.DoFn.TimestampParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        state=beam.DoFn.StateParam(STATE),
        next_fire=beam.DoFn.StateParam(NEXT_FIRE),
        timer=beam.DoFn.TimerParam(EVALUATE),
    ):
        rule, window_ms, lateness_ms = self._setup_for(key)
        fired_ms = fired_at.micros // 1000
        horizon_ms = fired_ms - lateness_ms
        parts = list(buffer.read())
        buffer.clear()
        next_fire.clear()
        step = advance(rule, key, state.read(), parts, (), horizon_ms, window_ms)
        new_state = step.state
        state.write(new_state)
        for part in step.waiting:
            buffer.add(part)
        upcoming = [rule_window_end(p, window_ms) + lateness_ms for p in step.waiting]
        if isinstance(rule, NoDataRule):
            if new_state.phase != "firing" and new_state.last_seen_end_ms is not None:
                upcoming.append(new_state.last_seen_end_ms + rule.absent_for * 1000 + lateness_ms)
        elif (stale_due := stale_check_due(rule, new_state, window_ms)) is not None:
            upcoming.append(stale_due + lateness_ms)  # a series that stops reporting resolves then
        upcoming = [due for due in upcoming if due > fired_ms]
        if upcoming:
            self._schedule(min(upcoming), next_fire, timer)
        for alert in step.alerts:
            count_alert(alert)
            yield alert
        for point in step.points:
            yield beam.pvalue.TaggedOutput(POINTS, point)


def _one_per_window(keyed_parts: tuple[GroupKey, list[PartialWindow]]):
    key, parts = keyed_parts
    for part in parts:
        yield beam.window.TimestampedValue((key, part), part.window_end_ms / 1000)


class EvaluateRulesStreaming(beam.PTransform):
    """Aggregate tables -> ``{"alerts": ..., "dead_letters": ..., "points": ...}`` (streaming; points: the
    :class:`~airis_mon.schema.Metric` rules derive, e.g. an slo rule's error budget)."""

    def __init__(self, rules: Sequence[RuleConfig], window_seconds: int):
        super().__init__()
        self._rules = tuple(rules)
        for rule in self._rules:
            rule.window_ms(window_seconds)
        self._window_seconds = window_seconds

    def expand(self, aggregates):
        outputs = (
            aggregates
            | "SelectRuleSeries" >> beam.ParDo(SelectPartials(self._rules))
            | "OnePerWindow" >> beam.FlatMap(_one_per_window)
            | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
            | "EvaluateWithState"
            >> beam.ParDo(_EvaluateWithState(self._rules, self._window_seconds)).with_outputs(
                streams.DEAD_LETTERS, POINTS, main="alerts"
            )
        )
        return {"alerts": outputs["alerts"], streams.DEAD_LETTERS: outputs[streams.DEAD_LETTERS],
                POINTS: outputs[POINTS]}  # fmt: skip
