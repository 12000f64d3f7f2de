"""Turn pydantic validation errors into lines that name the field at fault."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["describe_validation_error", "field_path"]

#: Labels pydantic puts in error locations for members of a union
#: (``tags.model_name.RegexMatch.regex``); users know fields, not types.
_UNION_MEMBER_NAMES = {"str", "int", "float", "bool", "RegexMatch"}


def field_path(location: tuple, prefix: str = "") -> str:
    """Render a pydantic error location as ``rules[0].threshold``."""
    path = prefix
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(root)"


def _user_location(location: tuple) -> tuple:
    return tuple(
        part
        for part in location
        if not (isinstance(part, str) and (part.startswith("function-") or part in _UNION_MEMBER_NAMES))
    )


def describe_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """One ``path: message`` line per problem in ``error``, in input order.

    Input values are not echoed: they may be secrets. When a value fails every
    member of a union (a tag matcher that is neither a string nor a valid
    ``{regex: ...}``), the "wrong type" complaints of the members it was
    clearly not meant as are dropped in favour of the specific one.
    """
    details = error.errors(include_url=False, include_input=False)
    specific = {
        _user_location(d["loc"])[:-1]
        for d in details
        if any(part in _UNION_MEMBER_NAMES for part in d["loc"] if isinstance(part, str))
        and not d["type"].endswith("_type")
    }
    lines = []
    for detail in details:
        location = _user_location(detail["loc"])
        if detail["type"].endswith("_type") and any(location[: len(s)] == s for s in specific if s):
            continue
        lines.append(f"{field_path(location, prefix)}: {detail['msg']}")
    return lines
