"""One alert notification -> one email (plain text + an HTML alternative). Pure, no I/O.

Subject: ``"[AIRIS-MON] [CRITICAL] latency (fraud, prod) — triggered"`` (``repeated``,
``resolved``); the part in parentheses is the alert's model and environment when known.

Threading: the trigger's ``Message-ID`` is derived from the sink's idempotency
key of the episode's trigger (computed from the alert id and ``starts_at_ms``,
which every notification of the episode carries). Repeats and the resolve get
their own ``Message-ID`` (their idempotency key) and point at the trigger with
``In-Reply-To`` and ``References``, so mail clients that thread on those
headers show one conversation per episode. Retries and replays produce the
same ids, so a receiving system can drop duplicates.
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime

from airis_mon.schema import Alert
from sinks.delivery.transform import idempotency_key
from sinks.email.config import EmailConfig, bare_address

__all__ = ["build_message", "message_id", "subject", "thread_root_id"]

_WORDS = {"trigger": "triggered", "repeat": "repeated", "resolve": "resolved"}
_MAX_NAME_CHARS = 200


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _domain(config: EmailConfig) -> str:
    return bare_address(config.from_address).rpartition("@")[2]


def message_id(config: EmailConfig, alert: Alert) -> str:
    """``<key@sender-domain>`` from the sink's idempotency key of this notification (the trigger: of its episode)."""
    if alert.notification == "trigger":
        return thread_root_id(config, alert)
    return f"<{idempotency_key(config.name, alert)}@{_domain(config)}>"


def thread_root_id(config: EmailConfig, alert: Alert) -> str:
    """The ``Message-ID`` of the trigger of ``alert``'s episode, from any notification of the episode."""
    trigger = alert._replace(notification="trigger", timestamp_ms=alert.starts_at_ms)
    return f"<{idempotency_key(config.name, trigger)}@{_domain(config)}>"


def subject(config: EmailConfig, alert: Alert) -> str:
    context = ", ".join(part for part in (alert.model_id, alert.environment) if part)
    name = _one_line(alert.name)[:_MAX_NAME_CHARS] + (f" ({_one_line(context)})" if context else "")
    return f"{config.subject_prefix} [{alert.severity.upper()}] {name} — {_WORDS[alert.notification]}".strip()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float) -> str:
    return "unknown" if isinstance(value, float) and not math.isfinite(value) else f"{value:g}"


def _facts(alert: Alert) -> list[tuple[str, str]]:
    labels = json.loads(alert.labels or "{}")
    facts = [
        ("Status", alert.status),
        ("Severity", alert.severity),
        ("Rule", f"{alert.rule} ({alert.alert_type})"),
        ("Metric", alert.metric),
        ("Current value", _number(alert.current_value)),
        ("Threshold", _number(alert.threshold)),
        ("Peak value", _number(alert.peak_value)),
        ("Source", alert.source),
        ("Model", alert.model_id),
        ("Environment", alert.environment),
        ("Started", _iso(alert.starts_at_ms)),
        ("Resolved", _iso(alert.resolved_at_ms) if alert.resolved_at_ms else ""),
        ("Duration", f"{alert.duration_s:g} s"),
        ("Notified at", _iso(alert.timestamp_ms)),
        ("Labels", ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))),
        ("Alert id", alert.id),
    ]
    return [(key, value) for key, value in facts if value]


def _text(alert: Alert, title: str) -> str:
    lines = [title, "", alert.summary]
    if alert.description and alert.description != alert.summary:
        lines += ["", alert.description]
    lines.append("")
    width = max(len(key) for key, _ in _facts(alert)) + 1
    lines += [f"{key + ':':<{width}} {value}" for key, value in _facts(alert)]
    return "\n".join(lines) + "\n"


def _html(alert: Alert, title: str) -> str:
    rows = "".join(
        f'<tr><th align="left">{html.escape(k)}</th><td>{html.escape(v)}</td></tr>' for k, v in _facts(alert)
    )
    description = (
        f"<p>{html.escape(alert.description)}</p>" if alert.description and alert.description != alert.summary else ""
    )
    return (
        f"<html><body><h2>{html.escape(title)}</h2><p><strong>{html.escape(alert.summary)}</strong></p>"
        f"{description}<table>{rows}</table></body></html>\n"
    )


def build_message(config: EmailConfig, alert: Alert, now_s: float) -> EmailMessage:
    """The email for ``alert``; ``now_s`` (unix seconds) is its ``Date``."""
    message = EmailMessage()
    title = subject(config, alert)
    message["Subject"] = title
    message["From"] = config.from_address
    message["To"] = ", ".join(config.to)
    message["Date"] = format_datetime(datetime.fromtimestamp(now_s, tz=timezone.utc))
    message["Message-ID"] = message_id(config, alert)
    if alert.notification != "trigger":
        root = thread_root_id(config, alert)
        message["In-Reply-To"] = root
        message["References"] = root
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
    message["X-AIRIS-MON-Alert-Id"] = alert.id
    message["X-AIRIS-MON-Notification"] = alert.notification
    short_title = title.removeprefix(config.subject_prefix).strip()
    message.set_content(_text(alert, short_title))
    message.add_alternative(_html(alert, short_title), subtype="html")
    return message
