"""The public ingestion contract (its metrics, events and user-sync payloads), without Beam: the
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
import re
import time
from datetime import date
from fractions import Fraction
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
from airis_mon.timeutil import DEFAULT_MAX_FUTURE_S, DEFAULT_NOT_BEFORE_MS, check_epoch_ms, ms_to_iso, to_epoch_ms
from airis_mon.validation import describe_validation_error, field_path

__all__ = [
    "MAX_NESTING",
    "EventPayload",
    "MetricPointIn",
    "MetricsPayload",
    "PayloadTimestamp",
    "TimestampRange",
    "check_timestamp",
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
        ms) is the wall clock at the call unless given. Whatever the range, nothing
        after 9999-12-31T23:59:59.999Z (the last time ISO-8601 can print) is accepted."""
        ms = check_epoch_ms(to_epoch_ms(value), self.not_before, self.max_future_s, now_ms)
        if ms > _LAST_PRINTABLE_MS:
            raise ValueError(_AFTER_PRINTABLE)
        return ms

    def latest_ms(self, now_ms: int) -> int:
        """The latest accepted time (epoch ms, whole) when the clock reads ``now_ms``."""
        return min(math.floor(now_ms + self.max_future_s * 1000), _LAST_PRINTABLE_MS)

    def exact_epoch_ms(self, value: object, now_ms: int | None = None) -> Fraction:
        """The instant ``value`` stands for (epoch ms, exact), by the gateway's rules, which its OpenAPI
        document states (:meth:`json_schema`): a number (not a boolean) in s, ms, µs or ns (by magnitude,
        as :func:`~airis_mon.timeutil.to_epoch_ms`), or an RFC 3339 date-time string
        (``2026-11-28T00:00:00.5Z``; an offset is required); the instant itself, not its rounding to
        ms, must lie in the range, and a number may not exceed 2**63 - 1 (decoders hold larger integers as
        floats). ``ValueError`` (naming the rule, never the value) otherwise."""
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            kind = ": a boolean" if isinstance(value, bool) else ""
            raise ValueError(f"not a timestamp{kind} (give epoch s/ms/µs/ns or an RFC 3339 date-time string)")
        if isinstance(value, str):
            instant = _rfc3339_ms(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite timestamp (NaN or infinite)")
        else:
            instant = Fraction(value) * _MS_PER_UNIT[_band(value)]
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if instant < self.not_before:
            raise ValueError(f"before {ms_to_iso(self.not_before)}, the earliest accepted time (timestamps.not_before)")
        if instant > Fraction(now_ms) + Fraction(self.max_future_s) * 1000:
            raise ValueError(f"more than {self.max_future_s:g} s ahead of the clock, the latest accepted time "
                             "(timestamps.max_future_s)")  # fmt: skip
        if instant > _LAST_PRINTABLE_MS:
            raise ValueError(_AFTER_PRINTABLE)
        if not isinstance(value, str) and abs(value) > _INT64_MAX:
            raise ValueError(_BEYOND_INT64)
        return instant

    def json_schema(self, now_ms: int) -> dict[str, Any]:
        """The JSON Schema of the timestamps :meth:`exact_epoch_ms` accepts when the clock reads ``now_ms``:
        numbers in the intervals that each unit allows, or RFC 3339 date-time strings of the accepted years
        (the instant, its offset applied, must lie in the range). The latest time moves with the clock:
        a document built earlier states a maximum that is still accepted later."""
        earliest, latest = self.not_before, self.latest_ms(now_ms)
        numbers = [{"type": "number", **bounds} for bounds in _number_intervals(Fraction(earliest), Fraction(latest))]
        first_year, last_year = _utc_year(earliest), _utc_year(latest)
        text = {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{_digits_between(f'{first_year:04d}', f'{last_year:04d}')}-",
            "description": "RFC 3339 (an offset is required)",
        }
        return {
            "anyOf": [*numbers, text],
            "description": (
                f"epoch s, ms, µs or ns (by magnitude: below 1e11 s, below 1e14 ms, below 1e17 µs, else ns) or an "
                f"RFC 3339 date-time; from {ms_to_iso(earliest)} (timestamps.not_before) to {self.max_future_s:g} s "
                f"ahead of the gateway's clock (timestamps.max_future_s; {ms_to_iso(latest)} when this document was "
                "built), at most 9999-12-31T23:59:59.999Z; numbers at most 2**63 - 1; never a boolean or a numeric "
                "string"
            ),
        }

    def context(self, now_ms: int | None = None, exact: bool = False) -> dict[str, Any]:
        """The pydantic validation context that makes payload models check this
        range (``now_ms``: the clock to check against, epoch ms; ``None``: the wall clock);
        ``exact``: by the gateway's rules (:meth:`exact_epoch_ms`) rather than the pipeline's
        (:meth:`epoch_ms`, which also reads numeric strings and other ISO-8601 forms)."""
        return {_RANGE_KEY: self, _NOW_KEY: now_ms, _EXACT_KEY: exact}


_RANGE_KEY, _NOW_KEY, _EXACT_KEY = "timestamp_range", "now_ms", "exact_timestamps"
_AFTER_PRINTABLE = "after 9999-12-31T23:59:59.999Z, the latest time that can be printed"
#: Largest numeric timestamp the gateway accepts: int64, 2262-04-11T23:47:16.854Z in ns. JSON decoders hold
#: integers up to 64 bits exactly and larger ones as floats, so a bound beyond this could not be checked exactly.
_INT64_MAX = 2**63 - 1
_BEYOND_INT64 = "a number beyond 2**63 - 1 (int64; in ns 2262-04-11): give s, ms or an RFC 3339 date-time"
#: Magnitude bands of numeric timestamps (as :func:`airis_mon.timeutil.to_epoch_ms` reads them): the band's
#: upper bound (exclusive) and its ms per unit. s, ms, µs, ns.
_BANDS = ((Fraction(10**11), Fraction(1000)), (Fraction(10**14), Fraction(1)), (Fraction(10**17), Fraction(1, 1000)),
          (None, Fraction(1, 10**6)))  # fmt: skip
_MS_PER_UNIT = [per_unit for _, per_unit in _BANDS]
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _band(value: float) -> int:
    magnitude = abs(Fraction(value))
    return next(index for index, (below, _) in enumerate(_BANDS) if below is None or magnitude < below)


def _rfc3339_ms(text: str) -> Fraction:
    """The instant of an RFC 3339 date-time (epoch ms, exact), or ``ValueError`` (the value not shown).
    A leap second (``:60``) is accepted at 23:59 UTC, as the first instant of the next minute."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.fraction] with Z or an offset)")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, utc, sign, offset_hours, offset_minutes = match.groups()[6:]
    offset = 0 if utc else (int(offset_hours) * 60 + int(offset_minutes)) * (1 if sign == "+" else -1)
    try:  # year 0 is valid RFC 3339 but no date of Python's: its days are counted back from 0001-01-01
        ordinal = date(year or 4, month, day).toordinal() - (0 if year else date(4, 1, 1).toordinal() + 365)
    except ValueError:
        ordinal = None
    in_range = (
        ordinal is not None
        and hour <= 23
        and minute <= 59
        and (second <= 59 or (second == 60 and (hour * 60 + minute - offset) % 1440 == 1439))
        and (utc or (int(offset_hours) <= 23 and int(offset_minutes) <= 59))
    )
    if not in_range:
        raise ValueError("not an RFC 3339 date-time (a field is out of range)")
    seconds = (ordinal - _EPOCH_ORDINAL) * 86_400 + hour * 3600 + (minute - offset) * 60 + second
    return Fraction(seconds * 1000) + (Fraction(int(fraction) * 1000, 10 ** len(fraction)) if fraction else 0)


def _utc_year(ms: int) -> int:
    return date.fromordinal(_EPOCH_ORDINAL + ms // 86_400_000).year


def _float_at_least(value: Fraction) -> float:
    """The smallest float not below ``value``."""
    candidate = float(value)
    return candidate if Fraction(candidate) >= value else math.nextafter(candidate, math.inf)


def _float_at_most(value: Fraction) -> float:
    """The largest float not above ``value``."""
    candidate = float(value)
    return candidate if Fraction(candidate) <= value else math.nextafter(candidate, -math.inf)


def _json_number(value: Fraction, rounding) -> int | float:
    """``value`` as a JSON number: exact when it is whole, else the nearest float on the safe side."""
    return int(value) if value.denominator == 1 else rounding(value)


def _number_intervals(earliest: Fraction, latest: Fraction) -> list[dict[str, int | float]]:
    """JSON Schema bounds of the numbers whose instant lies in ``[earliest, latest]`` (epoch ms), one
    interval per unit, adjacent intervals merged."""
    intervals: list[list] = []  # [low, high, high is exclusive]
    low_edge = Fraction(0)
    for below, per_unit in _BANDS:
        low, high = max(low_edge, earliest / per_unit), min(latest / per_unit, Fraction(_INT64_MAX))
        exclusive = below is not None and high >= below
        if exclusive:
            high = below
        if low < high or (low == high and not exclusive):
            if intervals and intervals[-1][2] and intervals[-1][1] == low:
                intervals[-1][1:] = [high, exclusive]
            else:
                intervals.append([low, high, exclusive])
        low_edge = below if below is not None else low_edge
    return [
        {"minimum": _json_number(low, _float_at_least),
         **({"exclusiveMaximum": _json_number(high, _float_at_least)} if exclusive
            else {"maximum": _json_number(high, _float_at_most)})}
        for low, high, exclusive in intervals
    ]  # fmt: skip


def _digits_between(low: str, high: str) -> str:
    """A regular expression matching the digit strings of ``len(low)`` characters from ``low`` to ``high``."""
    if low == high:
        return low
    if low[0] == high[0]:
        return low[0] + _group(_digits_between(low[1:], high[1:]))
    if len(low) == 1:
        return f"[{low}-{high}]"
    rest = len(low) - 1
    parts = [low[0] + _group(_digits_between(low[1:], "9" * rest))]
    middle = (int(low[0]) + 1, int(high[0]) - 1)
    if middle[0] <= middle[1]:
        first = str(middle[0]) if middle[0] == middle[1] else f"[{middle[0]}-{middle[1]}]"
        parts.append(first + ("[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"))
    parts.append(high[0] + _group(_digits_between("0" * rest, high[1:])))
    return "(?:" + "|".join(parts) + ")"


def _group(pattern: str) -> str:
    return pattern if pattern.startswith("(") or "|" not in pattern else f"(?:{pattern})"


_DEFAULT_RANGE = TimestampRange()


def check_timestamp(value: Any, context: dict | None) -> None:
    """Check a payload ``timestamp`` against the range of a validation ``context``
    (:meth:`TimestampRange.context`; the default range without one): ``ValueError`` naming the problem."""
    context = context or {}
    accepted = context.get(_RANGE_KEY, _DEFAULT_RANGE)
    check = accepted.exact_epoch_ms if context.get(_EXACT_KEY) else accepted.epoch_ms
    check(value, context.get(_NOW_KEY))


def _accepted_timestamp(value: Any, info: ValidationInfo) -> Any:
    check_timestamp(value, info.context)
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
