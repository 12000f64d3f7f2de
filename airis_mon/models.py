"""Base classes of every config model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ComponentConfig", "StrictModel"]


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values frozen, and
    input values never echoed in error messages (they may be secrets)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ComponentConfig(StrictModel):
    """Fields every configured component has."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    type: str
