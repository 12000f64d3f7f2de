"""Config of the ``parquet`` storage sink.

::

    sinks:
      - name: storage
        type: parquet
        path: ./airis-mon-output   # relative to the config file; default: --output
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from airis_mon.models import ComponentConfig, ConfigPath

__all__ = ["ParquetSinkConfig"]


class ParquetSinkConfig(ComponentConfig):
    """Where and how the storage sink writes."""

    type: Literal["parquet"] = "parquet"
    path: ConfigPath | None = Field(default=None, description="output folder; None means the --output option")
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
