"""The public ingestion contract (the seed's payloads) and its parser.

Metrics payload::

    {"timestamp": 1732838400000, "source": "tensorflow_serving",
     "metrics": [{"name": "inference_latency", "value": 41.7, "unit": "ms",
                  "tags": {"model_name": "fraud", "model_version": "12"}}]}

Event payload::

    {"timestamp": "2024-11-29T00:00:00Z", "event_type": "model_version_status",
     "source": "mlflow", "severity": "info", "data": {...}}

``timestamp`` may be epoch s/ms/µs/ns or ISO-8601 (see :mod:`airis_mon.timeutil`).
Pydantic validates at this edge; what comes out are light rows. A malformed
point costs only that point: it becomes a :class:`~airis_mon.schema.DeadLetter`
whose ``original`` is a one-point payload that can be fixed and replayed.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from airis_mon.schema import SEVERITIES, DeadLetter, Event, canonical_tags
from airis_mon.timeutil import to_epoch_ms
from airis_mon.validation import describe_validation_error

__all__ = [
    "EventPayload",
    "MetricPointIn",
    "MetricsPayload",
    "RawPoint",
    "parse_payload",
    "payload_kind",
]

TimestampIn = int | float | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class MetricPointIn(_Strict):
    """One metric point of a metrics payload."""

    name: str = Field(min_length=1, max_length=256)
    # NaN and infinities pass this edge on purpose: Normalize dead-letters them
    # per point, with the same reason whether the point came as JSON or Arrow.
    value: float
    unit: str = Field(default="", max_length=64)
    tags: dict[str, Any] = Field(default_factory=dict)

    @field_validator("value", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return value


class _Envelope(_Strict):
    timestamp: TimestampIn
    source: str = Field(min_length=1, max_length=256)

    @field_validator("timestamp")
    @classmethod
    def _valid_timestamp(cls, value: TimestampIn) -> TimestampIn:
        to_epoch_ms(value)  # raises ValueError with a clear message
        return value

    @property
    def timestamp_ms(self) -> int:
        return to_epoch_ms(self.timestamp)


class MetricsPayload(_Envelope):
    """``POST /api/v1/metrics/ingest`` body."""

    metrics: list[MetricPointIn] = Field(min_length=1)


class _MetricsEnvelope(_Envelope):
    """The metrics payload with points left unvalidated (validated one by one)."""

    metrics: list[Any] = Field(min_length=1)


class EventPayload(_Envelope):
    """``POST /api/v1/events/ingest`` body."""

    event_type: str = Field(min_length=1, max_length=256)
    severity: Literal[SEVERITIES]  # info | warning | error | critical
    data: dict[str, Any] = Field(default_factory=dict)


_POINT = TypeAdapter(MetricPointIn)

RawPoint = tuple[int, str, str, float, str, str]
"""(timestamp_ms, source, name, value, unit, canonical tags) before normalization."""


def payload_kind(payload: Any) -> str | None:
    """``"metrics"``, ``"event"`` or ``None`` when the shape is neither."""
    if isinstance(payload, dict):
        if "metrics" in payload:
            return "metrics"
        if "event_type" in payload:
            return "event"
    return None


def _event_time_or_zero(payload: Any) -> int:
    try:
        return to_epoch_ms(payload.get("timestamp"))
    except (AttributeError, ValueError):
        return 0


def _dead(component: str, reason: str, original: Any) -> DeadLetter:
    """A dead letter stamped with the record's own event time (0 if unknown),
    so that reprocessing the same input gives the same output."""
    return DeadLetter(
        timestamp_ms=_event_time_or_zero(original),
        component=component,
        reason=reason,
        original=json.dumps(original, default=str, sort_keys=True, allow_nan=True),
    )


def parse_payload(payload: Any, component: str = "parse") -> tuple[list[RawPoint], list[Event], list[DeadLetter]]:
    """Parse one decoded payload of either kind.

    Returns the good points, the good events and one dead letter per rejected
    part (the whole payload when its envelope is wrong, one point otherwise).
    """
    kind = payload_kind(payload)
    if kind == "metrics":
        points, dead = _parse_metrics(payload, component)
        return points, [], dead
    if kind == "event":
        try:
            event = EventPayload.model_validate(payload)
        except ValidationError as error:
            reason = "; ".join(describe_validation_error(error))
            return [], [], [_dead(component, reason, payload)]
        row = Event(
            timestamp_ms=event.timestamp_ms,
            event_type=event.event_type,
            source=event.source,
            severity=event.severity,
            data=json.dumps(event.data, sort_keys=True, default=str),
        )
        return [], [row], []
    reason = "payload: neither a metrics payload (no 'metrics') nor an event (no 'event_type')"
    return [], [], [_dead(component, reason, payload)]


def _parse_metrics(payload: dict, component: str) -> tuple[list[RawPoint], list[DeadLetter]]:
    try:
        envelope = _MetricsEnvelope.model_validate(payload)
    except ValidationError as error:
        return [], [_dead(component, "; ".join(describe_validation_error(error)), payload)]
    timestamp_ms = envelope.timestamp_ms
    points: list[RawPoint] = []
    dead: list[DeadLetter] = []
    for index, raw_point in enumerate(envelope.metrics):
        try:
            point = _POINT.validate_python(raw_point)
        except ValidationError as error:
            reason = "; ".join(describe_validation_error(error, prefix=f"metrics[{index}]"))
            original = {"timestamp": payload["timestamp"], "source": envelope.source, "metrics": [raw_point]}
            dead.append(_dead(component, reason, original))
            continue
        points.append((timestamp_ms, envelope.source, point.name, point.value, point.unit, canonical_tags(point.tags)))
    return points, dead
