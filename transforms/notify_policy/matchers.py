"""Alertmanager label matchers: ``name="value"``, ``name!="value"``, ``name=~"regex"``, ``name!~"regex"``.

The value may be double-quoted (Go escapes ``\\"``, ``\\\\``, ``\\n``) or bare. A regex
must match the whole value (Alertmanager anchors it). A label the alert lacks has the
value ``""``, so ``team!="infra"`` and ``team!~"x"`` match an alert without ``team``.

>>> Matcher.parse('severity=~"high|critical"').matches({"severity": "high"})
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["OPERATORS", "Matcher", "matchers_key", "matches_all"]

OPERATORS = ("=~", "!~", "!=", "=")
_SYNTAX = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")
_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


def _unquote(text: str) -> str:
    if not (len(text) >= 2 and text[0] == text[-1] == '"'):
        if '"' in text:
            raise ValueError(f"unbalanced quotes in matcher value {text!r}")
        return text
    body, out, index = text[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            out.append(_ESCAPES.get(body[index + 1], "\\" + body[index + 1]))
            index += 2
            continue
        if char == '"':
            raise ValueError(f"unescaped quote in matcher value {text!r}")
        out.append(char)
        index += 1
    return "".join(out)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@dataclass(frozen=True)
class Matcher:
    """One label matcher; ``op`` is one of :data:`OPERATORS`."""

    name: str
    op: str
    value: str
    _regex: re.Pattern | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse ``name OP value``; ``ValueError`` says what is wrong."""
        found = _SYNTAX.fullmatch(text)
        if not found:
            raise ValueError(f"{text!r} is not a matcher: expected name=\"value\", name!=\"value\", "
                             "name=~\"regex\" or name!~\"regex\"")  # fmt: skip
        name, op, raw = found.groups()
        value = _unquote(raw)
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(value)
            except re.error as error:
                raise ValueError(f"invalid regular expression in {text!r}: {error}") from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when the label (``""`` when absent) satisfies the matcher."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_quote(self.value)}"


_OP_ORDER = {"=": 0, "!=": 1, "=~": 2, "!~": 3}  # Alertmanager's MatchType order


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher holds (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)


def matchers_key(matchers: Iterable[Matcher]) -> str:
    """Alertmanager's ``Matchers.String()``: sorted by name, type, value, as ``{a="b",c=~"d"}``."""
    ordered = sorted(matchers, key=lambda m: (m.name, _OP_ORDER[m.op], m.value))
    return "{" + ",".join(str(m) for m in ordered) + "}"
