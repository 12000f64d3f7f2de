"""Config of the ``notification_log`` sink.

::

    sinks:
      - name: oncall
        type: notification_log
        path: notifications/oncall.jsonl   # relative to the config file; default: --output/notifications-NAME.jsonl
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from airis_mon.models import ComponentConfig, ConfigPath

__all__ = ["NotificationLogConfig"]


class NotificationLogConfig(ComponentConfig):
    """Where the notification log is written."""

    type: Literal["notification_log"] = "notification_log"
    path: ConfigPath | None = Field(
        default=None, description="JSON-lines file; None: <--output>/notifications-<name>.jsonl"
    )
