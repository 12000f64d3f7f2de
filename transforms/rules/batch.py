"""``EvaluateRules``: the batch runner of the rule engine.

Aggregate tables -> :class:`~airis_mon.schema.Alert` rows. Each (rule, group)
is brought together by one GroupByKey and evaluated in one call of
:func:`~transforms.rules.engine.evaluate`, in time order, from the initial
state. The evaluation horizon for no-data rules is ``until_ms`` when given
(a backtest's ``--end``) and otherwise the end of the newest window in the
input.

>>> alerts = aggregates | EvaluateRules(config.rules, window_seconds=60)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from transforms.rules.config import NoDataRule, RuleConfig
from transforms.rules.engine import GroupContext, evaluate
from transforms.rules.select import GroupKey, PartialWindow, combine_windows, select_partials

__all__ = ["COMPONENT", "EvaluateRules", "SelectPartials", "count_alert"]

COMPONENT = "rules"


def count_alert(alert) -> None:
    """Bump the per-severity Beam counter of an emitted alert."""
    beam.metrics.Metrics.counter(COMPONENT, f"{alert.notification}_{alert.severity}").inc()


class SelectPartials(beam.DoFn):
    """Aggregate table -> (group key, partial windows) for every rule (shared by both runners)."""

    def __init__(self, rules: Sequence[RuleConfig]):
        self._rules = tuple(rules)

    def process(self, table: pa.Table):
        yield from select_partials(table, self._rules)


class _EvaluateGroup(beam.DoFn):
    def __init__(self, rules: Sequence[RuleConfig], window_seconds: int, until_ms: int | None):
        self._rules = {rule.name: rule for rule in rules}
        self._window_seconds = window_seconds
        self._until_ms = until_ms

    def process(self, element: tuple[GroupKey, Iterable[list[PartialWindow]]], data_end_ms: int | None = None):
        (rule_name, source, group), parts = element
        rule = self._rules[rule_name]
        window_ms = rule.window_ms(self._window_seconds)
        windows = combine_windows((p for part in parts for p in part), rule, window_ms)
        until = self._until_ms if self._until_ms is not None else data_end_ms
        alerts, _ = evaluate(rule, GroupContext(source, group, window_ms), windows, until_ms=until)
        for alert in alerts:
            count_alert(alert)
            yield alert


def _newest_window_end(table: pa.Table) -> Iterable[int]:
    if table.num_rows:
        yield pc.max(table.column("window_end_ms")).as_py()


class EvaluateRules(beam.PTransform):
    """Aggregate tables -> alerts, for every configured rule (batch)."""

    def __init__(self, rules: Sequence[RuleConfig], window_seconds: int, until_ms: int | None = None):
        super().__init__()
        self._rules = tuple(rules)
        for rule in self._rules:
            rule.window_ms(window_seconds)  # a wrong window fails here, at construction
        self._window_seconds = window_seconds
        self._until_ms = until_ms

    def expand(self, aggregates):
        evaluate_fn = _EvaluateGroup(self._rules, self._window_seconds, self._until_ms)
        grouped = (
            aggregates
            | "SelectRuleSeries" >> beam.ParDo(SelectPartials(self._rules))
            | "GroupRuleSeries" >> beam.GroupByKey()
        )
        needs_horizon = self._until_ms is None and any(isinstance(r, NoDataRule) for r in self._rules)
        if not needs_horizon:
            return grouped | "Evaluate" >> beam.ParDo(evaluate_fn)
        data_end = (
            aggregates
            | "NewestWindowEnd" >> beam.FlatMap(_newest_window_end)
            | "DataEnd" >> beam.CombineGlobally(lambda ends: max(ends, default=None))
        )
        return grouped | "Evaluate" >> beam.ParDo(evaluate_fn, data_end_ms=beam.pvalue.AsSingleton(data_end))
