"""Config of the ``point_files`` source.

::

    integrations:
      - name: history
        type: point_files
        paths: ["exports/*.parquet"]   # globs, relative to the config file

Each file holds the columns of :data:`~airis_mon.schema.RAW_POINT_SCHEMA`
(``timestamp`` in s, ms, µs or ns since the epoch; ``source``, ``name``,
``value``, ``unit``, ``tags`` as a JSON object string). ``python -m
pipelines.backfill`` writes its chunks in this format.
"""

from __future__ import annotations

from typing import Literal

from sources.file_globs import FileGlobsConfig

__all__ = ["PointFilesConfig"]


class PointFilesConfig(FileGlobsConfig):
    """Parquet files of raw metric points, read in ``batch_rows`` record batches."""

    type: Literal["point_files"] = "point_files"
