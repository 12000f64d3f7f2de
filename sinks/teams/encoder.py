"""Alerts -> Microsoft Teams Adaptive Card messages, one webhook POST per alert.

The body is the message a Teams webhook (Workflows "When a Teams webhook
request is received", or a legacy Incoming Webhook) takes::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
                      "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                  "type": "AdaptiveCard", "version": "1.4",
                                  "body": [TextBlock title, FactSet, TextBlock description],
                                  "actions": [{"type": "Action.OpenUrl", "title": "View Dashboard", "url": ...}]}}]}

The title is ``[CRITICAL] latency`` (``... (still firing)`` for a repeat,
``Resolved: latency`` for a resolve), coloured by severity; the facts are
Alert, Severity, Model, Environment, Value, Threshold and the times. Teams
rejects a message over 28 KB, so every message is cut to
``max_message_bytes`` of UTF-8 JSON: short texts are capped at
:data:`SHORT_TEXT_CHARS` characters, then the description is cut (with an
ellipsis) to the longest prefix that fits, and if even no description does
not fit the dashboard action is dropped. An alert is never rejected for size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from airis_mon.schema import Alert
from sinks.delivery import HttpRequest, idempotency_key
from sinks.delivery.links import format_duration, format_utc, format_value, render_link
from sinks.delivery.templates import render_template
from sinks.teams.config import DEFAULT_TEMPLATES, MAX_MESSAGE_BYTES, TeamsConfig, TeamsTemplates

__all__ = ["IDEMPOTENCY_HEADER", "SHORT_TEXT_CHARS", "TeamsEncoder", "build_message", "encode_message"]

IDEMPOTENCY_HEADER = "X-Airis-Idempotency-Key"
#: Cap of the title and of each fact value, in characters: with at most 9 of
#: them (6 bytes a character at worst, as JSON escapes) a card stays under 16 KB.
SHORT_TEXT_CHARS = 256
ELLIPSIS = "…"

_COLOR = {"critical": "attention", "high": "attention", "error": "attention", "warning": "warning", "info": "accent"}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _facts(alert: Alert) -> list[tuple[str, str]]:
    facts = [("Alert", alert.name), ("Severity", alert.severity.upper()), ("Model", alert.model_id or "-"),
             ("Environment", alert.environment or "-"), ("Value", format_value(alert.current_value)),
             ("Threshold", format_value(alert.threshold))]  # fmt: skip
    if alert.notification == "resolve":
        facts += [("Resolved", format_utc(alert.resolved_at_ms or alert.timestamp_ms)),
                  ("Duration", format_duration(alert.duration_s))]  # fmt: skip
    elif alert.notification == "repeat":
        facts += [("Firing since", format_utc(alert.starts_at_ms)), ("Duration", format_duration(alert.duration_s))]
    else:
        facts.append(("Triggered", format_utc(alert.timestamp_ms)))
    return facts


def build_message(alert: Alert, description: str, dashboard: str | None, title: str | None = None) -> dict:
    """The webhook body for ``alert`` with ``description``, ``dashboard`` (a URL) and ``title`` as given,
    uncut (``title`` None: the default title template)."""
    if title is None:
        title = render_template(DEFAULT_TEMPLATES["title"], alert)
    color = "good" if alert.notification == "resolve" else _COLOR.get(alert.severity, "default")
    body: list[dict] = [
        {"type": "TextBlock", "text": _clip(title, SHORT_TEXT_CHARS), "size": "Large", "weight": "Bolder",
         "color": color, "wrap": True},
        {"type": "FactSet", "facts": [{"title": name, "value": _clip(value, SHORT_TEXT_CHARS)}
                                      for name, value in _facts(alert)]},
    ]  # fmt: skip
    if description:
        body.append({"type": "TextBlock", "text": description, "wrap": True})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if dashboard:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "View Dashboard", "url": dashboard}]
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def _dumps(message: dict) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_message(
    alert: Alert,
    dashboard_url: str | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
    templates: TeamsTemplates | None = None,
) -> bytes:
    """The UTF-8 JSON body for ``alert``, at most ``max_bytes`` long (see the module docstring); text from
    ``templates`` (default: the built-in layout)."""
    templates = templates or TeamsTemplates()
    title = render_template(templates.title, alert)
    description = render_template(templates.text, alert)
    dashboard = render_link(dashboard_url, alert) if dashboard_url else None

    def _cut(alert: Alert, description: str, kept: int, link: str | None) -> bytes:
        return _dumps(build_message(alert, description[:kept] + ELLIPSIS if kept else "", link, title))

    whole = _dumps(build_message(alert, description, dashboard, title))
    if len(whole) <= max_bytes:
        return whole
    for link in (dashboard, None) if dashboard else (None,):
        if len(_cut(alert, description, 0, link)) > max_bytes:
            continue
        low, high = 0, len(description) - 1  # the longest prefix that fits; prefix `low` always does
        while low < high:
            middle = (low + high + 1) // 2
            if len(_cut(alert, description, middle, link)) <= max_bytes:
                low = middle
            else:
                high = middle - 1
        return _cut(alert, description, low, link)
    return _cut(alert, description, 0, None)  # unreachable: SHORT_TEXT_CHARS keeps this under 16,000 bytes


class TeamsEncoder:
    """One POST per alert to the Teams webhook (pure: no I/O, picklable)."""

    batch_size = 1

    def __init__(self, config: TeamsConfig):
        if not isinstance(config, TeamsConfig):
            raise ValueError(f"TeamsEncoder needs a TeamsConfig, not {type(config).__name__}")
        self._config = config

    def encode(self, alerts: Sequence[Alert]) -> list[tuple[HttpRequest, list[Alert]]]:
        config = self._config
        requests = []
        for alert in alerts:
            body = encode_message(alert, config.dashboard_url, config.max_message_bytes, config.templates)
            headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: idempotency_key(config.name, alert)}
            requests.append((HttpRequest("POST", config.webhook_url.get_secret_value(), body, headers), [alert]))
        return requests
