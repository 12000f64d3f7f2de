"""Config of the ``parquet`` storage sink.

::

    sinks:
      - name: storage
        type: parquet
        path: ./airis-mon-output   # relative to the config file; default: --output
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from airis_mon.config import ComponentConfig

__all__ = ["ParquetSinkConfig"]


class ParquetSinkConfig(ComponentConfig):
    """Where and how the storage sink writes."""

    type: Literal["parquet"] = "parquet"
    path: str | None = Field(default=None, description="output folder; None means the --output option")
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"

    @field_validator("path")
    @classmethod
    def _resolve(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is None or os.path.isabs(path):
            return path
        return str(Path((info.context or {}).get("base_dir", os.getcwd())) / path)
