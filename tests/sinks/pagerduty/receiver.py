"""A loopback PagerDuty Events API v2 endpoint that enforces the documented rules.

``POST /v2/enqueue`` with a JSON object body of at most 512 KB:

- ``routing_key``: a 32-character string;
- ``event_action``: ``trigger``, ``acknowledge`` or ``resolve``;
- ``dedup_key``: a string of at most 255 characters; required for
  acknowledge and resolve;
- trigger: ``payload`` with ``summary`` (1..1024 chars), ``source``
  (non-empty), ``severity`` (critical|error|warning|info), optional
  ``timestamp`` (ISO 8601), ``component``, ``group``, ``class`` (strings) and
  ``custom_details``; ``links`` a list of ``{href, text}`` and ``images`` a
  list of ``{src, href?, alt?}``.

Top-level and payload keys outside the documented ones are rejected (stricter
than PagerDuty, which ignores them) so that a misspelt field fails a test.
Answers 202 ``{"status": "success", "message": "Event processed",
"dedup_key": ...}`` or 400 ``{"status": "invalid event", "message": "Event
object is invalid", "errors": [...]}``. ``incidents`` tracks the open or
resolved state per ``dedup_key``, as PagerDuty would.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime

from tests.sinks.receivers import Recorded

MAX_BODY_BYTES = 512 * 1024
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
TOP_LEVEL_KEYS = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}
PAYLOAD_KEYS = {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
JSON_HEADERS = {"Content-Type": "application/json"}


def _errors(request: Recorded) -> tuple[list[str], dict]:
    if request.method != "POST":
        return ["Method not allowed"], {}
    if len(request.body) > MAX_BODY_BYTES:
        return ["Request body exceeds 512 KB"], {}
    try:
        event = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return ["Event is not valid JSON"], {}
    if not isinstance(event, dict):
        return ["Event must be a JSON object"], {}
    errors = [f"'{key}' is not a known field" for key in sorted(set(event) - TOP_LEVEL_KEYS)]
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("'routing_key' is missing or not 32 characters")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' must be one of trigger, acknowledge, resolve")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append(f"'dedup_key' is required for {action}")
    if action == "trigger":
        errors += _payload_errors(event.get("payload"))
        for link in event.get("links", []):
            if not isinstance(link, dict) or not isinstance(link.get("href"), str):
                errors.append("'links' entries need an 'href'")
        for image in event.get("images", []):
            if not isinstance(image, dict) or not isinstance(image.get("src"), str):
                errors.append("'images' entries need a 'src'")
    return errors, event


def _payload_errors(payload) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is required for trigger"]
    errors = [f"'payload.{key}' is not a known field" for key in sorted(set(payload) - PAYLOAD_KEYS)]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary or len(summary) > 1024:
        errors.append("'payload.summary' is required and at most 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        errors.append("'payload.source' is required")
    if payload.get("severity") not in SEVERITIES:
        errors.append("'payload.severity' must be one of critical, error, warning, info")
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00"))
        except ValueError:
            errors.append("'payload.timestamp' is not ISO 8601")
    for key in ("component", "group", "class"):
        if key in payload and not isinstance(payload[key], str):
            errors.append(f"'payload.{key}' must be a string")
    if "custom_details" in payload and not isinstance(payload["custom_details"], (dict, str)):
        errors.append("'payload.custom_details' must be an object")
    return errors


class PagerDutyEvents:
    """``respond`` for :class:`tests.sinks.receivers.Receiver`: validates, then accepts with 202."""

    def __init__(self):
        self.incidents: dict[str, str] = {}  # dedup_key -> triggered | acknowledged | resolved
        self.lock = threading.Lock()

    def __call__(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        if request.path != "/v2/enqueue":
            return 404, JSON_HEADERS, b'{"status":"not found"}'
        errors, event = _errors(request)
        if errors:
            body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
            return 400, JSON_HEADERS, json.dumps(body).encode()
        dedup = event.get("dedup_key") or uuid.uuid4().hex
        with self.lock:
            state = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}
            if event["event_action"] == "trigger" or dedup in self.incidents:
                self.incidents[dedup] = state[event["event_action"]]
        body = {"status": "success", "message": "Event processed", "dedup_key": dedup}
        return 202, JSON_HEADERS, json.dumps(body).encode()
