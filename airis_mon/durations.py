"""Durations in config: ``90`` (seconds), ``"90s"``, ``"5m"``, ``"1h30m"``, ``"1.5h"``, ``"2d"``, ``"1w"``.

A string is one or more ``NUMBER UNIT`` terms, largest unit first, as in
Prometheus and Go (``1h30m``, ``2d12h``, ``1m30s``); units are ``ms``, ``s``,
``m``, ``h``, ``d`` (24 h) and ``w`` (7 d). A number may have a fraction
(``1.5h``, ``0.5m``). A bare number (or a string of digits) is seconds. The
value is stored as whole seconds: a duration that is not a whole number of
seconds (``1500ms``, ``0.3s``) is refused rather than rounded.

>>> parse_duration_s("1h30m")
5400
>>> parse_duration_s("1.5h")
5400
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Annotated

from pydantic import BeforeValidator

__all__ = ["Duration", "parse_duration_s"]

_TERM = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_SECONDS = {"ms": Fraction(1, 1000), "s": Fraction(1), "m": Fraction(60), "h": Fraction(3600),
            "d": Fraction(86_400), "w": Fraction(604_800)}  # fmt: skip
_ORDER = ("w", "d", "h", "m", "s", "ms")
_FORMS = "a duration is a number of seconds or a string like 90s, 5m, 1h30m, 1.5h, 2d"


def _terms_s(text: str) -> Fraction:
    """Seconds of ``1h30m``-style text; ``ValueError`` unless it is terms, each unit once, largest first."""
    position, total, last_rank = 0, Fraction(0), -1
    for match in _TERM.finditer(text):
        rank = _ORDER.index(match.group(2))
        if match.start() != position or rank <= last_rank:
            raise ValueError(_FORMS)
        total += Fraction(match.group(1)) * _SECONDS[match.group(2)]
        position, last_rank = match.end(), rank
    if position != len(text) or position == 0:
        raise ValueError(_FORMS)
    return total


def parse_duration_s(value: object) -> int:
    """Whole seconds; raises ``ValueError`` naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(_FORMS)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if not isinstance(value, str):
        raise ValueError(_FORMS)
    text = value.strip()
    seconds = Fraction(int(text)) if text.isdigit() else _terms_s(text)
    if seconds.denominator != 1:
        raise ValueError(f"durations are whole seconds: {value!r} is {float(seconds):g} s")
    return int(seconds)


Duration = Annotated[int, BeforeValidator(parse_duration_s)]
"""A config field holding a duration, stored as whole seconds."""
