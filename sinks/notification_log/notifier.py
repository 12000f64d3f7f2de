"""``NotificationLogNotifier``: the notification log as a notifier (no Beam), for the live runner's outbox.

Appends through :class:`~sinks.notification_log.transform.NotificationLog`, so
a notification is written once however often it is handed over.
"""

from __future__ import annotations

from collections.abc import Sequence

from airis_mon.schema import Alert
from sinks.delivery.notifier import Outcome
from sinks.notification_log.config import NotificationLogConfig
from sinks.notification_log.transform import NotificationLog

__all__ = ["NotificationLogNotifier"]


class NotificationLogNotifier:
    """Alerts -> lines of the sink's JSON-lines file; every alert is delivered (already logged counts too)."""

    batch_size = 500

    def __init__(self, config: NotificationLogConfig):
        if not config.path:
            raise ValueError(f"{config.name}: no path (set sinks[].path or --output)")
        self._log = NotificationLog(config.name, config.path)

    def notify(self, alerts: Sequence[Alert]) -> list[Outcome]:
        self._log.append(alerts)
        return [Outcome(alert, True, None, 1, 0, "") for alert in alerts]
