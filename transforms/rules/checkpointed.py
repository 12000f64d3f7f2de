"""``EvaluateRulesFromCheckpoint``: the rule runner of the live (cycle by cycle) runner.

Each cycle hands it the aggregates of the windows that closed in that cycle
and the entries the previous cycle left (per (rule, source, group): the
engine's :class:`~transforms.rules.engine.RuleState` and the partial windows
whose rule window is not complete yet). Every group that has new windows or
an entry takes one :func:`~transforms.rules.incremental.advance` step to the
cycle's horizon, the same step the streaming runner takes on a timer and the
batch runner takes once; so cutting the input into cycles at any points gives
the alerts of one batch run, episode ids included.

Outputs: ``alerts``; ``entries`` (the new entries: groups pending, firing,
with waiting windows, with recent windows (prometheus rules), or of a no-data rule); ``dead_letters`` (windows whose
rule window was already evaluated: late).

>>> out = aggregates | EvaluateRulesFromCheckpoint(rules, 60, entries, horizon_ms)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import apache_beam as beam

from airis_mon import streams
from airis_mon.schema import AlertState, DeadLetter
from transforms.rules.batch import COMPONENT, POINTS, SelectPartials, count_alert
from transforms.rules.config import NoDataRule, RuleConfig
from transforms.rules.engine import RuleState, alert_id
from transforms.rules.incremental import advance
from transforms.rules.prometheus_semantics import PromPartial
from transforms.rules.scored import DistPartial
from transforms.rules.select import GroupKey, PartialWindow

__all__ = ["ENTRIES", "EvaluateRulesFromCheckpoint", "RuleEntry", "alert_states_of"]

ENTRIES = "entries"


@dataclass(frozen=True)
class RuleEntry:
    """What the engine remembers about one (rule, source, group) between cycles."""

    key: GroupKey
    state: RuleState
    waiting: tuple[PartialWindow, ...] = ()

    def to_json(self) -> dict:
        """A JSON-able dict (NaN peak as null)."""
        # Field by field, not dataclasses.asdict: that deep-copies the ML monitors' history (JSON-safe already)
        # on every entry of every cycle, most of a live cycle's time with slo or drift rules.
        state = {field.name: getattr(self.state, field.name) for field in dataclasses.fields(self.state)}
        state["peak"] = None if math.isnan(state["peak"]) else state["peak"]
        return {"key": list(self.key), "state": state, "waiting": [list(p) for p in self.waiting]}

    @classmethod
    def from_json(cls, data: dict) -> RuleEntry:
        state = dict(data["state"])
        state["peak"] = math.nan if state["peak"] is None else state["peak"]
        shapes = {len(t._fields): t for t in (PromPartial, PartialWindow, DistPartial)}
        waiting = tuple(_partial(shapes[len(p)], p) for p in data["waiting"])
        return cls(tuple(data["key"]), RuleState(**state), waiting)


def _partial(shape: type, values: list):
    if shape is DistPartial:  # bins and counts come back from JSON as lists
        return DistPartial(*values[:4], tuple(values[4]), tuple(values[5]), values[6])
    return shape(*values)


class _AdvanceGroup(beam.DoFn):
    def __init__(self, rules: Sequence[RuleConfig], window_seconds: int, horizon_ms: int, until_ms: int | None):
        self._rules = {rule.name: rule for rule in rules}
        self._window_seconds = window_seconds
        self._horizon_ms = horizon_ms
        self._until_ms = until_ms
        self._evaluated = beam.metrics.Metrics.counter(COMPONENT, "groups_evaluated")

    def process(self, element):
        key, grouped = element
        rule = self._rules.get(key[0])
        if rule is None:
            # The rule was removed from the config: its state goes with it. (This comment sits above the bare
            # return: Beam's source scan takes `return  # comment` for `return VALUE` and warns each cycle.)
            return
        previous = grouped["entry"][0] if grouped["entry"] else None
        arrived = [part for parts in grouped["parts"] for part in parts]
        window_ms = rule.window_ms(self._window_seconds)
        self._evaluated.inc()
        step = advance(
            rule,
            key,
            previous.state if previous else None,
            previous.waiting if previous else (),
            arrived,
            self._horizon_ms,
            window_ms,
            self._until_ms,
        )
        for part in step.late:
            reason = (f"late data: window starting {part.window_start_ms} arrived after rule {rule.name!r} "
                      f"evaluated its group up to {step.state.evaluated_until_ms}")  # fmt: skip
            original = json.dumps({"key": list(key), "window": part._asdict()}, allow_nan=True)
            yield beam.pvalue.TaggedOutput(
                streams.DEAD_LETTERS, DeadLetter(part.window_start_ms, f"{COMPONENT}:{rule.name}", reason, original)
            )
        for alert in step.alerts:
            count_alert(alert)
            yield alert
        for point in step.points:
            yield beam.pvalue.TaggedOutput(POINTS, point)
        # A prometheus rule's recent windows (lookback, ranges) and an ML monitor's history are state too.
        state = step.state
        if step.waiting or state.phase != "inactive" or isinstance(rule, NoDataRule) or state.recent or state.history:
            yield beam.pvalue.TaggedOutput(ENTRIES, RuleEntry(key, step.state, tuple(step.waiting)))


def _keyed_entries(entries) -> list:
    return [(tuple(entry.key), entry) for entry in entries]


class EvaluateRulesFromCheckpoint(beam.PTransform):
    """Aggregate tables + the previous cycle's entries -> ``{"alerts", "entries", "dead_letters", "points"}``
    (points: :class:`~airis_mon.schema.Metric` the rules derive, e.g. an slo rule's error budget).

    ``entries``: the previous cycle's :class:`RuleEntry` list; ``horizon_ms``: rule windows ending at or
    before it (epoch ms) are evaluated; ``until_ms``: the silence horizon of no-data rules and stale series
    (default ``horizon_ms``).
    """

    def __init__(self, rules: Sequence[RuleConfig], window_seconds: int, entries: Sequence[RuleEntry],
                 horizon_ms: int, until_ms: int | None = None):  # fmt: skip
        super().__init__()
        self._rules = tuple(rules)
        for rule in self._rules:
            rule.window_ms(window_seconds)
        self._window_seconds = window_seconds
        self._entries = list(entries)
        self._horizon_ms = horizon_ms
        self._until_ms = until_ms

    def expand(self, aggregates):
        parts = aggregates | "SelectRuleSeries" >> beam.ParDo(SelectPartials(self._rules))
        entries = (
            aggregates.pipeline
            | "PreviousEntries" >> beam.Create([self._entries])
            | "KeyEntries" >> beam.FlatMap(_keyed_entries)
        )
        outputs = (
            {"parts": parts, "entry": entries}
            | "GroupWithEntries" >> beam.CoGroupByKey()
            | "Advance"
            >> beam.ParDo(
                _AdvanceGroup(self._rules, self._window_seconds, self._horizon_ms, self._until_ms)
            ).with_outputs(ENTRIES, streams.DEAD_LETTERS, POINTS, main="alerts")
        )
        return {name: outputs[name] for name in ("alerts", ENTRIES, streams.DEAD_LETTERS, POINTS)}


def alert_states_of(entry: RuleEntry, evaluated_at_ms: int) -> list[AlertState]:
    """The pending or firing alert an entry holds at ``evaluated_at_ms`` (none when inactive)."""
    state = entry.state
    if state.phase not in ("pending", "firing"):
        return []
    rule, source, group = entry.key
    episode = alert_id(rule, source, group, state.run_start_ms)
    return [AlertState(evaluated_at_ms, episode, rule, source, group, state.phase, state.run_start_ms, state.peak)]
