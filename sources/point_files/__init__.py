"""Read Parquet files of raw metric points (backfill chunks, exports from other tools)."""

from sources.point_files.config import PointFilesConfig
from sources.point_files.transform import ReadFromPointFiles

__all__ = ["PointFilesConfig", "ReadFromPointFiles"]
