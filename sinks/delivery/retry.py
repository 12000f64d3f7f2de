"""Retry decisions: pure functions, no I/O.

- 2xx: delivered.
- 408, 425, 429, 5xx and connection errors or timeouts: retry.
- Any other status (4xx): permanent; retrying cannot help.

Backoff, bounds and the retry loop are the shared ones of :mod:`airis_mon.retry`
(re-exported here). A ``Retry-After`` header (seconds or an HTTP date) is
honoured as a minimum.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from airis_mon.retry import Attempt, Outcome, RetryConfig, backoff_s, with_retries

__all__ = ["Attempt", "Outcome", "RetryConfig", "backoff_s", "classify", "retry_after_s", "with_retries"]

RETRYABLE_STATUSES = frozenset({408, 425, 429})


def classify(status: int | None) -> Outcome:
    """``None`` stands for a connection error or timeout (no response)."""
    if status is not None and 200 <= status <= 299:
        return Outcome.DELIVERED
    if status is None or status in RETRYABLE_STATUSES or 500 <= status <= 599:
        return Outcome.RETRY
    return Outcome.PERMANENT


def retry_after_s(header: str | None, now_epoch_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date); None if absent/invalid."""
    if not header:
        return None
    value = header.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_epoch_s)
    except (TypeError, ValueError):
        return None
