"""Threshold rules: a window statistic compared with a fixed threshold.

::

    rules:
      - name: sagemaker_5xx_burst
        metric: invocation_5xx_errors      # normalized metric name
        tags: {statistic: sum}             # exact tag matchers (optional)
        aggregation: sum                   # count|sum|min|max|mean|p50|p95|p99
        comparator: ">"
        threshold: 25
        severity: critical

The rule core, :func:`find_episodes`, is a pure function over one series'
ordered window values: a run of consecutive breaching windows is one episode
and becomes one :class:`~airis_mon.schema.Alert` (``resolved`` if a later
window stopped breaching, ``firing`` if the data ended while breaching). A
missing window ends an episode. Alert ids are deterministic
(rule, series, episode start), so replays give the same ids.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from airis_mon.config import ComponentConfig
from airis_mon.schema import ALERT_SEVERITIES, Alert, tags_from_json

__all__ = ["COMPARATORS", "EvaluateThresholds", "ThresholdRule", "WindowValue", "find_episodes"]

COMPONENT = "threshold"

COMPARATORS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}

Aggregation = Literal["count", "sum", "min", "max", "mean", "p50", "p95", "p99"]


class ThresholdRule(ComponentConfig):
    """One threshold rule (see the module docstring)."""

    type: Literal["threshold"] = "threshold"
    metric: str = Field(min_length=1, description="normalized metric name, e.g. model_latency")
    source: str | None = Field(default=None, description="only points from this source")
    tags: dict[str, str] = Field(default_factory=dict, description="exact tag matchers")
    aggregation: Aggregation
    comparator: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float
    severity: Literal[ALERT_SEVERITIES]  # info | warning | error | high | critical
    description: str = Field(default="", description="free text added to the alert description")
    alert_type: str = Field(default="threshold")


class WindowValue(NamedTuple):
    """One window of one series as the rule sees it (times in epoch ms)."""

    window_start_ms: int
    window_end_ms: int
    value: float


def _alert_id(rule_name: str, series_tags: str, metric_source: str, episode_start_ms: int) -> str:
    identity = f"{rule_name}\x1f{metric_source}\x1f{series_tags}\x1f{episode_start_ms}"
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:24]


def _model_and_environment(tags: dict[str, str]) -> tuple[str, str]:
    model = tags.get("model_id") or tags.get("model_name") or tags.get("endpoint_name") or ""
    return model, tags.get("environment", "")


def find_episodes(rule: ThresholdRule, source: str, tags_json: str, windows: Sequence[WindowValue]) -> list[Alert]:
    """Alerts for one series; ``windows`` in any order, at most one per start."""
    compare = COMPARATORS[rule.comparator]
    tags = tags_from_json(tags_json)
    model_id, environment = _model_and_environment(tags)
    alerts: list[Alert] = []
    episode: list[WindowValue] = []
    ordered = sorted(windows)

    def close(resolved_at_ms: int) -> None:
        start, end = episode[0].window_start_ms, episode[-1].window_end_ms
        worst = max(w.value for w in episode) if rule.comparator in (">", ">=") else min(w.value for w in episode)
        status = "resolved" if resolved_at_ms else "firing"
        text = (
            f"{rule.metric} {rule.aggregation} reached {worst:.6g} ({rule.comparator} {rule.threshold:g}) "
            f"for {(end - start) / 1000:g} s on {model_id or source}"
        )
        alerts.append(
            Alert(
                id=_alert_id(rule.name, tags_json, source, start),
                name=rule.name,
                severity=rule.severity,
                description=f"{text}. {rule.description}".strip() if rule.description else text,
                timestamp_ms=start,
                source=source,
                model_id=model_id,
                environment=environment,
                alert_type=rule.alert_type,
                threshold=rule.threshold,
                current_value=worst,
                duration_s=(end - start) / 1000,
                status=status,
                rule=rule.name,
                metric=rule.metric,
                tags=tags_json,
                resolved_at_ms=resolved_at_ms,
            )
        )

    for window in ordered:
        if episode and window.window_start_ms != episode[-1].window_end_ms:
            close(resolved_at_ms=episode[-1].window_end_ms)  # a gap ends the episode
            episode = []
        if np.isfinite(window.value) and compare(window.value, rule.threshold):
            episode.append(window)
        elif episode:
            close(resolved_at_ms=window.window_start_ms)
            episode = []
    if episode:
        close(resolved_at_ms=0)
    return alerts


def _matching_rows(table: pa.Table, rule: ThresholdRule) -> pa.Table:
    mask = pc.equal(table.column("name"), rule.metric)
    if rule.source is not None:
        mask = pc.and_(mask, pc.equal(table.column("source"), rule.source))
    selected = table.filter(mask)
    if rule.tags and selected.num_rows:
        distinct = pc.unique(selected.column("tags")).to_pylist()
        wanted = [t for t in distinct if all(tags_from_json(t).get(k) == v for k, v in rule.tags.items())]
        selected = selected.filter(pc.is_in(selected.column("tags"), pa.array(wanted, type=pa.string())))
    return selected


class _SelectRuleSeries(beam.DoFn):
    """Aggregate table -> ((rule, source, tags), [WindowValue...]) per matching series."""

    def __init__(self, rules: tuple[ThresholdRule, ...]):
        self._rules = rules

    def process(self, table: pa.Table):
        for rule in self._rules:
            selected = _matching_rows(table, rule)
            if not selected.num_rows:
                continue
            columns = selected.select(["source", "tags", "window_start_ms", "window_end_ms", rule.aggregation])
            series: dict[tuple[str, str], list[WindowValue]] = {}
            for source, tags, start, end, value in zip(*(c.to_pylist() for c in columns.columns), strict=False):
                series.setdefault((source, tags), []).append(WindowValue(start, end, value))
            for (source, tags), windows in series.items():
                yield (rule.name, source, tags), windows


class _FindEpisodes(beam.DoFn):
    def __init__(self, rules: tuple[ThresholdRule, ...]):
        self._rules = {rule.name: rule for rule in rules}
        self._alerts = {
            severity: beam.metrics.Metrics.counter(COMPONENT, f"alerts_{severity}") for severity in ALERT_SEVERITIES
        }

    def process(self, key_and_parts: tuple[tuple[str, str, str], Iterable[list[WindowValue]]]):
        (rule_name, source, tags), parts = key_and_parts
        windows = [window for part in parts for window in part]
        for alert in find_episodes(self._rules[rule_name], source, tags, windows):
            self._alerts[alert.severity].inc()
            yield alert


class EvaluateThresholds(beam.PTransform):
    """Aggregate tables -> :class:`~airis_mon.schema.Alert` rows for the given rules."""

    def __init__(self, rules: Sequence[ThresholdRule]):
        super().__init__()
        self._rules = tuple(rules)

    def expand(self, aggregates):
        return (
            aggregates
            | "SelectRuleSeries" >> beam.ParDo(_SelectRuleSeries(self._rules))
            | "GroupSeries" >> beam.GroupByKey()
            | "FindEpisodes" >> beam.ParDo(_FindEpisodes(self._rules))
        )
