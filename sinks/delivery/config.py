"""``delivery:`` settings shared by every HTTP sink.

::

    sinks:
      - name: pager
        type: pagerduty
        delivery:
          retry: {max_attempts: 5, initial_backoff_s: 0.5, max_backoff_s: 30, max_total_s: 120}
          timeout_s: 10
          rate_limit_per_s: 2
"""

from __future__ import annotations

from pydantic import Field

from airis_mon.models import StrictModel
from airis_mon.retry import RetryConfig

__all__ = ["DeliveryConfig", "RetryConfig"]


class DeliveryConfig(StrictModel):
    """How a sink delivers: retries, per-request timeout, rate limit."""

    retry: RetryConfig = Field(default_factory=RetryConfig)
    timeout_s: float = Field(default=10.0, gt=0, description="per HTTP request, s")
    rate_limit_per_s: float | None = Field(default=None, gt=0, description="requests per second; None: no limit")
