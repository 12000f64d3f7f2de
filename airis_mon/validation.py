"""Turn pydantic validation errors into lines that name the field at fault."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

__all__ = ["HIDDEN", "describe_validation_error", "field_path", "without_inputs"]

#: Labels pydantic puts in error locations for members of a union
#: (``tags.model_name.RegexMatch.regex``); users know fields, not types.
_UNION_MEMBER_NAMES = {"str", "int", "float", "bool", "RegexMatch"}
#: What a message shows instead of an input value it would have echoed.
HIDDEN = "(the value given)"
#: Shortest text (of a field's own value, of a value inside a mapping) and number that :func:`without_inputs`
#: looks for: shorter ones would also match the words and bounds of the rule itself ("greater than 0").
_SHORTEST_TEXT, _SHORTEST_TEXT_IN_MAPPING, _SHORTEST_NUMBER = 4, 6, 5
#: A text in a mapping that is a lowercase keyword, not searched (``mode: http``).
_KEYWORD = re.compile(r"[a-z][a-z_]{0,31}")
#: Keys of a secret reference (:mod:`airis_mon.secrets`).
_SECRET_REFERENCE_KINDS = {"env", "file", "secret_manager"}
#: Leaves of a mapping searched at most (a rule of a whole entry sees the entry as its input).
_MAX_LEAVES = 1000


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

    Input values are not echoed: they may be secrets (pydantic's ``input``
    is left out, and :func:`without_inputs` hides it where a message quotes
    it). When a value fails every
    member of a union (a tag matcher that is neither a string nor a valid
    ``{regex: ...}``), the "wrong type" complaints of the members it was
    clearly not meant as are dropped in favour of the specific one.
    """
    details = error.errors(include_url=False, include_input=True)
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
        lines.append(f"{field_path(location, prefix)}: {without_inputs(detail['msg'], detail.get('input'))}")
    return lines


def _leaves(value: Any, found: list, in_mapping: bool) -> None:
    if len(found) >= _MAX_LEAVES:
        return
    if isinstance(value, dict):
        if len(value) == 1 and set(value) <= _SECRET_REFERENCE_KINDS:
            return  # a secret's reference ({env: NAME}): airis_mon.secrets names it on purpose, never the secret
        for member in value.values():
            _leaves(member, found, True)
    elif isinstance(value, (list, tuple)):
        for member in value:
            _leaves(member, found, in_mapping)
    elif isinstance(value, str):
        text = value.strip()
        if in_mapping and _KEYWORD.fullmatch(text):
            return  # a choice (handoff: pubsub) that a rule of the whole entry names
        if len(text) >= (_SHORTEST_TEXT_IN_MAPPING if in_mapping else _SHORTEST_TEXT):
            found.append(text)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = repr(value)
        if len(text) >= _SHORTEST_NUMBER:
            found.append(text)


def without_inputs(message: str, value: Any) -> str:
    """``message`` with every whole occurrence of ``value`` (a field's input; for a mapping, the texts and
    numbers inside it) replaced by :data:`HIDDEN`: a validator's message that quotes what it refused (a
    library's, or one of ours) must not show it. Words and bounds of the rule are kept (texts under 4
    characters, texts in mappings under 6 characters or that are one lowercase keyword, and numbers under
    5 digits are not searched)."""
    found: list[str] = []
    _leaves(value, found, False)
    for text in sorted(set(found), key=len, reverse=True):
        if text in message:
            quoted = re.escape(text)
            message = re.sub(rf"'{quoted}'|\"{quoted}\"|(?<![\w.-]){quoted}(?![\w-])", HIDDEN, message)
    return message
