"""Helpers for rule tests: build rules, groups and window series tersely."""

from __future__ import annotations

import math

from transforms.rules.config import NoDataRule, ThresholdRule
from transforms.rules.engine import GroupContext, WindowValue

T0 = 1_795_824_000_000  # 2026-11-28T00:00:00Z
MIN = 60_000
GROUP = GroupContext("tensorflow_serving", '{"environment":"prod","model_name":"fraud"}', MIN)
NAN = math.nan


def threshold_rule(**overrides) -> ThresholdRule:
    fields = {"name": "latency", "metric": "m", "aggregation": "p95", "comparator": ">", "threshold": 10,
              "severity": "high"}  # fmt: skip
    return ThresholdRule.model_validate({**fields, **overrides})


def no_data_rule(**overrides) -> NoDataRule:
    fields = {"name": "silent", "type": "no_data", "metric": "m", "absent_for": 300, "severity": "warning"}
    return NoDataRule.model_validate({**fields, **overrides})


def series(*values, start: int = 0) -> list[WindowValue]:
    """One window a minute from ``T0 + start`` minutes; ``None`` leaves a gap."""
    return [
        WindowValue(T0 + (start + i) * MIN, T0 + (start + i + 1) * MIN, v)
        for i, v in enumerate(values)
        if v is not None
    ]


def minute(ms: int) -> float:
    """Minutes since T0 (for readable assertions)."""
    return (ms - T0) / MIN


def timeline(alerts) -> list[tuple[str, float]]:
    """(notification, minute) of each alert, in order."""
    return [(a.notification, minute(a.timestamp_ms)) for a in alerts]
