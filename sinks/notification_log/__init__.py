"""Routed alert notifications as JSON lines in a local file."""

from sinks.notification_log.config import NotificationLogConfig
from sinks.notification_log.transform import WriteToNotificationLog

__all__ = ["NotificationLogConfig", "WriteToNotificationLog"]
