"""Durations in config: ``90`` (seconds), ``"90s"``, ``"5m"``, ``"1h"``, ``"2d"``.

>>> parse_duration_s("5m")
300
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

__all__ = ["Duration", "parse_duration_s"]

_PATTERN = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)?\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, None: 1}


def parse_duration_s(value: object) -> int:
    """Whole seconds; raises ``ValueError`` naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 90s, 5m, 1h, 2d")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    match = _PATTERN.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise ValueError("a duration is a number of seconds or a string like 90s, 5m, 1h, 2d")
    number, unit = int(match.group(1)), match.group(2)
    if unit == "ms":
        if number % 1000:
            raise ValueError("durations are whole seconds")
        return number // 1000
    return number * _SECONDS[unit]


Duration = Annotated[int, BeforeValidator(parse_duration_s)]
"""A config field holding a duration, stored as whole seconds."""
