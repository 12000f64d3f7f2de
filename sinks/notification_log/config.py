"""Config of the ``notification_log`` sink.

::

    sinks:
      - name: oncall
        type: notification_log
        path: notifications/oncall.jsonl   # relative to the config file; default: --output/notifications-NAME.jsonl
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from airis_mon.models import ComponentConfig

__all__ = ["NotificationLogConfig"]


class NotificationLogConfig(ComponentConfig):
    """Where the notification log is written."""

    type: Literal["notification_log"] = "notification_log"
    path: str | None = Field(default=None, description="JSON-lines file; None: <--output>/notifications-<name>.jsonl")

    @field_validator("path")
    @classmethod
    def _resolve(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is None or os.path.isabs(path):
            return path
        return str(Path((info.context or {}).get("base_dir", os.getcwd())) / path)
