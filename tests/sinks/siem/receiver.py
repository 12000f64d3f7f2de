"""Loopback SIEM endpoints for sink tests: a signed HTTP collector and Splunk HEC.

:class:`SignedCollector` is the receiving side of the documented ``mode:
http`` contract, written independently of the sink (it does not import it):
``Authorization: Bearer <token>`` (else 401), ``X-Timestamp`` within 300 s of
its clock (else 401), ``X-Signature`` = ``sha256=`` + hex HMAC-SHA256(secret,
``timestamp + "." + raw body``) (else 401), a JSON object body with exactly
the enriched-event fields (else 400); answers 200 ``{"accepted": true}``.

:class:`SplunkHec` enforces Splunk's HTTP Event Collector rules for ``POST
/services/collector/event``: ``Authorization: Splunk <token>`` (missing: 401
code 2 "Token is required"; another scheme: 401 code 3 "Invalid
authorization"; unknown token: 403 code 4 "Invalid token"); a body of one or
more JSON objects concatenated, whitespace allowed between them (empty: 400
code 5 "No data"; not JSON objects: 400 code 6 "Invalid data format"); each
object needs ``event`` (missing: 400 code 12, blank: 400 code 13), ``time``
numeric epoch seconds when present (else 400 code 6), ``index`` allowed for the
token when present (else 400 code 7 "Incorrect index"). Answers 200
``{"text": "Success", "code": 0}``. :func:`then` puts canned answers such as
503 code 9 "Server is busy" in front.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable

from tests.sinks.receivers import Recorded

JSON_HEADERS = {"Content-Type": "application/json"}
EVENT_FIELDS = {"event_type", "event_id", "timestamp", "severity", "source", "alert", "ai_model_id",
                "monitoring_context", "correlation_id", "status", "notification"}  # fmt: skip
HEC_PATH = "/services/collector/event"


def _answer(status: int, body: dict) -> tuple[int, dict[str, str], bytes]:
    return status, JSON_HEADERS, json.dumps(body).encode()


class SignedCollector:
    """``respond`` for a generic SIEM collector that verifies the Bearer token and HMAC signature."""

    def __init__(self, token: str, secret: str, clock: Callable[[], float] = time.time, tolerance_s: int = 300):
        self._token, self._secret, self._clock, self._tolerance_s = token, secret, clock, tolerance_s
        self.events: dict[str, dict] = {}  # event_id -> event (a replay overwrites, never duplicates)
        self.lock = threading.Lock()

    def verify(self, timestamp: str, body: bytes, signature: str) -> bool:
        message = timestamp.encode() + b"." + body
        expected = "sha256=" + hmac.new(self._secret.encode(), message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    def __call__(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        if request.method != "POST":
            return _answer(405, {"error": "method not allowed"})
        if not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {self._token}"):
            return _answer(401, {"error": "invalid token"})
        timestamp = request.headers.get("x-timestamp", "")
        if not timestamp.isdigit() or abs(self._clock() - int(timestamp)) > self._tolerance_s:
            return _answer(401, {"error": "stale or missing X-Timestamp"})
        if not self.verify(timestamp, request.body, request.headers.get("x-signature", "")):
            return _answer(401, {"error": "invalid signature"})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _answer(415, {"error": "expected application/json"})
        try:
            event = json.loads(request.body)
        except ValueError:
            return _answer(400, {"error": "body is not JSON"})
        if not isinstance(event, dict) or set(event) != EVENT_FIELDS or event["event_type"] != "ai_model_alert":
            return _answer(400, {"error": "not an ai_model_alert event"})
        if request.headers.get("idempotency-key") != event["event_id"]:
            return _answer(400, {"error": "Idempotency-Key differs from event_id"})
        with self.lock:
            self.events[event["event_id"]] = event
        return _answer(200, {"accepted": True})


def parse_concatenated(body: bytes) -> list:
    """Split a HEC batch body (JSON values back to back, whitespace allowed) into values."""
    text, decoder, values, position = body.decode("utf-8"), json.JSONDecoder(), [], 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return values
        value, position = decoder.raw_decode(text, position)
        values.append(value)


class SplunkHec:
    """``respond`` for Splunk HTTP Event Collector's ``/services/collector/event``."""

    def __init__(self, token: str, indexes: tuple[str, ...] = ("main",)):
        self._token, self._indexes = token, indexes
        self.events: list[dict] = []
        self.batches: list[int] = []  # events per accepted request
        self.lock = threading.Lock()

    def __call__(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        if request.path != HEC_PATH:
            return _answer(404, {"text": "The requested URL was not found on this server.", "code": 404})
        authorization = request.headers.get("authorization")
        if not authorization:
            return _answer(401, {"text": "Token is required", "code": 2})
        scheme, _, token = authorization.partition(" ")
        if scheme != "Splunk" or not token:
            return _answer(401, {"text": "Invalid authorization", "code": 3})
        if not hmac.compare_digest(token, self._token):
            return _answer(403, {"text": "Invalid token", "code": 4})
        if not request.body.strip():
            return _answer(400, {"text": "No data", "code": 5})
        try:
            events = parse_concatenated(request.body)
        except (ValueError, UnicodeDecodeError):
            return _answer(400, {"text": "Invalid data format", "code": 6})
        for number, event in enumerate(events):
            problem = self._problem(event)
            if problem:
                return _answer(400, {**problem, "invalid-event-number": number})
        with self.lock:
            self.events += events
            self.batches.append(len(events))
        return _answer(200, {"text": "Success", "code": 0})

    def _problem(self, event) -> dict | None:
        if not isinstance(event, dict):
            return {"text": "Invalid data format", "code": 6}
        if "event" not in event:
            return {"text": "Event field is required", "code": 12}
        if event["event"] in ("", None, {}):
            return {"text": "Event field cannot be blank", "code": 13}
        timestamp = event.get("time", 0)
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
            return {"text": "Invalid data format", "code": 6}
        if "index" in event and event["index"] not in self._indexes:
            return {"text": "Incorrect index", "code": 7}
        for key in ("host", "source", "sourcetype"):
            if key in event and not isinstance(event[key], str):
                return {"text": "Invalid data format", "code": 6}
        return None


SERVER_BUSY = _answer(503, {"text": "Server is busy", "code": 9})
