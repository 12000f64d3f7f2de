"""Small, forgiving readers of vendor JSON, shared by the normalizers that turn
webhook bodies and polled API objects into public-contract payloads
(:mod:`sources.gateway.inbound` for MLflow, :mod:`sources.github.events` for GitHub).

They never raise: a missing or mistyped field reads as ``None`` (or ``{}`` for
objects), so a normalizer keeps every delivery, however odd. Times are epoch
milliseconds.
"""

from __future__ import annotations

from typing import Any

from airis_mon.timeutil import to_epoch_ms

__all__ = ["MAX_PLAUSIBLE_MS", "TEXT_LIMIT", "as_dict", "as_str", "event", "first_line", "first_time_ms", "time_ms"]

#: Body times outside [1970, 2100) are not trusted (epoch ms); the receive time is used instead.
MAX_PLAUSIBLE_MS = 4_102_444_800_000
#: Longest free text (characters) kept from a body by :func:`first_line`.
TEXT_LIMIT = 200


def as_dict(value: Any) -> dict:
    """``value`` when it is an object, else ``{}``."""
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    """A scalar as text; ``None`` for missing values and containers."""
    if value is None or isinstance(value, (dict, list, tuple, set)):
        return None
    return value if isinstance(value, str) else str(value)


def time_ms(value: Any) -> int | None:
    """Epoch ms of a body time (ISO-8601 or epoch number), ``None`` when absent or implausible."""
    if value is None or value == "":
        return None
    try:
        ms = to_epoch_ms(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return ms if 0 <= ms < MAX_PLAUSIBLE_MS else None


def first_time_ms(received_ms: int, *values: Any) -> int:
    """Epoch ms of the first readable time among ``values``, else ``received_ms``."""
    for value in values:
        ms = time_ms(value)
        if ms is not None:
            return ms
    return int(received_ms)


def first_line(value: Any, limit: int = TEXT_LIMIT) -> str | None:
    """The first line of a text, at most ``limit`` characters (``None`` when not text)."""
    text = as_str(value)
    if text is None:
        return None
    lines = text.strip().splitlines()
    return lines[0][:limit] if lines else ""


def event(timestamp_ms: int, event_type: str, source: str, severity: str, data: dict) -> dict:
    """An event payload of the public contract (:mod:`airis_mon.payloads`)."""
    return {"timestamp": timestamp_ms, "event_type": event_type, "source": source, "severity": severity, "data": data}
