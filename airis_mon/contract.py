"""The public ingestion contract (the seed's payloads), without Beam: the
pydantic models the gateway validates request bodies with, the accepted
timestamp range, and the search for values the pipeline cannot carry.

Metrics payload::

    {"timestamp": 1732838400000, "source": "tensorflow_serving",
     "metrics": [{"name": "inference_latency", "value": 41.7, "unit": "ms",
                  "tags": {"model_name": "fraud", "model_version": "12"}}]}

Event payload::

    {"timestamp": "2024-11-29T00:00:00Z", "event_type": "model_version_status",
     "source": "mlflow", "severity": "info", "data": {...}}

The pipeline's parser of these payloads is :mod:`airis_mon.payloads` (which
re-exports everything here). This module imports no Beam and no Arrow, so the
HTTP gateway starts fast.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from airis_mon.models import StrictModel
from airis_mon.severities import SEVERITIES
from airis_mon.timeutil import DEFAULT_MAX_FUTURE_S, DEFAULT_NOT_BEFORE_MS, check_epoch_ms, to_epoch_ms
from airis_mon.validation import describe_validation_error, field_path

__all__ = [
    "MAX_NESTING",
    "EventPayload",
    "MetricPointIn",
    "MetricsPayload",
    "PayloadTimestamp",
    "TimestampRange",
    "payload_kind",
    "payload_problems",
    "safe_text",
    "unprocessable_fields",
]

#: Deepest nesting of objects and arrays in a payload, the payload object itself counting as level 1.
MAX_NESTING = 64
_NOT_FINITE = "must be a finite number"
_NOT_UNICODE = "must be valid Unicode text (no lone surrogates)"
_TOO_DEEP = f"nested more than {MAX_NESTING} levels deep"
#: Latest ``not_before`` that :func:`~airis_mon.timeutil.ms_to_iso` can print: 9999-12-31T23:59:59.999Z, epoch ms.
_LAST_PRINTABLE_MS = 253_402_300_799_999


class TimestampRange(StrictModel):
    """The accepted range of payload timestamps: ``timestamps:`` of a ``payload_files`` or ``gateway`` integration.

    ::

        timestamps:
          not_before: "2000-01-01T00:00:00Z"   # ISO-8601 or epoch s/ms/µs/ns; default 1970-01-01T00:00:00Z
          max_future_s: 86400                  # s ahead of the wall clock at validation (the default)

    A timestamp outside ``[not_before, now + max_future_s]`` is a 400 at the
    gateway and a dead letter in the pipeline.
    """

    not_before: Annotated[int, BeforeValidator(to_epoch_ms)] = Field(
        default=DEFAULT_NOT_BEFORE_MS,
        ge=0,
        le=_LAST_PRINTABLE_MS,
        description="earliest accepted time: ISO-8601 or epoch s/ms/µs/ns (held as epoch ms)",
    )
    max_future_s: float = Field(
        default=DEFAULT_MAX_FUTURE_S,
        ge=0,
        allow_inf_nan=False,
        description="latest accepted time: this many seconds ahead of the wall clock at validation",
    )

    def epoch_ms(self, value: object, now_ms: int | None = None) -> int:
        """``value`` (epoch s/ms/µs/ns or ISO-8601) as epoch ms, or ``ValueError``
        when it is not a timestamp or lies outside the range; ``now_ms`` (epoch
        ms) is the wall clock at the call unless given."""
        return check_epoch_ms(to_epoch_ms(value), self.not_before, self.max_future_s, now_ms)

    def context(self, now_ms: int | None = None) -> dict[str, Any]:
        """The pydantic validation context that makes payload models check this
        range (``now_ms``: the clock to check against, epoch ms; ``None``: the wall clock)."""
        return {_RANGE_KEY: self, _NOW_KEY: now_ms}


_RANGE_KEY, _NOW_KEY = "timestamp_range", "now_ms"
_DEFAULT_RANGE = TimestampRange()


def _accepted_timestamp(value: Any, info: ValidationInfo) -> Any:
    context = info.context or {}
    context.get(_RANGE_KEY, _DEFAULT_RANGE).epoch_ms(value, context.get(_NOW_KEY))  # ValueError names the problem
    return value


PayloadTimestamp = Annotated[int | float | str, BeforeValidator(_accepted_timestamp)]
"""A payload ``timestamp``: epoch s/ms/µs/ns or ISO-8601 in the accepted range
(:meth:`TimestampRange.context`; the default range without one), never a boolean."""


def safe_text(text: str) -> str:
    """``text`` made encodable as UTF-8: lone surrogates become ``\\udXXX`` escapes."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _members(container: dict | list | tuple):
    return iter(container.items()) if isinstance(container, dict) else enumerate(container)


