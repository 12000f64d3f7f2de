"""Config of the ``payload_files`` source.

::

    integrations:
      - name: sample
        type: payload_files
        paths: ["recordings/*.jsonl.gz"]   # globs, relative to the config file
"""

from __future__ import annotations

import glob
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from airis_mon.models import ComponentConfig, resolve_config_path

__all__ = ["PayloadFilesConfig"]


class PayloadFilesConfig(ComponentConfig):
    """JSON-lines payload files (``.gz`` decompressed transparently)."""

    type: Literal["payload_files"] = "payload_files"
    paths: list[str] = Field(min_length=1, description="glob patterns; relative to the config file")
    max_rejected_ratio: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="a source is unhealthy when more than this share of its records is rejected",
    )
    batch_rows: int = Field(default=50_000, ge=1, description="metric points per Arrow batch")

    @field_validator("paths")
    @classmethod
    def _resolve_and_check(cls, patterns: list[str], info: ValidationInfo) -> list[str]:
        resolved = []
        for index, pattern in enumerate(patterns):
            absolute = resolve_config_path(pattern, info)
            if not glob.glob(absolute):
                raise ValueError(f"no file matches {absolute} (paths[{index}])")
            resolved.append(absolute)
        return resolved

    def files(self) -> list[str]:
        """Every file the patterns match now, sorted, without duplicates."""
        return sorted({path for pattern in self.paths for path in glob.glob(pattern)})
