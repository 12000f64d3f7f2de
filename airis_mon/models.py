"""Base classes of every config model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

__all__ = ["ComponentConfig", "ConfigPath", "StrictModel", "resolve_config_path"]


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values frozen, and
    input values never echoed in error messages (they may be secrets)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ComponentConfig(StrictModel):
    """Fields every configured component has."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    type: str


def resolve_config_path(path: str, info: ValidationInfo) -> str:
    """A path from a config file, made absolute against the config's folder
    (``base_dir`` in the validation context; the working directory without one)."""
    if os.path.isabs(path):
        return path
    return str(Path((info.context or {}).get("base_dir", os.getcwd())) / path)


ConfigPath = Annotated[str, AfterValidator(resolve_config_path)]
"""A config field holding a file or folder path, relative to the config file."""
