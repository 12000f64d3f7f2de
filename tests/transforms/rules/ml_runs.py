"""Run rules over generated points the three ways the product does, for the ML monitors' tests.

- :func:`batch_run`: every window at once (the batch runner's step: ``select_partials`` +
  ``evaluate_group_with_points``, what ``EvaluateRules`` and backtests call per group);
- :func:`live_run`: the live runner's pattern: windows closing a few at a time, each cycle one
  ``advance`` per group from the previous cycle's entry, round-tripped through JSON as the checkpoint is;
- :func:`beam_batch_run`: ``EvaluateRules`` in a local Beam pipeline.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from airis_mon.schema import Alert, Metric, metrics_to_table
from transforms.aggregate import Distributions, aggregate_with_distributions
from transforms.rules.batch import POINTS, EvaluateRules, evaluate_group_with_points
from transforms.rules.checkpointed import RuleEntry
from transforms.rules.config import RuleConfig
from transforms.rules.incremental import advance
from transforms.rules.scored import distribution_metrics
from transforms.rules.select import select_partials


def tables_of(points: Sequence[Metric], window_ms: int, rules: Sequence[RuleConfig]) -> list[pa.Table]:
    """The aggregate table and, when drift rules read some metric, the distribution table of ``points``."""
    metrics = distribution_metrics(rules)
    aggregates, distributions = aggregate_with_distributions(
        metrics_to_table(list(points)), window_ms, Distributions(metrics) if metrics else None
    )
    return [aggregates, distributions] if distributions.num_rows else [aggregates]


def _grouped(tables: Sequence[pa.Table], rules: Sequence[RuleConfig]) -> dict:
    grouped: dict = defaultdict(list)
    for table in tables:
        for key, parts in select_partials(table, rules):
            grouped[key].extend(parts)
    return grouped


def key_of(alert: Alert) -> tuple:
    """What must be identical between runners: episode id, notification, time, value and summary."""
    return (alert.id, alert.notification, alert.timestamp_ms, alert.current_value, alert.summary)


def data_end_ms(tables: Sequence[pa.Table]) -> int:
    """The newest window end in ``tables``: the batch runner's horizon of silence."""
    return max(max(table.column("window_end_ms").to_pylist(), default=0) for table in tables)


def batch_run(rules: Sequence[RuleConfig], tables: Sequence[pa.Table], window_s: int):
    """(alerts, derived points) of one batch evaluation (horizon: the data's end, as ``EvaluateRules``), in a
    stable order."""
    by_name = {rule.name: rule for rule in rules}
    until_ms = data_end_ms(tables)
    alerts, points = [], []
    for key, parts in sorted(_grouped(tables, rules).items()):
        got, derived = evaluate_group_with_points(by_name[key[0]], key, [parts], window_s, until_ms)
        alerts += got
        points += derived
    return sorted(alerts, key=key_of), sorted(points)


def live_run(rules: Sequence[RuleConfig], tables: Sequence[pa.Table], window_s: int, windows_per_cycle: int = 7):
    """(alerts, derived points) when the windows close ``windows_per_cycle`` base windows at a time and each
    group's entry goes through JSON between cycles, as the live runner's checkpoint."""
    by_name = {rule.name: rule for rule in rules}
    grouped = _grouped(tables, rules)
    starts = sorted({part.window_start_ms for parts in grouped.values() for part in parts})
    if not starts:
        return [], []
    step_ms = windows_per_cycle * window_s * 1000
    entries: dict = {}
    alerts, points = [], []
    end = data_end_ms(tables)
    horizons = [*range(starts[0] + step_ms, end, step_ms), end]
    for previous, horizon in zip([starts[0], *horizons], horizons, strict=False):
        for key, parts in sorted(grouped.items()):
            rule = by_name[key[0]]
            window_ms = rule.window_ms(window_s)
            arrived = [p for p in parts if previous <= p.window_start_ms < horizon]
            entry = entries.get(key)
            if entry is None and not arrived:
                continue
            state, waiting = (entry.state, entry.waiting) if entry else (None, ())
            step = advance(rule, key, state, waiting, arrived, horizon, window_ms)
            assert not step.late
            alerts += step.alerts
            points += step.points
            checkpoint = json.dumps(RuleEntry(key, step.state, tuple(step.waiting)).to_json())
            entries[key] = RuleEntry.from_json(json.loads(checkpoint))
    return sorted(alerts, key=key_of), sorted(points)


def beam_batch_run(rules: Sequence[RuleConfig], tables: Sequence[pa.Table], window_s: int, expected: list) -> None:
    """``EvaluateRules`` in a local pipeline must give exactly ``expected`` (alerts as :func:`key_of`)."""

    def check(got):
        assert sorted(key_of(a) for a in got) == sorted(key_of(a) for a in expected)

    with TestPipeline() as pipeline:
        out = pipeline | beam.Create(list(tables)) | EvaluateRules(rules, window_s, with_points=True)
        assert_that(out["alerts"], check)
        _ = out[POINTS]
