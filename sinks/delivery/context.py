"""The enrichment context of an alert, as the notification sinks show it (shared by Slack, PagerDuty, ...).

``Alert.context`` is filled by :mod:`transforms.enrich`; these helpers read it
and never fail: an alert without context gives empty strings.
"""

from __future__ import annotations

import json

from airis_mon.schema import Alert

__all__ = ["context_of", "owner_line", "what_changed"]


def context_of(alert: Alert) -> dict:
    """``Alert.context`` as a dict ({} when empty or unreadable)."""
    try:
        context = json.loads(alert.context or "{}")
    except ValueError:
        return {}
    return context if isinstance(context, dict) else {}


def what_changed(alert: Alert) -> str:
    """``p95_latency breached 23 min after model v12 became champion; deployed by run #481 ...``, or ""."""
    return str(context_of(alert).get("summary") or "")


def owner_line(alert: Alert) -> str:
    """``Jane Doe <jdoe@example.com> · team growth-ml · #growth-ml``, or "" when nobody owns the model."""
    context = context_of(alert)
    owner = context.get("owner") if isinstance(context.get("owner"), dict) else {}
    name = owner.get("display_name") or owner.get("username") or ""
    if name and owner.get("email"):
        name = f"{name} <{owner['email']}>"
    parts = [name] if name else []
    if context.get("team"):
        parts.append(f"team {context['team']}")
    if context.get("slack_channel"):
        parts.append(str(context["slack_channel"]))
    return " · ".join(parts)
