"""``EvaluateRules``: the batch runner of the rule engine.

Aggregate tables -> :class:`~airis_mon.schema.Alert` rows. Each (rule, group)
is brought together by one GroupByKey and evaluated in one call of
:func:`~transforms.rules.engine.evaluate`, in time order, from the initial
state. The evaluation horizon (no-data rules fire on it; a threshold alert
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
from transforms.rules.config import RuleConfig
from transforms.rules.incremental import advance
from transforms.rules.select import GroupKey, PartialWindow, select_partials

__all__ = ["COMPONENT", "EvaluateRules", "SelectPartials", "count_alert"]

COMPONENT = "rules"
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


class _EvaluateGroup(beam.DoFn):
    def __init__(self, rules: Sequence[RuleConfig], window_seconds: int, until_ms: int | None):
        self._rules = {rule.name: rule for rule in rules}
        self._window_seconds = window_seconds
        self._until_ms = until_ms

    def process(self, element: tuple[GroupKey, Iterable[list[PartialWindow]]], data_end_ms: int | None = None):
        key, parts = element
        rule = self._rules[key[0]]
        window_ms = rule.window_ms(self._window_seconds)
        until = self._until_ms if self._until_ms is not None else data_end_ms
        # Every window is complete in a batch: one step with an unbounded horizon, the same step the
        # stateful runners take piece by piece.
        step = advance(rule, key, None, (), [p for part in parts for p in part], _NO_HORIZON, window_ms, until)
        for alert in step.alerts:
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
        if self._until_ms is not None or not self._rules:
            return grouped | "Evaluate" >> beam.ParDo(evaluate_fn)
        data_end = (
            aggregates
            | "NewestWindowEnd" >> beam.FlatMap(_newest_window_end)
            | "DataEnd" >> beam.CombineGlobally(lambda ends: max(ends, default=None))
        )
        return grouped | "Evaluate" >> beam.ParDo(evaluate_fn, data_end_ms=beam.pvalue.AsSingleton(data_end))
