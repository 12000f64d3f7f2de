"""One :class:`~airis_mon.schema.Alert` per group notification, so every existing sink works unchanged.

The alert's ``id`` is a stable hash of receiver and group key: PagerDuty's ``dedup_key`` and
the delivery idempotency keys then make one incident per group, updated as members fire and
resolve. ``notification`` is ``trigger`` for a group's first notification (or the first after it
had fully resolved), ``resolve`` when every member resolved, ``repeat`` otherwise. The summary
follows Alertmanager's default title, ``[FIRING:3] HighLatency m1``; the description lists the
members, firing first.
"""

from __future__ import annotations

import hashlib
import json

from airis_mon.schema import ALERT_SEVERITIES, Alert
from transforms.notify_policy.dispatcher import GroupNotification

__all__ = ["group_alert", "group_alert_id"]


def group_alert_id(receiver: str, group_key: str) -> str:
    """24 hex characters, the same for every notification of one group to one receiver."""
    return hashlib.sha256(f"{receiver}\x1f{group_key}".encode()).hexdigest()[:24]


def _rank(severity: str) -> int:
    """0 for the most severe (``critical``)."""
    return len(ALERT_SEVERITIES) - ALERT_SEVERITIES.index(severity) if severity in ALERT_SEVERITIES else 99


def _common(members: list[dict], field: str) -> str:
    values = {m["payload"].get(field, "") for m in members}
    return values.pop() if len(values) == 1 else ""


def _line(member: dict, status: str) -> str:
    alert = member["payload"]
    text = alert.get("summary") or alert.get("name") or member["labels"].get("alertname", "")
    return f"- [{status}] {text}"


def group_alert(notification: GroupNotification) -> Alert:
    """The alert a sink receives for one group notification (members' payloads are ``Alert._asdict()``)."""
    firing, resolved = list(notification.firing), list(notification.resolved)
    members = firing + resolved
    ranked = sorted(members, key=lambda m: (_rank(m["payload"]["severity"]), m["payload"]["timestamp_ms"]))
    lead = ranked[0]["payload"]  # the most severe member, earliest first: its values stand for the group
    status = "firing" if firing else "resolved"
    kind = "resolve" if not firing else "trigger" if notification.first else "repeat"
    values = " ".join(notification.group_labels[k] for k in sorted(notification.group_labels))
    title = f"[FIRING:{len(firing)}]" if firing else "[RESOLVED]"
    summary = f"{title} {values or lead['rule']}"
    lines = [_line(m, "firing") for m in firing] + [_line(m, "resolved") for m in resolved]
    starts_at_ms = min(m["starts_at_ms"] for m in members)
    group = json.dumps(dict(sorted(notification.group_labels.items())), separators=(",", ":"))
    labels = {**notification.group_labels, "receiver": notification.receiver, "firing": str(len(firing)),
              "resolved": str(len(resolved))}  # fmt: skip
    return Alert(
        id=group_alert_id(notification.receiver, notification.group_key),
        name=notification.group_labels.get("alertname") or lead["name"],
        severity=lead["severity"],
        summary=summary,
        description=f"{len(firing)} firing, {len(resolved)} resolved\n" + "\n".join(lines),
        timestamp_ms=notification.at_ms,
        source=_common(members, "source") or lead["source"],
        model_id=_common(members, "model_id"),
        environment=_common(members, "environment"),
        alert_type=lead["alert_type"],
        threshold=lead["threshold"],
        current_value=lead["current_value"],
        peak_value=lead["peak_value"],
        duration_s=(notification.at_ms - starts_at_ms) / 1000,
        status=status,
        notification=kind,
        starts_at_ms=starts_at_ms,
        resolved_at_ms=0 if firing else notification.at_ms,
        rule=lead["rule"],
        metric=lead["metric"],
        group=group,
        labels=json.dumps(dict(sorted(labels.items())), separators=(",", ":")),
        silenced=False,
        context=lead.get("context", "{}"),
    )
