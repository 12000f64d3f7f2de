"""Turn pydantic validation errors into lines that name the field at fault."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["describe_validation_error", "field_path"]


def field_path(location: tuple, prefix: str = "") -> str:
    """Render a pydantic error location as ``rules[0].threshold``."""
    path = prefix
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(root)"


def describe_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """One ``path: message`` line per problem in ``error``, in input order.

    Input values are not echoed: they may be secrets.
    """
    lines = []
    for detail in error.errors(include_url=False, include_input=False):
        location = tuple(p for p in detail["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        lines.append(f"{field_path(location, prefix)}: {detail['msg']}")
    return lines
