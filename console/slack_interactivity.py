"""Slack's interactivity requests: the Acknowledge button of an alert message (``POST /slack/interactivity``).

Slack posts ``application/x-www-form-urlencoded`` with one field, ``payload``, a JSON ``block_actions``
object, signed with the app's signing secret ("Verifying requests from Slack"):

- ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<X-Slack-Request-Timestamp>:<raw body>">``, compared in
  constant time; a missing or wrong signature is **401**;
- a timestamp more than ``max_age_s`` (default 300 s, Slack's five minutes) from now, either way, is
  refused as a possible replay, also **401**: the request is not authenticated (its signature cannot be
  trusted to be fresh), and Slack's docs treat it as a failed verification, not as a permission question
  (403 would mean "authenticated but not allowed");
- a body over :data:`MAX_BODY_BYTES` (64 KiB) is **413** before anything is parsed; a malformed payload is
  **400** naming the field.

The Acknowledge button's ``action_id`` is ``ack_alert_<alert id>`` (the product spec's; ``value`` is the
id too, checked equal). Another action (the View Dashboard link button also sends one) is answered 200 and
ignored. An acknowledgement (:meth:`console.acknowledgements.Acknowledger.acknowledge`, by
``slack:<user name or id>``, via ``slack``) is recorded **before** the 200, so a 200 means it is durable;
the message update then happens in a background thread, because it goes to Slack over the network with
retries and ``Retry-After`` waits (:class:`sinks.delivery.http.HttpDeliverer`) that could outlast the 3 s
Slack allows for the answer.

The update POSTs ``{"replace_original": true, "text", "blocks"}`` to the payload's ``response_url``: the
original message's blocks without the Acknowledge button (an actions block left empty is dropped) and a
context block "Acknowledged by <@USERID> at 2026-12-02 14:03:00 UTC". The ``response_url`` is a credential
(anyone holding it can post into the channel): it is only used when it is ``https://`` on a host listed in
``console.slack.response_url_hosts`` (default ``hooks.slack.com``), or ``http://`` on a *loopback address*
that is listed (tests), without user info; otherwise it is refused. It is never logged, and neither is the
signing secret. The outcome is a ``slack_update`` delivery line in the acknowledgement store.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from airis_mon.console_config import SlackInteractivityConfig
from console.acknowledgements import Acknowledgement, Acknowledger
from sinks.delivery import DeliveryConfig, HttpDeliverer, HttpRequest, RetryConfig
from sinks.delivery.links import format_utc

__all__ = [
    "ACK_ACTION_PREFIX",
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SlackAcknowledge",
    "SlackInteractivity",
    "SlackRequestError",
    "acknowledged_message",
    "allowed_response_url",
    "parse_acknowledge",
    "sign",
    "verify_slack_signature",
]

LOG = logging.getLogger("airis_mon.console.slack")

ACK_ACTION_PREFIX = "ack_alert_"  # sinks.slack.encoder.ACK_ACTION_PREFIX
MAX_BODY_BYTES = 64 * 1024
SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
_VERSION = "v0"
#: the message update: a few quick attempts (a response_url allows 5 uses in 30 minutes)
UPDATE_DELIVERY = DeliveryConfig(
    retry=RetryConfig(max_attempts=3, initial_backoff_s=0.5, max_backoff_s=5, max_total_s=30), timeout_s=5
)


class SlackRequestError(Exception):
    """A request refused with HTTP ``status``; ``reason`` is safe to answer and log (no secrets, no URLs)."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    """``v0=<hex HMAC-SHA256>`` of ``v0:{timestamp}:{body}`` (what Slack sends in ``X-Slack-Signature``)."""
    base = f"{_VERSION}:{timestamp}:".encode() + body
    return f"{_VERSION}=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def verify_slack_signature(
    signing_secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    now_s: float,
    max_age_s: int = 300,
) -> None:
    """Raise :class:`SlackRequestError` (401) unless ``signature`` is Slack's for ``timestamp`` (epoch s, the
    ``X-Slack-Request-Timestamp`` header) and the raw ``body``, and the timestamp is within ``max_age_s`` of
    ``now_s`` (epoch s) either way."""
    if not signature:
        raise SlackRequestError(401, f"{SIGNATURE_HEADER} is missing")
    if not timestamp:
        raise SlackRequestError(401, f"{TIMESTAMP_HEADER} is missing")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise SlackRequestError(401, f"{TIMESTAMP_HEADER} is not a Unix time in seconds")
    if abs(now_s - int(timestamp)) > max_age_s:
        raise SlackRequestError(401, f"{TIMESTAMP_HEADER} is more than {max_age_s} s from now (stale or replayed)")
    expected = sign(signing_secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise SlackRequestError(401, f"{SIGNATURE_HEADER} does not match the request")


@dataclass(frozen=True)
class SlackAcknowledge:
    """A click on an alert's Acknowledge button (``message``: the message as Slack shows it, if sent)."""

    alert_id: str
    user_id: str
    user_name: str
    team_id: str
    channel_id: str
    response_url: str
    message: dict | None


