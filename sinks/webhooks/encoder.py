"""``WebhooksEncoder``: one alert -> one signed POST per subscribed endpoint.

The body (compact JSON, keys sorted, UTF-8), per the Standard Webhooks payload
structure::

    {"type": "alert.triggered",                   # alert.repeated | alert.resolved
     "timestamp": "2026-11-28T00:01:00.000Z",     # when the notification happened (alert.timestamp_ms)
     "data": {"id": ..., "name": ..., "severity": ..., ...every Alert field...,
              "group": {...}, "labels": {...}, "context": {...}}}   # group, labels, context as objects

Non-finite numbers (a resolve after a gap has ``current_value`` NaN) are sent
as ``null``. Bodies are kept under :data:`MAX_BODY_BYTES` (the specification
recommends < 20 kB) by shortening ``description``, then ``summary`` (marked
with a trailing ``…``).

Headers: ``content-type: application/json``, the endpoint's configured
headers, and ``webhook-id`` (the sink's idempotency key of the alert, the same
for every endpoint, retry and replay), ``webhook-timestamp`` (integer unix
seconds at encode time), ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``
over ``id.timestamp.body`` with the endpoint's secret).

Every request carries the encoder's :class:`~sinks.webhooks.destination.PinnedAdapter`
as its transport: at each attempt the endpoint's host is resolved, every
address checked against the sink's destination policy, and the connection
made to the checked address; a refused destination is a permanent failure.
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from airis_mon.schema import Alert
from sinks.delivery.http import HttpRequest
from sinks.delivery.transform import idempotency_key
from sinks.webhooks.config import NOTIFICATION_EVENTS, WebhooksConfig
from sinks.webhooks.destination import PinnedAdapter, Resolver
from sinks.webhooks.signing import secret_key, sign

__all__ = ["MAX_BODY_BYTES", "WebhooksEncoder", "payload"]

MAX_BODY_BYTES = 20_000
_ELLIPSIS = "…"


def _finite(value):
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dump(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _shorten(text: str, over_bytes: int) -> str:
    """``text`` made at least ``over_bytes`` UTF-8 bytes shorter (JSON escaping ignored, so a little more)."""
    encoded = text.encode("utf-8")
    keep = max(0, len(encoded) - over_bytes - len(_ELLIPSIS.encode()))
    return encoded[:keep].decode("utf-8", errors="ignore") + _ELLIPSIS


def payload(alert: Alert) -> bytes:
    """The exact body sent for ``alert`` (the same for every endpoint)."""
    data = {key: _finite(value) for key, value in alert._asdict().items()}
    data["group"] = json.loads(alert.group or "{}")
    data["labels"] = json.loads(alert.labels or "{}")
    data["context"] = json.loads(alert.context or "{}")
    document = {"type": NOTIFICATION_EVENTS[alert.notification], "timestamp": _iso(alert.timestamp_ms), "data": data}
    body = _dump(document)
    for field in ("description", "summary"):
        while len(body) > MAX_BODY_BYTES and data[field] and data[field] != _ELLIPSIS:
            data[field] = _shorten(data[field], len(body) - MAX_BODY_BYTES)
            body = _dump(document)
    return body


class WebhooksEncoder:
    """Fans each alert out to every endpoint subscribed to its event; no I/O, picklable.

    ``clock`` gives the signing time (unix seconds); tests fix it. ``resolver`` is the name lookup of
    the requests' transport at delivery (``socket.getaddrinfo``-compatible; tests inject one).
    """

    batch_size = 1

    def __init__(
        self, config: WebhooksConfig, clock: Callable[[], float] = time.time, resolver: Resolver = socket.getaddrinfo
    ):
        self._sink = config.name
        self._endpoints = tuple(config.all_endpoints())
        self._keys = {e.name: secret_key(e.secret.get_secret_value()) for e in self._endpoints}
        self._clock = clock
        self._policy = config.destination_policy()
        self._resolver = resolver
        self._transport: PinnedAdapter | None = None  # made on first use (it holds connection pools)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_transport": None}

    def _pinned(self) -> PinnedAdapter:
        if self._transport is None:
            self._transport = PinnedAdapter(self._policy, self._resolver)
        return self._transport

    def encode(self, alerts: Sequence[Alert]) -> list[tuple[HttpRequest, list[Alert]]]:
        requests: list[tuple[HttpRequest, list[Alert]]] = []
        for alert in alerts:
            event = NOTIFICATION_EVENTS[alert.notification]
            subscribed = [e for e in self._endpoints if e.subscribes_to(event)]
            if not subscribed:
                continue
            body = payload(alert)
            webhook_id = idempotency_key(self._sink, alert)
            timestamp_s = int(self._clock())
            for endpoint in subscribed:
                headers = {
                    "Content-Type": "application/json",
                    **endpoint.headers,
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(timestamp_s),
                    "webhook-signature": sign(self._keys[endpoint.name], webhook_id, timestamp_s, body),
                }
                transport = self._pinned()
                request = HttpRequest("POST", endpoint.url, body, headers, label=endpoint.name, transport=transport)
                requests.append((request, [alert]))
        return requests
