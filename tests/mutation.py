"""Mutating recorded JSON bodies for robustness tests: fields dropped or given values of the wrong type."""

from __future__ import annotations

import random
from typing import Any

__all__ = ["WRONG_VALUES", "mutate"]

WRONG_VALUES = [None, [], {}, "", "garbage", 0, -1, True, 1e308, 10**40, "2026-11-28T00:00:00Z", {"login": 5}]


def mutate(value: Any, rng: random.Random) -> Any:
    """A copy of a JSON value with some fields dropped or replaced by values of the wrong type."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            roll = rng.random()
            if roll < 0.1:
                continue
            out[key] = rng.choice(WRONG_VALUES) if roll < 0.25 else mutate(item, rng)
        return out
    if isinstance(value, list):
        return [mutate(item, rng) for item in value]
    return value
