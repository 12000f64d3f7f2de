"""Config shared by the sources that read local files (``payload_files``, ``point_files``)."""

from __future__ import annotations

import glob

from pydantic import Field, ValidationInfo, field_validator

from airis_mon.models import ComponentConfig, resolve_config_path

__all__ = ["FileGlobsConfig"]


class FileGlobsConfig(ComponentConfig):
    """``paths``: glob patterns, relative to the config file; each must match at least one file."""

    paths: list[str] = Field(min_length=1, description="glob patterns; relative to the config file")
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

    def existing_files(self) -> list[str]:
        """:meth:`files`, or ``ValueError`` when the files went away since the config was validated."""
        files = self.files()
        if not files:
            raise ValueError(f"{self.name}: no file matches {self.paths}")
        return files