def _string(mapping: dict, key: str, where: str, required: bool = True) -> str:
    value = mapping.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise SlackRequestError(400, f"payload field {where}{key} is missing or not a string")
    return value


def _object(mapping: dict, key: str, required: bool = True) -> dict:
    value = mapping.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise SlackRequestError(400, f"payload field {key} is missing or not an object")
    return value


def parse_acknowledge(body: bytes) -> SlackAcknowledge | None:
    """The Acknowledge click in a form-encoded interactivity request, or None for another action (answer 200
    and ignore it). Raises :class:`SlackRequestError` (400) naming the field that is missing or malformed."""
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as error:
        reason = f"body is not UTF-8 application/x-www-form-urlencoded ({type(error).__name__})"
        raise SlackRequestError(400, reason) from None
    values = form.get("payload")
    if not values or len(values) != 1:
        raise SlackRequestError(400, "form field payload is missing (or repeated)")
    try:
        payload = json.loads(values[0])
    except ValueError:
        raise SlackRequestError(400, "form field payload is not JSON") from None
    if not isinstance(payload, dict):
        raise SlackRequestError(400, "form field payload is not a JSON object")
    if payload.get("type") != "block_actions":
        raise SlackRequestError(400, f"payload field type must be block_actions, not {str(payload.get('type'))[:40]!r}")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not all(isinstance(a, dict) for a in actions):
        raise SlackRequestError(400, "payload field actions is missing or not a list of objects")
    acks = [a for a in actions if isinstance(a.get("action_id"), str) and a["action_id"].startswith(ACK_ACTION_PREFIX)]
    if not acks:
        return None  # View Dashboard and anything else: nothing to do
    action = acks[0]
    alert_id = action["action_id"][len(ACK_ACTION_PREFIX) :]
    if not alert_id:
        raise SlackRequestError(400, "payload field actions[].action_id names no alert id")
    value = action.get("value")
    if value is not None and value != alert_id:
        raise SlackRequestError(400, "payload field actions[].value differs from the alert id in its action_id")
    user = _object(payload, "user")
    team = _object(payload, "team", required=False)
    channel = _object(payload, "channel", required=False)
    container = _object(payload, "container", required=False)
    message = payload.get("message")
    if message is not None and not isinstance(message, dict):
        raise SlackRequestError(400, "payload field message is not an object")
    return SlackAcknowledge(
        alert_id=alert_id,
        user_id=_string(user, "id", "user."),
        user_name=_string(user, "username", "user.", required=False) or _string(user, "name", "user.", required=False),
        team_id=_string(team, "id", "team.", required=False) or _string(user, "team_id", "user.", required=False),
        channel_id=_string(channel, "id", "channel.", required=False)
        or _string(container, "channel_id", "container.", required=False),
        response_url=_string(payload, "response_url", ""),
        message=message,
    )


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def acknowledged_message(message: dict | None, note: str) -> dict:
    """The response_url body that replaces ``message``: its blocks without the Acknowledge button (an
    actions block left empty is dropped; Slack's ``block_id``s are dropped so it assigns new ones) and a
    context block with ``note`` (mrkdwn) after the rest. Without the original message it is a new
    (ephemeral) message with ``note`` only."""
    if not message:
        return {"replace_original": False, "text": note}
    blocks = []
    for block in copy.deepcopy(message.get("blocks") or []):
        if not isinstance(block, dict):
            continue
        block.pop("block_id", None)
        if block.get("type") == "actions":
            elements = [e for e in block.get("elements", [])
                        if not str(e.get("action_id", "")).startswith(ACK_ACTION_PREFIX)]  # fmt: skip
            if not elements:
                continue
            block["elements"] = elements
        blocks.append(block)
    blocks = [*blocks[:49], {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}]
    return {"replace_original": True, "text": message.get("text") or note, "blocks": blocks}


