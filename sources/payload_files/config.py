"""Config of the ``payload_files`` source.

::

    integrations:
      - name: sample
        type: payload_files
        paths: ["recordings/*.jsonl.gz"]   # globs, relative to the config file
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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
