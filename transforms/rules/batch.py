"""``EvaluateRules``: the batch runner of the rule engine.

Aggregate tables -> :class:`~airis_mon.schema.Alert` rows. Each (rule, group)
is brought together by one GroupByKey (its rows as NumPy columns, one element
per group and table) and evaluated in one call, in time order, from the
initial state: native threshold rules by the vectorized path
(:mod:`transforms.rules.vectorized`, the same alerts as the state machine,
proved by a property test), the others by
:func:`~transforms.rules.engine.evaluate` through the same
:func:`~transforms.rules.incremental.advance` step the stateful runners
take. The evaluation horizon (no-data rules fire on it; a threshold alert
whose series stopped reporting resolves on it) is ``until_ms`` when given (a
backtest's ``--end``) and otherwise the end of the newest window in the input.

>>> alerts = aggregates | EvaluateRules(config.rules, window_seconds=60)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from airis_mon.progress import Tally
from airis_mon.schema import Alert
from transforms.rules.config import RuleConfig
from transforms.rules.engine import GroupContext
from transforms.rules.incremental import advance
from transforms.rules.scored import is_distribution_table, rows_for
from transforms.rules.select import GroupKey, select_partials
from transforms.rules.vectorized import (
    PartialColumns,
    combine_columns,
    concat_columns,
    evaluate_columns,
    select_columns,
    vectorizable,
)

__all__ = ["COMPONENT", "POINTS", "EvaluateRules", "SelectPartials", "count_alert", "evaluate_group",
           "evaluate_group_with_points"]  # fmt: skip

COMPONENT = "rules"
POINTS = "points"
"""The runners' output of :class:`~airis_mon.schema.Metric` points the rules derive (slo: error budget)."""
_NO_HORIZON = 2**62  # epoch ms beyond any data: every window is due


def count_alert(alert) -> None:
    """Bump the per-severity Beam counter of an emitted alert."""
    Tally(
        COMPONENT, f"{alert.notification}_{alert.severity}", "alerts" if alert.notification == "trigger" else None
    ).inc()


class SelectPartials(beam.DoFn):
    """Aggregate table -> (group key, partial windows) for every rule (shared by both runners)."""

    def __init__(self, rules: Sequence[RuleConfig]):
        self._rules = tuple(rules)

    def process(self, table: pa.Table):
        yield from select_partials(table, self._rules)


class _SelectColumns(beam.DoFn):
    """Aggregate table -> (group key, columns) for every rule (the batch runner's selection)."""

    def __init__(self, rules: Sequence[RuleConfig]):
        self._rules = tuple(rules)

    def process(self, table: pa.Table):
        # Prometheus rules keep each row's selector and bucket (PromPartial lists), ML monitors their data
        # keys and distributions: select_partials.
        yield from select_partials(table, [rule for rule in self._rules if rows_for(rule)])
        if not is_distribution_table(table):
            yield from select_columns(table, [rule for rule in self._rules if not rows_for(rule)])


def evaluate_group(
    rule: RuleConfig, key: GroupKey, parts: Iterable[PartialColumns], window_seconds: int, until_ms: int | None
) -> list[Alert]:
    """The alerts of one (rule, group) over all its rows, from the initial state, with ``until_ms`` (epoch
    ms) as the horizon of silence (None: unbounded). Every window is complete in a batch: one step with an
    unbounded horizon, the same step the stateful runners take piece by piece."""
    return evaluate_group_with_points(rule, key, parts, window_seconds, until_ms)[0]


def evaluate_group_with_points(
    rule: RuleConfig, key: GroupKey, parts: Iterable, window_seconds: int, until_ms: int | None
) -> tuple[list[Alert], list]:
    """:func:`evaluate_group`, and the metric points the rule derives (slo: the error budget remaining)."""
    window_ms = rule.window_ms(window_seconds)
    if rows_for(rule):  # lists of partials (see _SelectColumns)
        rows = [row for part in parts for row in part]
        step = advance(rule, key, None, (), rows, _NO_HORIZON, window_ms, until_ms)
        return step.alerts, step.points
    columns = concat_columns(list(parts))
    if not vectorizable(rule):
        return advance(rule, key, None, (), columns.rows(), _NO_HORIZON, window_ms, until_ms).alerts, []
    silence_until = _NO_HORIZON if until_ms is None else until_ms
    silence_until -= silence_until % window_ms  # as advance() does for threshold rules
    starts, values = combine_columns(columns, rule, window_ms)
    alerts, _ = evaluate_columns(rule, GroupContext(key[1], key[2], window_ms), starts, values, None, silence_until)
    return alerts, []


class _EvaluateGroup(beam.DoFn):
    def __init__(self, rules: Sequence[RuleConfig], window_seconds: int, until_ms: int | None):
        self._rules = {rule.name: rule for rule in rules}
        self._window_seconds = window_seconds
        self._until_ms = until_ms

    def process(self, element: tuple[GroupKey, Iterable[PartialColumns]], data_end_ms: int | None = None):
        key, parts = element
        until = self._until_ms if self._until_ms is not None else data_end_ms
        alerts, points = evaluate_group_with_points(self._rules[key[0]], key, parts, self._window_seconds, until)
        for alert in alerts:
            count_alert(alert)
            yield alert
        for point in points:
            yield beam.pvalue.TaggedOutput(POINTS, point)


def _newest_window_end(table: pa.Table) -> Iterable[int]:
    if table.num_rows:
        yield pc.max(table.column("window_end_ms")).as_py()


class EvaluateRules(beam.PTransform):
    """Aggregate (and distribution) tables -> alerts, for every configured rule (batch). With
    ``with_points=True``: ``{"alerts", "points"}``, points being the :class:`~airis_mon.schema.Metric` the
    rules derive (an slo rule's error budget remaining)."""

    def __init__(self, rules: Sequence[RuleConfig], window_seconds: int, until_ms: int | None = None,
                 with_points: bool = False):  # fmt: skip
        super().__init__()
        self._with_points = with_points
        self._rules = tuple(rules)
        for rule in self._rules:
            rule.window_ms(window_seconds)  # a wrong window fails here, at construction
        self._window_seconds = window_seconds
        self._until_ms = until_ms

    def expand(self, aggregates):
        evaluate_fn = _EvaluateGroup(self._rules, self._window_seconds, self._until_ms)
        grouped = (
            aggregates
            | "SelectRuleSeries" >> beam.ParDo(_SelectColumns(self._rules))
            | "GroupRuleSeries" >> beam.GroupByKey()
        )
        if self._until_ms is not None or not self._rules:
            evaluate = beam.ParDo(evaluate_fn)
        else:
            data_end = (
                aggregates
                | "NewestWindowEnd" >> beam.FlatMap(_newest_window_end)
                | "DataEnd" >> beam.CombineGlobally(lambda ends: max(ends, default=None))
            )
            evaluate = beam.ParDo(evaluate_fn, data_end_ms=beam.pvalue.AsSingleton(data_end))
        outputs = grouped | "Evaluate" >> evaluate.with_outputs(POINTS, main="alerts")
        if self._with_points:
            return {"alerts": outputs["alerts"], POINTS: outputs[POINTS]}
        return outputs["alerts"]
