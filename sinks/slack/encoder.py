"""Alerts -> Slack Block Kit messages, one incoming-webhook POST per alert.

A trigger or repeat::

    header    ":rotating_light: [CRITICAL] latency"                      (plain_text)
    section   fields *Alert:* *Severity:* *Model:* *Environment:* *Value:* *Threshold:*
    section   the description (the summary when there is none)
    context   "Triggered 2026-11-28 09:32:00 UTC"   (repeat: "Still firing at ... since ...")
    actions   [View Dashboard] (url; only with dashboard_url)
              [Acknowledge] (action_id ``ack_alert_<alert id>``, value = alert id; url only with acknowledge_url)

A resolve: ``":white_check_mark: Resolved: latency"``, fields with the peak
value and the duration, the description, ``"Resolved ... UTC after 2m 0s"`` and
View Dashboard. Every message has a top-level ``text``, the notification
fallback.

Slack rejects a message over its Block Kit limits (HTTP 400
``invalid_blocks``), so every text is cut to its limit here, with an
ellipsis, and an alert is never lost for its size: header ``plain_text`` 150
characters, section text 3000, 10 fields of 2000, 50 blocks, button text 75,
button ``value`` 2000, context text 3000. Lengths are counted in UTF-16 code
units, which is never fewer than characters, so a cut text fits however Slack
counts. User text is escaped for ``mrkdwn`` (``&``, ``<``, ``>``) before it is
measured. A button ``url`` over 3000 characters is dropped, not cut: a cut URL
is a broken link (a Dashboard button without its URL is dropped).

The Acknowledge button's ``action_id`` is ``ack_alert_<alert id>`` (the product
spec's); clicking it sends Slack's interactivity request (``block_actions``) to
the console's ``/slack/interactivity`` (:mod:`console.slack_interactivity`).
Slack limits an ``action_id`` to 255 characters: episode ids are 24 hex
characters, and an alert whose id would not fit gets no Acknowledge button
rather than a cut id. Only trigger, repeat and resolve are encoded: an
``acknowledge`` notification (PagerDuty's) is refused with a ``ValueError``.

Slack incoming webhooks have no idempotency header; ``X-Airis-Idempotency-Key``
is sent anyway (harmless, and visible to a proxy that deduplicates).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from airis_mon.schema import Alert
from sinks.delivery import HttpRequest, idempotency_key
from sinks.delivery.context import owner_line, what_changed
from sinks.delivery.links import format_duration, format_utc, format_value, render_link
from sinks.delivery.templates import render_template
from sinks.slack.config import SlackConfig, SlackTemplates

__all__ = [
    "ACK_ACTION_PREFIX",
    "IDEMPOTENCY_HEADER",
    "LIMITS",
    "NOTIFICATIONS",
    "SlackEncoder",
    "ack_action_id",
    "build_message",
    "fit",
]

IDEMPOTENCY_HEADER = "X-Airis-Idempotency-Key"

#: Slack Block Kit limits (docs.slack.dev/reference/block-kit), in characters.
LIMITS = {
    "blocks": 50,
    "header_text": 150,
    "section_text": 3000,
    "fields": 10,
    "field_text": 2000,
    "context_text": 3000,
    "button_text": 75,
    "button_url": 3000,
    "button_value": 2000,
    "action_id": 255,
    "fallback_text": 3000,  # ours: Slack only truncates text past 40,000; a notification needs far less
}

ELLIPSIS = "…"

#: The Acknowledge button's ``action_id`` is this prefix and the alert (episode) id.
ACK_ACTION_PREFIX = "ack_alert_"

#: The notifications a Slack message is built for.
NOTIFICATIONS = ("trigger", "repeat", "resolve")


def ack_action_id(alert_id: str) -> str:
    """``ack_alert_<alert id>``: the Acknowledge button's ``action_id`` (the product spec's)."""
    return ACK_ACTION_PREFIX + alert_id


# Severity emoji: in the default header template (sinks.slack.config.DEFAULT_TEMPLATES).


def _units(text: str) -> int:
    """Length in UTF-16 code units (what JavaScript counts; >= characters)."""
    return len(text.encode("utf-16-le")) // 2


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int, mrkdwn: bool = False) -> str:
    """``text`` (escaped for mrkdwn if asked) cut to at most ``limit`` UTF-16
    units with a trailing ellipsis; never splits a character or an escape."""
    whole = _escape(text) if mrkdwn else text
    if _units(whole) <= limit:
        return whole
    budget, kept, used = limit - _units(ELLIPSIS), [], 0
    for char in text:
        piece = _escape(char) if mrkdwn else char
        size = _units(piece)
        if used + size > budget:
            break
        kept.append(piece)
        used += size
    return "".join(kept) + ELLIPSIS


def _plain(text: str, limit: int) -> dict:
    return {"type": "plain_text", "text": fit(text, limit), "emoji": True}


def _field(label: str, value: str) -> dict:
    prefix = f"*{label}:*\n"
    return {"type": "mrkdwn", "text": prefix + fit(value or "-", LIMITS["field_text"] - _units(prefix), mrkdwn=True)}


def _button(text: str, action_id: str, url: str | None = None, value: str | None = None) -> dict:
    button = {"type": "button", "action_id": action_id, "text": _plain(text, LIMITS["button_text"])}
    if url is not None:
        button["url"] = url
    if value is not None:
        button["value"] = fit(value, LIMITS["button_value"])
    return button


def _link(template: str | None, alert: Alert) -> str | None:
    if template is None:
        return None
    url = render_link(template, alert)
    return url if _units(url) <= LIMITS["button_url"] else None


def _context(alert: Alert) -> str:
    if alert.notification == "resolve":
        resolved_at = format_utc(alert.resolved_at_ms or alert.timestamp_ms)
        return f"Resolved {resolved_at} after {format_duration(alert.duration_s)}"
    if alert.notification == "repeat":
        return (
            f"Still firing at {format_utc(alert.timestamp_ms)} · since {format_utc(alert.starts_at_ms)} "
            f"({format_duration(alert.duration_s)})"
        )
    return f"Triggered {format_utc(alert.timestamp_ms)}"


def build_message(
    alert: Alert,
    dashboard_url: str | None = None,
    acknowledge_url: str | None = None,
    templates: SlackTemplates | None = None,
) -> dict:
    """The incoming-webhook payload of one alert; link templates as in :mod:`sinks.delivery.links`, text
    templates as in :mod:`sinks.delivery.templates` (default: the built-in layout)."""
    if alert.notification not in NOTIFICATIONS:
        raise ValueError(
            f"Slack messages are built for {', '.join(NOTIFICATIONS)}, not notification {alert.notification!r}"
        )
    templates = templates or SlackTemplates()
    severity = alert.severity.upper()
    resolved = alert.notification == "resolve"
    title = render_template(templates.header, alert)
    fallback = render_template(templates.text, alert)
    if resolved:
        numbers = [("Peak value", format_value(alert.peak_value)), ("Duration", format_duration(alert.duration_s))]
    else:
        numbers = [("Value", format_value(alert.current_value)), ("Threshold", format_value(alert.threshold))]
    fields = [("Alert", alert.name), ("Severity", severity), ("Model", alert.model_id),
              ("Environment", alert.environment), *numbers]  # fmt: skip

    blocks: list[dict] = [
        {"type": "header", "text": _plain(title, LIMITS["header_text"])},
        {"type": "section", "fields": [_field(label, value) for label, value in fields[: LIMITS["fields"]]]},
    ]
    description = render_template(templates.body, alert)
    if description:
        text = fit(description, LIMITS["section_text"], mrkdwn=True)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    changed, owner = what_changed(alert), owner_line(alert)
    if changed or owner:
        lines = ([f"*What changed:* {changed}"] if changed else []) + ([f"*Owner:* {owner}"] if owner else [])
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": fit("\n".join(lines), LIMITS["section_text"], mrkdwn=True)},
            }
        )
    context = fit(_context(alert), LIMITS["context_text"], mrkdwn=True)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})

    buttons = []
    dashboard = _link(dashboard_url, alert)
    if dashboard is not None:
        buttons.append(_button("View Dashboard", "view_dashboard", url=dashboard))
    action_id = ack_action_id(alert.id)
    if not resolved and _units(action_id) <= LIMITS["action_id"]:
        buttons.append(_button("Acknowledge", action_id, url=_link(acknowledge_url, alert), value=alert.id))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})

    return {"text": fit(fallback, LIMITS["fallback_text"], mrkdwn=True), "blocks": blocks[: LIMITS["blocks"]]}


class SlackEncoder:
    """One POST per alert to the incoming webhook (pure: no I/O, picklable)."""

    batch_size = 1

    def __init__(self, config: SlackConfig):
        if not isinstance(config, SlackConfig):
            raise ValueError(f"SlackEncoder needs a SlackConfig, not {type(config).__name__}")
        self._config = config

    def encode(self, alerts: Sequence[Alert]) -> list[tuple[HttpRequest, list[Alert]]]:
        config = self._config
        requests = []
        for alert in alerts:
            message = build_message(alert, config.dashboard_url, config.acknowledge_url, config.templates)
            body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                IDEMPOTENCY_HEADER: idempotency_key(config.name, alert),
            }
            url = config.webhook_url.get_secret_value()
            requests.append((HttpRequest("POST", url, body, headers), [alert]))
        return requests