def unprocessable_fields(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``(field, message)`` for every part of a decoded JSON ``value`` the
    pipeline cannot carry, in document order: NaN and infinite numbers, text
    (values and keys) with lone surrogates, and objects or arrays nested more
    than :data:`MAX_NESTING` levels deep. Fields are paths such as
    ``metrics[0].tags.host`` (after ``prefix``); values are never included.
    Iterative (a stack of member iterators), so any depth is safe. A value
    that :func:`_certainly_processable` clears is not searched at all.
    """
    if _certainly_processable(value):
        return []
    found: list[tuple[str, str]] = []
    if not isinstance(value, (dict, list, tuple)):
        problem = _scalar_problem(value)
        return [(_field((), prefix), problem)] if problem else []
    stack: list[tuple[tuple, Any]] = [((), _members(value))]
    while stack:
        location, members = stack[-1]
        for key, member in members:
            if isinstance(key, str) and not _is_unicode(key):
                found.append((_field((*location, key), prefix), _NOT_UNICODE))
            if isinstance(member, (dict, list, tuple)):
                member_location = (*location, key if isinstance(key, (str, int)) else str(key))
                if len(member_location) >= MAX_NESTING:
                    found.append((_field(member_location, prefix), _TOO_DEEP))
                    continue
                stack.append((member_location, _members(member)))
                break  # descend; this iterator resumes after the member
            problem = _scalar_problem(member)
            if problem:
                found.append((_field((*location, key), prefix), problem))
        else:
            stack.pop()
    return found


_STRICT_JSON = json.JSONEncoder(allow_nan=False, ensure_ascii=False, check_circular=False)


def _certainly_processable(value: Any) -> bool:
    """``True`` when ``value`` certainly holds nothing :func:`unprocessable_fields`
    would report, by C-speed checks: it serialises as strict JSON (no NaN or
    infinity), encodes as UTF-8 (no lone surrogate) and has fewer brackets
    than :data:`MAX_NESTING` (so it cannot nest deeper). ``False`` means "search"."""
    try:
        text = _STRICT_JSON.encode(value)
        text.encode("utf-8")
    except (ValueError, TypeError, RecursionError):  # UnicodeEncodeError is a ValueError
        return False
    return text.count("[") + text.count("{") < MAX_NESTING


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else _NOT_FINITE
    if isinstance(value, str):
        return None if _is_unicode(value) else _NOT_UNICODE
    return None


def _field(location: tuple, prefix: str) -> str:
    return field_path(tuple(safe_text(part) if isinstance(part, str) else part for part in location), prefix)


def payload_problems(error: ValidationError | None, value: Any, prefix: str = "") -> list[str]:
    """``field: message`` lines: those of the validation ``error`` (if any),
    then the :func:`unprocessable_fields` of ``value`` that the error does not
    name already. Shared by the gateway (a 400) and the parser (a dead letter);
    every line encodes as UTF-8 and names no value."""
    lines = describe_validation_error(error, prefix) if error is not None else []
    if value is not None:  # nothing to search
        named = {line.partition(": ")[0] for line in lines}
        lines += [f"{field}: {message}" for field, message in unprocessable_fields(value, prefix) if field not in named]
    return [safe_text(line) for line in lines]


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
    timestamp: PayloadTimestamp
    source: str = Field(min_length=1, max_length=256)

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
_POINTS = TypeAdapter(list[MetricPointIn])


def payload_kind(payload: Any) -> str | None:
    """``"metrics"``, ``"event"`` or ``None`` when the shape is neither."""
    if isinstance(payload, dict):
        if "metrics" in payload:
            return "metrics"
        if "event_type" in payload:
            return "event"
    return None
