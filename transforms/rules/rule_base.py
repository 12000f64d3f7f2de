"""What every rule shares: the common fields (metric, selection, group, window, severity, templates)
and the threshold condition (``ConditionRule``) of threshold rules and the ML monitors. The config of each
rule type: :mod:`transforms.rules.config` and :mod:`transforms.rules.ml_config`."""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from airis_mon.durations import Duration, parse_duration_s
from airis_mon.models import ComponentConfig
from airis_mon.routing import TagMatcher
from airis_mon.schema import ALERT_SEVERITIES

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_NO_DATA_SUMMARY",
    "DEFAULT_RESOLVE_SUMMARY",
    "DEFAULT_SCORED_RESOLVE_SUMMARY",
    "DEFAULT_SCORED_SUMMARY",
    "DEFAULT_SUMMARY",
    "ConditionRule",
    "RuleBase",
]

AGGREGATIONS = ("count", "sum", "min", "max", "mean", "rate", "p50", "p95", "p99")
DEFAULT_SUMMARY = "{rule}: {metric} {aggregation} {value:.6g} {comparator} {threshold:g} ({group})"
DEFAULT_NO_DATA_SUMMARY = "{rule}: no {metric} data for {absent_for_s} s ({group})"
DEFAULT_SCORED_SUMMARY = "{rule}: {detail} ({group})"
DEFAULT_SCORED_RESOLVE_SUMMARY = "{rule} resolved after {duration_s:g} s: {detail} ({group})"
DEFAULT_RESOLVE_SUMMARY = "{rule} resolved after {duration_s:g} s: {metric} {aggregation} back to {value:.6g} ({group})"


def _check_template(template: str) -> str:
    """Render ``template`` with sample values; a wrong field is a ``ValueError``."""
    values = {
        "rule": "r", "metric": "m", "aggregation": "mean", "value": 1.0, "peak": 1.0, "threshold": 1.0,
        "recovery_threshold": 1.0, "comparator": ">", "severity": "high", "duration_s": 60.0, "source": "s",
        "group": "{}", "labels": defaultdict(str), "absent_for_s": 60, "notification": "trigger", "detail": "d",
    }  # fmt: skip
    try:
        template.format_map(values)
    except KeyError as error:
        raise ValueError(f"unknown template field {error}") from None
    except (ValueError, IndexError, AttributeError) as error:
        raise ValueError(f"invalid template: {error}") from None
    return template


class RuleBase(ComponentConfig):
    """The fields every rule has."""

    metric: str = Field(min_length=1, description="normalized metric name, e.g. model_latency")
    source: str | None = Field(default=None, description="only series from this source")
    tags: dict[str, TagMatcher] = Field(default_factory=dict, description="tag matchers: exact or {regex: ...}")
    group_by: list[str] | None = Field(default=None, description="tags to group series by; None: each series alone")
    window: Duration | None = Field(
        default=None, description="evaluation window, s; a multiple of the aggregation window"
    )
    severity: Literal[ALERT_SEVERITIES]
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str | None = Field(default=None, description="template for trigger and repeat notifications")
    resolve_summary: str | None = Field(default=None, description="template for the resolve notification")
    description: str = ""
    allowed_lateness: Duration = Field(default=0, description="streaming: how long to wait for late windows, s")
    alert_type: str = "threshold"

    @field_validator("summary", "resolve_summary", "description")
    @classmethod
    def _template_renders(cls, template: str | None) -> str | None:
        return None if template is None else _check_template(template)

    def window_ms(self, aggregation_window_s: int) -> int:
        """The evaluation window in ms; ``ValueError`` unless a multiple of the aggregation window."""
        window_s = self.window or aggregation_window_s
        if window_s % aggregation_window_s:
            raise ValueError(
                f"window {window_s} s is not a multiple of the aggregation window {aggregation_window_s} s"
            )
        return window_s * 1000


class ConditionRule(RuleBase):
    """The condition shared by every rule that compares a per-window value with a threshold: threshold
    rules (the value is a window statistic) and the scored ML monitors (drift, anomaly, slo,
    version_comparison: the value is a score). ``for``, hysteresis, ``keep_firing_for`` and
    ``repeat_interval`` mean the same for all of them (:mod:`transforms.rules.engine`)."""

    comparator: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    recovery_threshold: float | None = Field(default=None, description="hysteresis: resolve only past this value")
    for_: int | str = Field(default=1, alias="for", description="consecutive windows (int) or a duration (5m)")
    keep_firing_for: Duration = 0
    repeat_interval: Duration | None = None

    model_config = ConfigDict(**ComponentConfig.model_config, populate_by_name=True)

    @field_validator("for_")
    @classmethod
    def _valid_for(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < 0:
                raise ValueError("for: a number of windows, 0 or more")
            return value
        parse_duration_s(value)
        return value

    @field_validator("recovery_threshold")
    @classmethod
    def _recovery_on_the_safe_side(cls, value: float | None, info: ValidationInfo) -> float | None:
        threshold, comparator = info.data.get("threshold"), info.data.get("comparator")
        if value is None or threshold is None or comparator is None:
            return value
        above = comparator in (">", ">=")
        if (above and value > threshold) or (not above and value < threshold):
            side = "at or below" if above else "at or above"
            raise ValueError(f"must be {side} threshold {threshold:g} for comparator {comparator}")
        return value

    def for_windows(self, window_ms: int) -> int:
        """Consecutive windows the condition must hold before firing; ``for: 0`` (or ``0m``) is 1: fire on
        the first breaching window."""
        if isinstance(self.for_, int):
            return max(1, self.for_)
        return max(1, -(-parse_duration_s(self.for_) * 1000 // window_ms))

    @property
    def statistic(self) -> str:
        """What the compared value is, for templates (``{aggregation}``): a statistic or a score name."""
        return getattr(self, "aggregation", "value")
