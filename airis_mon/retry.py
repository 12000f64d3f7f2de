"""Bounded retries with exponential backoff and full jitter: one loop for
every integration that calls out (HTTP sinks, SMTP, polling sources).

Backoff is ``uniform(0, min(cap, base * 2 ** (attempt - 1)))`` (AWS
architecture blog, "Exponential Backoff And Jitter"); a peer's requested wait
(``Retry-After``) is honoured as a minimum. Time is injected so tests do not wait.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import Field

from airis_mon.models import StrictModel

__all__ = ["Attempt", "Outcome", "RetryConfig", "backoff_s", "with_retries"]


class RetryConfig(StrictModel):
    """Bounded retries with exponential backoff and full jitter."""

    max_attempts: int = Field(default=5, ge=1, le=20, description="attempts per request, the first included")
    initial_backoff_s: float = Field(default=0.5, gt=0, description="backoff before the 2nd attempt, s")
    max_backoff_s: float = Field(default=30.0, gt=0, description="cap of one backoff, s")
    max_total_s: float = Field(default=120.0, gt=0, description="give up when the next wait would pass this, s")


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


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
