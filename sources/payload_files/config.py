"""Config of the ``payload_files`` source.

::

    integrations:
      - name: sample
        type: payload_files
        paths: ["recordings/*.jsonl.gz"]   # globs, relative to the config file
        timestamps:                        # accepted payload timestamps; others are dead letters
          not_before: "2000-01-01T00:00:00Z"   # ISO-8601 or epoch s/ms/µs/ns; default 1970-01-01T00:00:00Z
          max_future_s: 86400                  # s ahead of the wall clock when the line is parsed (default)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from airis_mon.payloads import TimestampRange
from sources.file_globs import FileGlobsConfig

__all__ = ["PayloadFilesConfig"]


class PayloadFilesConfig(FileGlobsConfig):
    """JSON-lines payload files (``.gz`` decompressed transparently)."""

    type: Literal["payload_files"] = "payload_files"
    max_rejected_ratio: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="a source is unhealthy when more than this share of its records is rejected",
    )
    timestamps: TimestampRange = Field(default_factory=TimestampRange, description="accepted payload timestamps")
