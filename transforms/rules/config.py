"""Rule, silence and route config.

::

    rules:
      - name: model_p95_latency_high
        type: threshold                    # the default
        metric: inference_latency          # normalized metric name
        source: tensorflow_serving         # optional
        tags:                              # optional matchers: exact, or {regex: ...}
          environment: production
          model_name: {regex: "fraud-.*"}
        group_by: [model_name]             # optional; default: every series alone
        window: 5m                         # optional; a multiple of aggregation.window_seconds
        aggregation: p95                   # count|sum|min|max|mean|rate|p50|p95|p99
        comparator: ">"
        threshold: 250
        recovery_threshold: 200            # optional hysteresis: resolve only below this
        for: 3                             # consecutive windows, or a duration such as 3m; 0 = 1
        keep_firing_for: 2m                # optional
        repeat_interval: 1h                # optional re-notification while firing
        allowed_lateness: 1m               # streaming: wait this long for late windows
        severity: high                     # info|warning|error|high|critical
        labels: {team: fraud}
        summary: "p95 {value:.0f} ms > {threshold:g} ms on {labels[model_name]}"
        description: "..."
      - name: sagemaker_silent
        type: no_data
        metric: invocations
        source: aws_sagemaker
        group_by: [endpoint_name]
        absent_for: 10m
        severity: warning


Silences and routes are in :mod:`airis_mon.routing`.

Templates use Python ``str.format`` with: ``rule, metric, aggregation, value,
peak, threshold, recovery_threshold, comparator, severity, duration_s, source,
group, notification`` (trigger, repeat or resolve), ``detail`` (ML monitors: what the score
means, e.g. "model_version 7 inference_latency p95 412 is 35% higher (worse) than model_version 6 (305,
in the same window)") and ``labels`` (dict: group
tags and rule labels; a missing label renders empty). They are test-rendered at load
time, so a typo is a config error, not a crash at 3 a.m.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from airis_mon.durations import Duration
from airis_mon.models import ComponentConfig
from transforms.rules.ml_config import (
    SCORE_ALERT_TYPES,
    AnomalyRule,
    DriftRule,
    SloRule,
    VersionComparisonRule,
)
from transforms.rules.rule_base import (
    AGGREGATIONS,
    DEFAULT_NO_DATA_SUMMARY,
    DEFAULT_RESOLVE_SUMMARY,
    DEFAULT_SCORED_RESOLVE_SUMMARY,
    DEFAULT_SCORED_SUMMARY,
    DEFAULT_SUMMARY,
    ConditionRule,
    RuleBase,
)

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_NO_DATA_SUMMARY",
    "DEFAULT_RESOLVE_SUMMARY",
    "DEFAULT_SCORED_RESOLVE_SUMMARY",
    "DEFAULT_SCORED_SUMMARY",
    "DEFAULT_SUMMARY",
    "SCORE_ALERT_TYPES",
    "AnomalyRule",
    "ConditionRule",
    "DriftRule",
    "NoDataRule",
    "PrometheusRule",
    "RuleConfig",
    "ScoredRule",
    "SloRule",
    "ThresholdRule",
    "VersionComparisonRule",
]


class ThresholdRule(ConditionRule):
    """Fires when a window statistic crosses a threshold (see the module docstring)."""

    type: Literal["threshold"] = "threshold"
    comparator: Literal[">", ">=", "<", "<="]
    aggregation: Literal[AGGREGATIONS]


class NoDataRule(RuleBase):
    """Fires when a group that reported stops reporting for ``absent_for``."""

    type: Literal["no_data"] = "no_data"
    absent_for: Duration = Field(description="silence that counts as an incident, s")
    alert_type: str = "no_data"

    @field_validator("absent_for")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("absent_for must be positive")
        return value


class PrometheusRule(RuleBase):
    """A rule imported from Prometheus (``python -m pipelines.rules import``), evaluated with Prometheus 2.42
    alerting semantics (:mod:`transforms.rules.prometheus_semantics`): ``expr`` in the PromQL subset of
    :mod:`transforms.rules.promql`, evaluated at every base window; ``for`` and ``keep_firing_for`` are
    durations, ``for: 0`` fires on the first true evaluation. ``metric`` is the expression's first metric
    (filled in); ``tags``, ``group_by`` and ``window`` come from the expression and cannot be set.
    """

    type: Literal["prometheus"] = "prometheus"
    expr: str = Field(min_length=1, description="PromQL alerting expression (the supported subset)")
    for_: Duration = Field(default=0, alias="for", description="Prometheus 'for', s")
    keep_firing_for: Duration = 0
    lookback: Duration = Field(default=300, description="instant-selector lookback (Prometheus's 5m), s")
    alert_type: str = "prometheus"

    model_config = ConfigDict(**ComponentConfig.model_config, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _metric_from_expr(cls, data: object) -> object:
        from transforms.rules.promql import compile_expr

        if isinstance(data, dict) and isinstance(data.get("expr"), str):
            for key in ("tags", "group_by", "window", "metric"):
                if key in data:
                    raise ValueError(f"{key}: not settable on a prometheus rule (it comes from expr)")
            plan = compile_expr(data["expr"])
            data = {**data, "metric": plan.selectors()[0].metric}
            if plan.is_absent:
                data["group_by"] = []
        return data


RuleConfig = ThresholdRule | NoDataRule | PrometheusRule | DriftRule | AnomalyRule | SloRule | VersionComparisonRule
ScoredRule = DriftRule | AnomalyRule | SloRule | VersionComparisonRule
"""The ML monitors: rules whose compared value is a score computed from the group's history
(:mod:`transforms.rules.scored`)."""
