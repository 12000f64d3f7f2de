"""``SiemEncoder``: alerts -> enriched security events, signed HTTP or Splunk HEC.

The enriched security event
---------------------------
The seed asks for an "enriched security event"; its text is not available
here, so the event has exactly these fields (and no others)::

    {"event_type": "ai_model_alert",
     "event_id": "<32 hex>",            # idempotency key: same for every retry/replay of this notification
     "timestamp": "2026-11-28T00:01:00.000Z",   # when this notification happened, ISO 8601 UTC
     "severity": "high",                # the alert's: info|warning|error|high|critical
     "source": "airis-mon",
     "alert": {...},                    # every Alert field (ms timestamps as integers), group/labels/context as objects
     "ai_model_id": "fraud",
     "monitoring_context": {"rule", "metric", "threshold", "current_value", "peak_value", "environment",
                            "integration": "<the integration that produced the metric>", "labels": {...}},
     "correlation_id": "<alert id>",    # shared by the trigger, repeats and resolve of one episode
     "status": "firing",                # firing | resolved
     "notification": "trigger"}         # trigger | repeat | resolve

Non-finite numbers (NaN, ±inf) are sent as ``null``: they are not JSON.

``mode: http``: one event per request, signed
---------------------------------------------
``POST <url>`` with the event as compact UTF-8 JSON and the headers::

    Content-Type: application/json
    Authorization: Bearer <token>
    Idempotency-Key: <event_id>
    X-Timestamp: <unix seconds when the request was built, an integer>
    X-Signature: sha256=<hex HMAC-SHA256>

The signature is ``HMAC-SHA256(key=signing_secret as UTF-8, message=X-Timestamp
+ "." + raw body)``, lowercase hex, where the raw body is the exact bytes of the
request body. A receiver verifies it with::

    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body,
                                    hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, request.headers["X-Signature"]) and abs(time.time() - int(timestamp)) <= 300

Retries resend the same bytes and headers, so they carry the first attempt's
timestamp (a receiver's replay window must exceed the delivery ``max_total_s``,
120 s by default).

``mode: splunk_hec``: several events per request
------------------------------------------------
``POST <url>/services/collector/event`` with ``Authorization: Splunk <token>``;
the body is up to ``batch_size`` JSON objects concatenated with no separator
(Splunk's batch format, not an array), each::

    {"time": 1795824060.0, "host": "airis-mon", "source": "airis-mon", "sourcetype": "airis:alert",
     "index": "<only when configured>", "event": <the enriched event>}

``time`` is the notification time in epoch seconds. A body is also split
before it passes 1 MB (a conservative bound below Splunk's
``max_content_length``). Splunk answers ``{"text": "Success", "code": 0}``;
400 (bad data), 401/403 (token) are permanent and 503 (server busy) retried by
the shared delivery layer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from airis_mon.schema import Alert, tags_from_json
from sinks.delivery import HttpRequest, idempotency_key
from sinks.siem.config import SiemConfig

__all__ = ["EVENT_TYPE", "MAX_HEC_BODY_BYTES", "SOURCE", "SiemEncoder", "enriched_event", "iso_utc", "sign"]

EVENT_TYPE = "ai_model_alert"
SOURCE = "airis-mon"
MAX_HEC_BODY_BYTES = 1_000_000


def iso_utc(epoch_ms: int) -> str:
    """``2026-11-28T00:01:00.000Z`` (ISO 8601, UTC, milliseconds)."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def enriched_event(sink: str, alert: Alert) -> dict:
    """The enriched security event of one notification (see the module docstring)."""
    group, labels = tags_from_json(alert.group), tags_from_json(alert.labels)
    fields = {key: _finite(value) for key, value in alert._asdict().items()}
    return {
        "event_type": EVENT_TYPE,
        "event_id": idempotency_key(sink, alert),
        "timestamp": iso_utc(alert.timestamp_ms),
        "severity": alert.severity,
        "source": SOURCE,
        "alert": {**fields, "group": group, "labels": labels, "context": json.loads(alert.context)},
        "ai_model_id": alert.model_id,
        "monitoring_context": {
            "rule": alert.rule,
            "metric": alert.metric,
            "threshold": _finite(alert.threshold),
            "current_value": _finite(alert.current_value),
            "peak_value": _finite(alert.peak_value),
            "environment": alert.environment,
            "integration": alert.source,
            "labels": labels,
        },
        "correlation_id": alert.id,
        "status": alert.status,
        "notification": alert.notification,
    }


def _json(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``timestamp + "." + body`` keyed with ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class SiemEncoder:
    """Alerts -> SIEM requests (see the module docstring). Pure but for ``clock`` (``X-Timestamp``); picklable."""

    def __init__(self, config: SiemConfig, clock: Callable[[], float] = time.time):
        if config.mode == "http" and config.signing_secret is None:
            raise ValueError(f"{config.name}: mode http needs signing_secret")
        self._config = config
        self._clock = clock
        self.batch_size = 1 if config.mode == "http" else config.batch_size

    def encode(self, alerts: Sequence[Alert]) -> list[tuple[HttpRequest, list[Alert]]]:
        if self._config.mode == "http":
            return [(self._signed(alert), [alert]) for alert in alerts]
        return self._hec(alerts)

    def _signed(self, alert: Alert) -> HttpRequest:
        event = enriched_event(self._config.name, alert)
        body = _json(event)
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self._config.token.get_secret_value()}",
            "Idempotency-Key": event["event_id"],
            "X-Timestamp": timestamp,
            "X-Signature": sign(self._config.signing_secret.get_secret_value(), timestamp, body),
        }
        return HttpRequest("POST", self._config.endpoint(), body, headers)

    def hec_event(self, alert: Alert) -> dict:
        """One HEC event object: metadata and the enriched event."""
        wrapped = {"time": alert.timestamp_ms / 1000, "host": self._config.host, "source": SOURCE,
                   "sourcetype": self._config.sourcetype}  # fmt: skip
        if self._config.index:
            wrapped["index"] = self._config.index
        wrapped["event"] = enriched_event(self._config.name, alert)
        return wrapped

    def _hec(self, alerts: Sequence[Alert]) -> list[tuple[HttpRequest, list[Alert]]]:
        batches: list[tuple[list[bytes], list[Alert]]] = []
        size = 0
        for alert in alerts:
            event = _json(self.hec_event(alert))
            if not batches or len(batches[-1][1]) >= self.batch_size or size + len(event) > MAX_HEC_BODY_BYTES:
                batches.append(([], []))
                size = 0
            batches[-1][0].append(event)
            batches[-1][1].append(alert)
            size += len(event)
        headers = {"Content-Type": "application/json",
                   "Authorization": f"Splunk {self._config.token.get_secret_value()}"}  # fmt: skip
        return [
            (HttpRequest("POST", self._config.endpoint(), b"".join(bodies), dict(headers)), carried)
            for bodies, carried in batches
        ]
