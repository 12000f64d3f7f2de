"""``PagerDutyEncoder``: one alert -> one PagerDuty Events API v2 event.

The Events API takes one event per request (``POST /v2/enqueue``, JSON, body
≤ 512 KB, answer 202). Every notification of one episode carries the same
``dedup_key`` (``airis-mon-<alert id>``), so PagerDuty groups them into one
alert:

- ``trigger`` and ``repeat`` -> ``event_action: trigger``. A repeat is a
  trigger with the open alert's ``dedup_key``; PagerDuty folds it into the
  open incident instead of opening another.
- ``resolve`` -> ``event_action: resolve`` with the same ``dedup_key`` (no
  payload: PagerDuty ignores one on resolve).
- ``acknowledge`` -> ``event_action: acknowledge`` with the same ``dedup_key``
  (no payload). Not a rule's notification: the console's Acknowledge (Slack
  button, page, API) writes one per PagerDuty sink that was sent the
  episode's trigger into the live runner's outbox
  (:mod:`console.acknowledgements`). PagerDuty is the only sink that takes it.

Any other notification kind is refused with a ``ValueError``.

Trigger body (``custom_details`` shown in full)::

    {"routing_key": "<32 chars>", "event_action": "trigger", "dedup_key": "airis-mon-54404e21197c99407aaf8bd5",
     "client": "AIRIS-MON",
     "payload": {"summary": "... (≤ 1024 chars, truncated with …)", "source": "tensorflow_serving",
                 "severity": "error", "timestamp": "2026-11-28T00:01:00.000Z", "component": "fraud",
                 "group": "prod", "class": "threshold",
                 "custom_details": {"alert_id", "rule", "metric", "model_id", "environment", "threshold",
                                    "current_value", "peak_value", "duration_s", "labels": {...},
                                    "starts_at": "2026-11-28T00:00:00.000Z"}},
     "links": [{"href": "<dashboard_url rendered>", "text": "AIRIS-MON dashboard"}]}

Severity: ``critical`` -> critical, ``high`` and ``error`` -> error,
``warning`` -> warning, ``info`` -> info (anything else -> error, so an
unknown severity still pages). ``source`` is the alert's integration, or
``airis-mon`` when empty; ``component``, ``group`` and ``class`` are left out
when empty. Non-finite numbers (NaN, ±inf) are sent as ``null``: they are not
JSON.

PagerDuty has no idempotency header: its deduplication is the ``dedup_key``,
so a retried or replayed trigger is harmless. No such header is sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone

from airis_mon.schema import Alert, tags_from_json
from sinks.delivery import HttpRequest
from sinks.delivery.context import context_of, what_changed
from sinks.delivery.links import render_link
from sinks.delivery.templates import render_template
from sinks.pagerduty.config import PagerDutyConfig

__all__ = [
    "CLIENT",
    "MAX_BODY_BYTES",
    "MAX_SUMMARY_CHARS",
    "NOTIFICATIONS",
    "SEVERITY_MAP",
    "PagerDutyEncoder",
    "dedup_key",
    "iso_utc",
]

CLIENT = "AIRIS-MON"
MAX_SUMMARY_CHARS = 1024
MAX_BODY_BYTES = 512 * 1024
#: notification kind -> Events API v2 ``event_action``
NOTIFICATIONS = {"trigger": "trigger", "repeat": "trigger", "resolve": "resolve", "acknowledge": "acknowledge"}
SEVERITY_MAP = {"critical": "critical", "high": "error", "error": "error", "warning": "warning", "info": "info"}
_ELLIPSIS = "…"


def dedup_key(alert: Alert) -> str:
    """The same for every notification of one episode (≤ 255 chars: ids are 24 hex chars)."""
    return f"airis-mon-{alert.id}"


def iso_utc(epoch_ms: int) -> str:
    """``2026-11-28T00:01:00.000Z`` (ISO 8601, UTC, milliseconds)."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finite(value: float) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(_ELLIPSIS)] + _ELLIPSIS


class PagerDutyEncoder:
    """Alerts -> Events API v2 requests, one alert per request. Pure and picklable."""

    batch_size = 1

    def __init__(self, config: PagerDutyConfig):
        self._config = config

    def encode(self, alerts: Sequence[Alert]) -> list[tuple[HttpRequest, list[Alert]]]:
        return [(self.request(alert), [alert]) for alert in alerts]

    def request(self, alert: Alert) -> HttpRequest:
        body = json.dumps(self.event(alert), ensure_ascii=False, allow_nan=False).encode("utf-8")
        if len(body) > MAX_BODY_BYTES:  # only huge labels can get here: send the event without them
            body = json.dumps(self.event(alert, with_labels=False), ensure_ascii=False, allow_nan=False).encode()
        return HttpRequest("POST", self._config.url, body, {"Content-Type": "application/json"})

    def event(self, alert: Alert, with_labels: bool = True) -> dict:
        """The Events API v2 event of one notification (contains the routing key)."""
        action = NOTIFICATIONS.get(alert.notification)
        if action is None:
            raise ValueError(f"PagerDuty events are sent for {', '.join(NOTIFICATIONS)}, not {alert.notification!r}")
        common = {"routing_key": self._config.routing_key.get_secret_value()}
        if action != "trigger":  # resolve, acknowledge: the dedup_key names the incident; no payload
            return {**common, "event_action": action, "dedup_key": dedup_key(alert)}
        labels = tags_from_json(alert.labels)
        changed = what_changed(alert)
        payload = {
            "summary": _truncate(render_template(self._config.templates.summary, alert), MAX_SUMMARY_CHARS),
            "source": alert.source or "airis-mon",
            "severity": SEVERITY_MAP.get(alert.severity, "error"),
            "timestamp": iso_utc(alert.timestamp_ms),
        }
        for key, value in (("component", alert.model_id), ("group", alert.environment), ("class", alert.alert_type)):
            if value:
                payload[key] = value
        payload["custom_details"] = {
            "alert_id": alert.id,
            "rule": alert.rule,
            "metric": alert.metric,
            "model_id": alert.model_id,
            "environment": alert.environment,
            "threshold": _finite(alert.threshold),
            "current_value": _finite(alert.current_value),
            "peak_value": _finite(alert.peak_value),
            "duration_s": _finite(alert.duration_s),
            "labels": labels if with_labels else {"omitted": "labels too large for one PagerDuty event"},
            "starts_at": iso_utc(alert.starts_at_ms),
        }
        context = context_of(alert)
        for key in ("team", "owner", "change", "deploy"):
            if context.get(key):
                payload["custom_details"][key] = context[key]
        if changed:
            payload["custom_details"]["what_changed"] = changed
        event = {**common, "event_action": "trigger", "dedup_key": dedup_key(alert), "payload": payload}
        event["client"] = CLIENT
        if self._config.dashboard_url:
            href = render_link(self._config.dashboard_url, alert)
            event["links"] = [{"href": href, "text": "AIRIS-MON dashboard"}]
        return event
