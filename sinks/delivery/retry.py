"""Retry decisions: pure functions, no I/O.

- 2xx: delivered.
- 408, 425, 429, 5xx and connection errors or timeouts: retry.
- Any other status (4xx): permanent; retrying cannot help.

Backoff is exponential with full jitter (AWS architecture blog, "Exponential
Backoff And Jitter"): ``uniform(0, min(cap, base * 2 ** (attempt - 1)))``. A
``Retry-After`` header (seconds or an HTTP date) is honoured as a minimum.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from sinks.delivery.config import RetryConfig

__all__ = ["Attempt", "Outcome", "backoff_s", "classify", "retry_after_s", "with_retries"]

RETRYABLE_STATUSES = frozenset({408, 425, 429})


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


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


def backoff_s(attempt: int, retry: RetryConfig, rng: random.Random) -> float:
    """Wait before attempt ``attempt + 1`` (``attempt`` >= 1 attempts made so far)."""
    ceiling = min(retry.max_backoff_s, retry.initial_backoff_s * 2 ** (attempt - 1))
    return rng.uniform(0, ceiling)


@dataclass(frozen=True)
class Attempt:
    """What one try of a delivery gave (HTTP, SMTP, ...)."""

    outcome: Outcome
    status: int | None  # protocol status code; None without a reply
    reason: str  # what went wrong, never a secret; "" when delivered
    retry_after_s: float | None = None  # the peer asked to wait at least this long


def with_retries(
    attempt: Callable[[], Attempt],
    retry: RetryConfig,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    rng: random.Random,
) -> tuple[Attempt, int, str]:
    """Call ``attempt`` until it delivers, fails permanently, or the bounds of
    ``retry`` (attempts, total time) are reached.

    Returns the last attempt, the number of attempts made and the failure
    reason to report ("" when delivered). The one retry loop of every sink.
    """
    started = clock()
    count = 0
    while True:
        count += 1
        last = attempt()
        if last.outcome is Outcome.DELIVERED:
            return last, count, ""
        if last.outcome is Outcome.PERMANENT:
            return last, count, f"permanent failure: {last.reason}"
        if count >= retry.max_attempts:
            return last, count, f"gave up after {count} attempts: {last.reason}"
        wait = backoff_s(count, retry, rng)
        if last.retry_after_s is not None:
            wait = max(wait, last.retry_after_s)
        if clock() - started + wait > retry.max_total_s:
            return (
                last,
                count,
                (
                    f"gave up after {count} attempts: {last.reason}; the next wait ({wait:.1f} s) would pass "
                    f"max_total_s ({retry.max_total_s:g} s)"
                ),
            )
        sleep(wait)
