"""Timestamps: everything inside AIRIS-MON is integer milliseconds since the
Unix epoch, UTC.

Inputs arrive in seconds, milliseconds, microseconds or nanoseconds (numbers)
or as ISO-8601 strings. Numeric units are recognised by magnitude, the way
most metric systems do it::

    |t| < 1e11  -> seconds       (covers years 1970..5138)
    |t| < 1e14  -> milliseconds
    |t| < 1e17  -> microseconds
    otherwise   -> nanoseconds

>>> to_epoch_ms(1700000000)
1700000000000
>>> to_epoch_ms("2023-11-14T22:13:20Z")
1700000000000
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np

__all__ = ["epoch_array_to_ms", "ms_to_iso", "parse_iso_ms", "to_epoch_ms"]

_SECONDS_BELOW = 1e11
_MILLIS_BELOW = 1e14
_MICROS_BELOW = 1e17


def _number_to_ms(value: float) -> int:
    magnitude = abs(value)
    if magnitude < _SECONDS_BELOW:
        return math.floor(value * 1000 + 0.5)
    if magnitude < _MILLIS_BELOW:
        return round(value)
    if magnitude < _MICROS_BELOW:
        return int(value // 1000)
    return int(value // 1_000_000)


def parse_iso_ms(text: str) -> int:
    """Parse an ISO-8601 timestamp to epoch ms; a missing offset means UTC."""
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    parsed = datetime.fromisoformat(candidate)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return round(parsed.timestamp() * 1000)


def to_epoch_ms(value: object) -> int:
    """Convert one timestamp (number in s/ms/µs/ns, ISO-8601 string or an
    aware ``datetime``) to integer epoch milliseconds.

    Raises ``ValueError`` with a message naming the problem when the value is
    not a timestamp (booleans, NaN, infinities, unparseable strings).
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return round(value.timestamp() * 1000)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not a finite timestamp: {value!r}")
        return _number_to_ms(value)
    if isinstance(value, str):
        stripped = value.strip()
        try:
            return _number_to_ms(float(stripped))
        except ValueError:
            pass
        try:
            return parse_iso_ms(stripped)
        except ValueError:
            raise ValueError(f"not an ISO-8601 or numeric timestamp: {value!r}") from None
    raise ValueError(f"not a timestamp: {value!r}")


def epoch_array_to_ms(values: np.ndarray) -> np.ndarray:
    """Vectorised :func:`to_epoch_ms` for a numeric array (any unit per element).

    Returns an ``int64`` array of epoch milliseconds. Non-finite inputs map
    to ``INT64_MIN`` so that callers can dead-letter them by mask.
    """
    as_float = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(as_float)
    scale = np.select(
        [magnitude < _SECONDS_BELOW, magnitude < _MILLIS_BELOW, magnitude < _MICROS_BELOW],
        [1000.0, 1.0, 1e-3],
        default=1e-6,
    )
    if np.issubdtype(np.asarray(values).dtype, np.integer):
        ints = np.asarray(values, dtype=np.int64)
        # Integer inputs stay exact: multiply or floor-divide, never through float.
        out = np.where(
            magnitude < _SECONDS_BELOW,
            ints * 1000,
            np.where(
                magnitude < _MILLIS_BELOW,
                ints,
                np.where(magnitude < _MICROS_BELOW, ints // 1000, ints // 1_000_000),
            ),
        )
        return out.astype(np.int64)
    finite = np.isfinite(as_float)
    scaled = np.floor(np.where(finite, as_float * scale, 0.0) + np.where(scale >= 1.0, 0.5, 0.0))
    out = scaled.astype(np.int64)
    out[~finite] = np.iinfo(np.int64).min
    return out


def ms_to_iso(ms: int) -> str:
    """Format epoch ms as ISO-8601 UTC with millisecond precision and ``Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
