"""The one delivery layer every HTTP sink sits on.

- :mod:`sinks.delivery.config`: ``delivery:`` settings (retries, time budget, rate limit)
- :mod:`sinks.delivery.retry`: which responses retry, backoff with jitter, ``Retry-After``
- :mod:`sinks.delivery.http`: :class:`HttpDeliverer`, one request delivered with retries (no Beam)
- :mod:`sinks.delivery.transform`: :class:`DeliverAlerts`, the Beam side (dead letters, counters)

A sink only writes an *encoder*: alerts in, :class:`HttpRequest` objects out.
"""

from sinks.delivery.config import DeliveryConfig, RetryConfig
from sinks.delivery.http import DeliveryResult, HttpDeliverer, HttpRequest
from sinks.delivery.transform import DeliverAlerts, Encoder, idempotency_key

__all__ = [
    "DeliverAlerts",
    "DeliveryConfig",
    "DeliveryResult",
    "Encoder",
    "HttpDeliverer",
    "HttpRequest",
    "RetryConfig",
    "idempotency_key",
]
