"""The parser of the public ingestion contract's payloads (the models and the
checks are :mod:`airis_mon.contract`, re-exported here; its docstring shows
both payloads).

``timestamp`` may be epoch s/ms/µs/ns or ISO-8601 (see :mod:`airis_mon.timeutil`),
never a boolean, and must lie in the accepted range (:class:`TimestampRange`;
by default not before 1970-01-01T00:00:00Z and at most 86,400 s ahead of the
wall clock at validation; configured as ``timestamps:`` on a ``payload_files``
or ``gateway`` integration).

Values the pipeline cannot carry are refused wherever they are
(:func:`unprocessable_fields`): NaN and infinite numbers (``NaN``,
``Infinity``, ``-Infinity`` and overflowing literals such as ``1e400``),
text with lone surrogates (``"\\ud800"``, not encodable as UTF-8) and
values nested more than :data:`MAX_NESTING` levels deep. The one exception is
a metric point's ``value``: NaN and infinities pass this parser, and
``Normalize`` dead-letters them per point (the gateway refuses them).

Pydantic validates at this edge; what comes out are light rows. A malformed
point costs only that point: it becomes a :class:`~airis_mon.schema.DeadLetter`
whose ``original`` is a one-point payload that can be fixed and replayed.
Reasons name the field, never the value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from airis_mon.contract import (
    _DEFAULT_RANGE,
    _POINT,
    _POINTS,
    MAX_NESTING,
    EventPayload,
    MetricPointIn,
    MetricsPayload,
    PayloadTimestamp,
    TimestampRange,
    _certainly_processable,
    _MetricsEnvelope,
    payload_kind,
    payload_problems,
    safe_text,
    unprocessable_fields,
)
from airis_mon.schema import DeadLetter, Event, canonical_tags, tags_from_json

__all__ = [
    "MAX_NESTING",
    "EventPayload",
    "MetricPointIn",
    "MetricsPayload",
    "PayloadTimestamp",
    "RawPoint",
    "TimestampRange",
    "parse_payload",
    "payload_kind",
    "payload_problems",
    "point_dead_letter",
    "safe_text",
    "unprocessable_fields",
]

RawPoint = tuple[int, str, str, float, str, str]
"""(timestamp_ms, source, name, value, unit, canonical tags) before normalization."""


def _event_time_or_zero(payload: Any, accepted: TimestampRange, now_ms: int | None) -> int:
    try:
        return accepted.epoch_ms(payload.get("timestamp"), now_ms)
    except (AttributeError, ValueError):
        return 0


def _dead(
    component: str, reason: str, original: Any, accepted: TimestampRange = _DEFAULT_RANGE, now_ms: int | None = None
) -> DeadLetter:
    """A dead letter stamped with the record's own event time (0 if unknown or
    outside the accepted range), so that reprocessing the same input gives the
    same output."""
    return DeadLetter(
        timestamp_ms=_event_time_or_zero(original, accepted, now_ms),
        component=component,
        reason=safe_text(reason),
        original=json.dumps(original, default=str, sort_keys=True, allow_nan=True),
    )


def point_dead_letter(row: Sequence, reason: str, component: str) -> DeadLetter:
    """The dead letter of one raw point ``(timestamp, source, name, value, unit,
    tags JSON)`` (a :data:`RawPoint` or a ``RAW_POINT_SCHEMA`` row, timestamp in
    any unit); its original is the replayable one-point payload."""
    timestamp, source, name, value, unit, tags = row
    if isinstance(timestamp, float) and timestamp.is_integer():
        timestamp = int(timestamp)
    point = {
        "name": name,
        "value": value,
        "unit": unit,
        "tags": tags_from_json(tags) if isinstance(tags, str) else tags,
    }
    return _dead(component, reason, {"timestamp": timestamp, "source": source, "metrics": [point]})


def parse_payload(
    payload: Any,
    component: str = "parse",
    timestamps: TimestampRange | None = None,
    now_ms: int | None = None,
) -> tuple[list[RawPoint], list[Event], list[DeadLetter]]:
    """Parse one decoded payload of either kind.

    Returns the good points, the good events and one dead letter per rejected
    part (the whole payload when its envelope is wrong, one point otherwise).
    ``timestamps`` is the accepted range (the default range when ``None``),
    checked against ``now_ms`` (epoch ms; the wall clock when ``None``).
    """
    accepted = timestamps or _DEFAULT_RANGE
    kind = payload_kind(payload)
    if kind == "metrics":
        points, dead = _parse_metrics(payload, component, accepted, now_ms)
        return points, [], dead
    if kind == "event":
        event, problems = _validated(EventPayload, payload, payload, "", accepted.context(now_ms))
        if problems:
            return [], [], [_dead(component, "; ".join(problems), payload, accepted, now_ms)]
        row = Event(
            timestamp_ms=event.timestamp_ms,
            event_type=event.event_type,
            source=event.source,
            severity=event.severity,
            data=json.dumps(event.data, sort_keys=True, default=str),
        )
        return [], [row], []
    reason = "payload: neither a metrics payload (no 'metrics') nor an event (no 'event_type')"
    return [], [], [_dead(component, reason, payload, accepted, now_ms)]


def _validated(
    model: TypeAdapter | type[BaseModel], value: Any, checked: Any, prefix: str, context: dict | None = None
) -> tuple[Any, list[str]]:
    """``(validated value or None, problem lines)``: ``model`` validates
    ``value`` (with the validation ``context``, for timestamps); ``checked`` is
    the part of it searched for unprocessable values."""
    validate = model.validate_python if isinstance(model, TypeAdapter) else model.model_validate
    try:
        result, error = validate(value, context=context), None
    except ValidationError as validation_error:
        result, error = None, validation_error
    problems = payload_problems(error, checked, prefix)
    return (None if problems else result), problems


def _parse_metrics(
    payload: dict, component: str, accepted: TimestampRange, now_ms: int | None
) -> tuple[list[RawPoint], list[DeadLetter]]:
    # One check of the whole payload spares searching each part in the common, clean case.
    search = not _certainly_processable(payload)
    envelope_part = {key: value for key, value in payload.items() if key != "metrics"} if search else None
    envelope, problems = _validated(_MetricsEnvelope, payload, envelope_part, "", accepted.context(now_ms))
    if problems:
        return [], [_dead(component, "; ".join(problems), payload, accepted, now_ms)]
    timestamp_ms = envelope.timestamp_ms
    if not search:
        # The common, clean case: every point validated in one call (pydantic's list validation), no per-point
        # search; any failure falls back to the per-point loop below, which names the bad point.
        try:
            valid = _POINTS.validate_python(envelope.metrics)
        except ValidationError:
            valid = None
        if valid is not None:
            source = envelope.source
            return [(timestamp_ms, source, p.name, p.value, p.unit, canonical_tags(p.tags)) for p in valid], []
    points: list[RawPoint] = []
    dead: list[DeadLetter] = []
    for index, raw_point in enumerate(envelope.metrics):
        # A non-finite value passes here: Normalize dead-letters it per point.
        checked = None
        if search:
            checked = {k: v for k, v in raw_point.items() if k != "value"} if isinstance(raw_point, dict) else raw_point
        point, problems = _validated(_POINT, raw_point, checked, f"metrics[{index}]")  # points have no timestamp
        if problems:
            original = {"timestamp": payload["timestamp"], "source": envelope.source, "metrics": [raw_point]}
            dead.append(_dead(component, "; ".join(problems), original, accepted, now_ms))
            continue
        points.append((timestamp_ms, envelope.source, point.name, point.value, point.unit, canonical_tags(point.tags)))
    return points, dead