def allowed_response_url(url: str, hosts: list[str]) -> bool:
    """Whether a message update may be posted to ``url``: ``https://`` on a listed host (port 443), or
    ``http://`` on a listed loopback address (any port); never with user info."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return False
    listed = {h.lower() for h in hosts}
    if not host or host not in listed or parts.username is not None or parts.password is not None:
        return False
    if parts.scheme == "https":
        return port in (None, 443)
    if parts.scheme == "http":
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False  # a name, even "localhost", could resolve anywhere
    return False


class SlackInteractivity:
    """``handle(body, headers)`` for ``POST /slack/interactivity`` (see the module docstring).

    ``clock``: epoch seconds. ``deliverer``: the message updates' delivery (default: :data:`UPDATE_DELIVERY`).
    Updates run in daemon threads; :meth:`wait` joins them (tests, shutdown)."""

    def __init__(
        self,
        config: SlackInteractivityConfig,
        acknowledger: Acknowledger,
        clock=time.time,
        deliverer: HttpDeliverer | None = None,
    ):
        self._config = config
        self._acknowledger = acknowledger
        self._clock = clock
        self._deliverer = deliverer or HttpDeliverer(UPDATE_DELIVERY)
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()

    def handle(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict]:
        """Verify, parse, acknowledge; answer ``(status, JSON body)``: 200 ``{}`` (the message update follows),
        or the refusal's status and ``{"error": reason}``."""
        try:
            return self._handle(body, headers)
        except SlackRequestError as error:
            LOG.warning("Slack interactivity request refused: %s", error.reason)
            return error.status, {"error": error.reason}

    def _handle(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict]:
        if len(body) > MAX_BODY_BYTES:
            raise SlackRequestError(413, f"body is larger than {MAX_BODY_BYTES} bytes")
        lower = {k.lower(): v for k, v in headers.items()}
        verify_slack_signature(
            self._config.signing_secret.get_secret_value(),
            lower.get(TIMESTAMP_HEADER.lower()),
            body,
            lower.get(SIGNATURE_HEADER.lower()),
            self._clock(),
            self._config.max_age_s,
        )
        click = parse_acknowledge(body)
        if click is None:
            return 200, {}
        by = f"slack:{click.user_name or click.user_id}"
        try:
            result = self._acknowledger.acknowledge(click.alert_id, by, "slack")
        except ValueError as error:
            raise SlackRequestError(400, f"payload: {error}") from None
        if not result.found:
            note = f"AIRIS-MON does not know alert {_mrkdwn(click.alert_id)}; nothing was acknowledged."
            self._start(self._update, click, {"replace_original": False, "text": note}, False)
            return 200, {}
        if result.first:
            update = acknowledged_message(click.message, self._note(f"<@{_mrkdwn(click.user_id)}>", result.ack))
        else:
            update = acknowledged_message(click.message, self._note(_mrkdwn(result.ack.by), result.ack))
        self._start(self._update, click, update, True)
        return 200, {}

    @staticmethod
    def _note(who: str, ack: Acknowledgement) -> str:
        return f"Acknowledged by {who} at {format_utc(ack.at_ms)}"

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name="slack-update", daemon=True)
        with self._threads_lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Join the pending message updates; True when none is left running after ``timeout_s`` (s)."""
        deadline = time.monotonic() + timeout_s
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _update(self, click: SlackAcknowledge, update: dict, record: bool) -> None:
        """Post ``update`` to the click's response_url; record the outcome (when ``record``: a known alert)."""
        store = self._acknowledger.store

        def done(outcome: str, status: int | None, attempts: int, retries: int, reason: str) -> None:
            if record:
                at_ms = int(self._clock() * 1000)
                store.record_delivery(click.alert_id, "slack", "slack_update", outcome, status, attempts, retries,
                                      reason, at_ms)  # fmt: skip

        if not allowed_response_url(click.response_url, self._config.response_url_hosts):
            reason = "response_url refused: not https on a host in console.slack.response_url_hosts"
            LOG.warning("Slack message update for alert %s not sent: %s", click.alert_id, reason)
            done("dead_lettered", None, 0, 0, reason)
            return
        body = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        request = HttpRequest("POST", click.response_url, body, {"Content-Type": "application/json; charset=utf-8"},
                              label="response_url")  # fmt: skip
        try:
            result = self._deliverer.deliver(request)
        except Exception as error:  # never let a thread die silently; the reason holds no URL
            LOG.warning("Slack message update for alert %s failed: %s", click.alert_id, type(error).__name__)
            done("dead_lettered", None, 1, 0, type(error).__name__)
            return
        outcome = "delivered" if result.delivered else "dead_lettered"
        if not result.delivered:
            LOG.warning("Slack message update for alert %s failed: %s", click.alert_id, result.reason)
        done(outcome, result.status, result.attempts, result.retries, result.reason)
