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

Payload timestamps must also lie in the *accepted range*
(:func:`check_epoch_ms`): not before :data:`DEFAULT_NOT_BEFORE_MS`
(1970-01-01T00:00:00Z, epoch 0) and not more than :data:`DEFAULT_MAX_FUTURE_S`
(86,400 s, one day) ahead of the wall clock at validation time. Both bounds
are configurable per source (``timestamps:`` in
:class:`airis_mon.payloads.TimestampRange`). Error messages never contain the
value that was refused.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_MAX_FUTURE_S",
    "DEFAULT_NOT_BEFORE_MS",
    "check_epoch_ms",
    "epoch_array_to_ms",
    "ms_to_iso",
    "parse_iso_ms",
    "to_epoch_ms",
]

#: Earliest accepted payload time by default: 1970-01-01T00:00:00Z (epoch 0), epoch ms.
#: Raise it per source (``timestamps.not_before``) to catch counters mistaken for times.
DEFAULT_NOT_BEFORE_MS = 0
#: Latest accepted payload time by default: this many seconds ahead of the wall clock (one day).
DEFAULT_MAX_FUTURE_S = 86_400.0

_INT64_MIN = -(2**63)  # numpy.iinfo(numpy.int64).min; numpy is imported on first use (the gateway needs none)
#: Float bound of epoch ms that fit ``int64`` (2**63, exactly representable).
_INT64_BOUND = 2.0**63

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
    not a timestamp (booleans, NaN, infinities, unparseable strings). The
    message never contains the value (it may be a secret pasted by mistake).
    The result is not range-checked: see :func:`check_epoch_ms`.
    """
    if isinstance(value, bool):
        raise ValueError("not a timestamp: a boolean (give epoch s/ms/µs/ns or ISO-8601)")
    if value is None:
        raise ValueError("not a timestamp: null (give epoch s/ms/µs/ns or ISO-8601)")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return round(value.timestamp() * 1000)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite timestamp (NaN or infinite)")
        return _number_to_ms(value)
    if isinstance(value, str):
        stripped = value.strip()
        try:
            number = float(stripped)
        except ValueError:
            pass
        else:
            if not math.isfinite(number):
                raise ValueError("not a finite timestamp (NaN or infinite)")
            return _number_to_ms(number)
        try:
            return parse_iso_ms(stripped)
        except (ValueError, OverflowError):
            raise ValueError("not an ISO-8601 or numeric timestamp") from None
    raise ValueError("not a timestamp (give epoch s/ms/µs/ns or ISO-8601)")


def check_epoch_ms(
    ms: int,
    not_before_ms: int = DEFAULT_NOT_BEFORE_MS,
    max_future_s: float = DEFAULT_MAX_FUTURE_S,
    now_ms: int | None = None,
) -> int:
    """Return ``ms`` (epoch ms) when it lies in the accepted range, else raise ``ValueError``.

    Accepted: ``not_before_ms <= ms <= now_ms + max_future_s * 1000``, where
    ``now_ms`` (epoch ms) defaults to the wall clock at the call. The message
    names the bound that was crossed, never the value.
    """
    if ms < not_before_ms:
        raise ValueError(f"before {ms_to_iso(not_before_ms)}, the earliest accepted time (timestamps.not_before)")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if ms > now_ms + max_future_s * 1000:
        raise ValueError(
            f"more than {max_future_s:g} s ahead of the clock, the latest accepted time (timestamps.max_future_s)"
        )
    return ms


def epoch_array_to_ms(values: np.ndarray) -> np.ndarray:
    """Vectorised :func:`to_epoch_ms` for a numeric array (any unit per element).

    Returns an ``int64`` array of epoch milliseconds. Non-finite inputs, and
    float inputs whose milliseconds do not fit ``int64``, map to ``INT64_MIN``
    so that callers can dead-letter them by mask.
    """
    import numpy as np

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
    usable = finite & (np.abs(scaled) < _INT64_BOUND)
    out = np.where(usable, scaled, 0.0).astype(np.int64)
    out[~usable] = _INT64_MIN
    return out


def ms_to_iso(ms: int) -> str:
    """Format epoch ms as ISO-8601 UTC with millisecond precision and ``Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
