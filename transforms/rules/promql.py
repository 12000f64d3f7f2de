"""A PromQL subset: tokenizer, recursive-descent parser and the plan AIRIS-MON evaluates.

The alerting expressions that map onto aggregate windows (:mod:`transforms.rules.prometheus_semantics`
evaluates them)::

    cond   := vector CMP number | number CMP vector | absent(sel) | absent_over_time(sel[range])
    vector := sel | F_over_time(sel[range]) | rate(sel[range])
            | histogram_quantile(q, rate(sel_bucket[range]))
            | histogram_quantile(q, sum by (le, ...) (rate(sel_bucket[range])))
    expr   := cond | expr and cond | expr unless cond        (F: avg, max, min, sum; CMP: > >= < <= == !=)

``sel`` is ``metric{label OP "value", ...}`` with ``=``, ``!=``, ``=~``, ``!~``. Anything else (other
functions, arithmetic, ``bool``, ``on``/``ignoring``, ``offset``, ``@``, subqueries, ``or``, ``absent``
inside ``and``/``unless``) raises :class:`Unsupported` naming the part. :func:`compile_expr` gives the
:class:`Plan`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from airis_mon.durations import parse_duration_s

__all__ = ["Cond", "Matcher", "Plan", "Selector", "Unsupported", "Vector", "compile_expr", "tokenize"]


class Unsupported(ValueError):  # noqa: N818 (reads as 'raise Unsupported(...)')
    """The expression is valid PromQL (or not) but outside the subset AIRIS-MON evaluates."""


class Token(NamedTuple):
    kind: str  # ident | number | string | duration | op | punct | eof
    text: str
    position: int


_OPERATORS = ("==", "!=", ">=", "<=", "=~", "!~", ">", "<", "=", "+", "-", "*", "/", "%", "^")
_PUNCT = "(){}[],:@"
_DURATION_UNITS = "smhdwy"


def tokenize(text: str) -> list[Token]:
    """PromQL text -> tokens; ``Unsupported`` on a character that starts no token."""
    tokens, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in "\"'`":
            j, chars = i + 1, []
            while j < n and text[j] != ch:
                if text[j] == "\\" and ch != "`" and j + 1 < n:
                    j += 1
                    chars.append({"n": "\n", "t": "\t"}.get(text[j], text[j]))
                else:
                    chars.append(text[j])
                j += 1
            if j >= n:
                raise Unsupported(f"unterminated string at {i}")
            tokens.append(Token("string", "".join(chars), i))
            i = j + 1
        elif ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            j = i
            while j < n and (text[j].isalnum() or text[j] in "._"):
                j += 1
            word = text[i:j]
            if word[-1] in _DURATION_UNITS and not word.lower().startswith("0x") and not _is_number(word):
                tokens.append(Token("duration", word, i))
            else:
                tokens.append(Token("number", word, i))
            i = j
        elif ch.isalpha() or ch in "_:":
            j = i
            while j < n and (text[j].isalnum() or text[j] in "_:"):
                j += 1
            tokens.append(Token("ident", text[i:j], i))
            i = j
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(Token("op", op, i))
                    i += len(op)
                    break
            else:
                if ch in _PUNCT:
                    tokens.append(Token("punct", ch, i))
                    i += 1
                else:
                    raise Unsupported(f"unexpected character {ch!r} at {i}")
    tokens.append(Token("eof", "", n))
    return tokens


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


class Matcher(NamedTuple):
    label: str
    op: str  # = != =~ !~
    value: str

    def holds(self, labels: dict[str, str]) -> bool:
        """True when the label set satisfies this matcher (a missing label is the empty string)."""
        value = labels.get(self.label, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = re.fullmatch(self.value, value) is not None
        return found if self.op == "=~" else not found


class Selector(NamedTuple):
    """``metric{matchers}``, with ``range_s`` for ``[range]`` (None: an instant selector)."""

    metric: str
    matchers: tuple[Matcher, ...]
    range_s: int | None = None

    def selects(self, metric: str, labels: dict[str, str]) -> bool:
        """True when a series of ``metric`` with ``labels`` is selected."""
        return metric == self.metric and all(m.holds(labels) for m in self.matchers)


@dataclass(frozen=True)
class Vector:
    """A value per group: ``func`` is instant | avg/max/min/sum_over_time | rate | histogram_quantile."""

    func: str
    selector: Selector
    quantile: float = math.nan
    by: tuple[str, ...] | None = None  # histogram_quantile over sum by (le, ...): the other labels


@dataclass(frozen=True)
class Cond:
    """A condition: ``vector CMP threshold``, or ``absent`` / ``absent_over_time`` of a selector."""

    kind: str  # compare | absent | absent_over_time
    vector: Vector | None = None
    comparator: str = ""
    threshold: float = math.nan
    selector: Selector | None = None


@dataclass(frozen=True)
class Plan:
    """The compiled expression: the first condition, then ``(and|unless, condition)`` steps."""

    first: Cond
    steps: tuple[tuple[str, Cond], ...]

    def conds(self) -> list[Cond]:
        return [self.first, *(cond for _, cond in self.steps)]

    def selectors(self) -> list[Selector]:
        """Distinct selectors (instant form), in order: the data sources of the rule."""
        out: list[Selector] = []
        for cond in self.conds():
            sel = cond.selector if cond.vector is None else cond.vector.selector
            sel = sel._replace(range_s=None)
            if sel not in out:
                out.append(sel)
        return out

    def max_range_s(self) -> int:
        """The longest range of any range selector, s (0 when none)."""
        ranges = [(c.selector if c.vector is None else c.vector.selector).range_s or 0 for c in self.conds()]
        return max(ranges)

    @property
    def is_absent(self) -> bool:
        return self.first.kind != "compare"

    @property
    def histogram_by(self) -> tuple[str, ...] | bool | None:
        """For a histogram plan: its ``by`` labels (None: all but ``le``); False when not a histogram."""
        vector = self.first.vector
        if vector is None or vector.func != "histogram_quantile":
            return False
        return vector.by


_COMPARATORS = (">", ">=", "<", "<=", "==", "!=")
_FLIPPED = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}
_OVER_TIME = ("avg_over_time", "max_over_time", "min_over_time", "sum_over_time")


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, kind: str, text: str | None = None) -> Token:
        token = self.take()
        if token.kind != kind or (text is not None and token.text != text):
            want = text or kind
            raise Unsupported(f"expected {want!r} at {token.position}, found {token.text or 'end'!r}")
        return token

    def accept(self, kind: str, text: str) -> bool:
        token = self.peek()
        if token.kind == kind and token.text == text:
            self.i += 1
            return True
        return False

    def parse(self) -> Plan:
        first = self.cond()
        steps = []
        while self.peek().kind == "ident" and self.peek().text in ("and", "unless", "or"):
            op = self.take().text
            if op == "or":
                raise Unsupported("'or' is not supported")
            if self.peek().kind == "ident" and self.peek().text in ("on", "ignoring"):
                raise Unsupported(f"vector matching '{self.peek().text}(...)' is not supported")
            steps.append((op, self.cond()))
        token = self.peek()
        if token.kind != "eof":
            raise Unsupported(f"unsupported {token.text!r} at {token.position}")
        conds = [first, *(c for _, c in steps)]
        if len(conds) > 1 and any(c.kind != "compare" for c in conds):
            raise Unsupported("absent()/absent_over_time() inside and/unless is not supported")
        if len(conds) > 1 and any(c.vector.func == "histogram_quantile" for c in conds):
            raise Unsupported("histogram_quantile() inside and/unless is not supported")
        return Plan(first, tuple(steps))

    def cond(self) -> Cond:
        token = self.peek()
        if token.kind == "ident" and token.text in ("absent", "absent_over_time"):
            self.take()
            self.expect("punct", "(")
            sel = self.selector()
            self.expect("punct", ")")
            if (token.text == "absent") != (sel.range_s is None):
                form = "an instant selector" if token.text == "absent" else "a range selector"
                raise Unsupported(f"{token.text}() needs {form}")
            self._no_comparison_after(token.text)
            return Cond(kind=token.text, selector=sel)
        if token.kind == "number" or (token.kind == "op" and token.text == "-"):
            threshold = self.number()
            comparator = self.comparator()
            return Cond("compare", self.vector(), _FLIPPED[comparator], threshold)
        vector = self.vector()
        comparator = self.comparator()
        return Cond("compare", vector, comparator, self.number())

    def _no_comparison_after(self, what: str) -> None:
        token = self.peek()
        if token.kind == "op":
            raise Unsupported(f"{what}() {token.text} ... is not supported")

    def comparator(self) -> str:
        token = self.take()
        if token.kind != "op" or token.text not in _COMPARATORS:
            found = token.text or "end"
            raise Unsupported(f"expected a comparison (> >= < <= == !=) at {token.position}, found {found!r}")
        if self.peek().kind == "ident" and self.peek().text == "bool":
            raise Unsupported("the 'bool' modifier is not supported")
        return token.text

    def number(self) -> float:
        sign = -1.0 if self.accept("op", "-") else 1.0
        token = self.take()
        if token.kind != "number":
            raise Unsupported(f"expected a number at {token.position}, found {token.text or 'end'!r}")
        return sign * float(token.text)

    def vector(self) -> Vector:
        token = self.peek()
        if token.kind == "punct" and token.text == "(":
            raise Unsupported("parenthesised sub-expressions are not supported")
        if token.kind != "ident":
            raise Unsupported(f"unsupported {token.text or 'end'!r} at {token.position}")
        after = self.tokens[self.i + 1]
        if (after.kind == "punct" and after.text == "(") or token.text in ("sum", "avg", "max", "min", "count"):
            return self.call()
        sel = self.selector()
        if sel.range_s is not None:
            raise Unsupported(f"a bare range selector {sel.metric}[...] needs a function")
        return Vector("instant", sel)

    def call(self) -> Vector:
        name = self.take().text
        if name in _OVER_TIME or name == "rate":
            self.expect("punct", "(")
            sel = self.selector()
            self.expect("punct", ")")
            if sel.range_s is None:
                raise Unsupported(f"{name}() needs a range selector")
            return Vector(name.removesuffix("_over_time") if name != "rate" else "rate", sel)
        if name == "histogram_quantile":
            self.expect("punct", "(")
            quantile = self.number()
            self.expect("punct", ",")
            by: tuple[str, ...] | None = None
            if self.peek().kind == "ident" and self.peek().text == "sum":
                self.take()
                by = self.by_clause()
                self.expect("punct", "(")
                inner = self.rate_of_bucket()
                self.expect("punct", ")")
            else:
                inner = self.rate_of_bucket()
            self.expect("punct", ")")
            if by is not None:
                if "le" not in by:
                    raise Unsupported("histogram_quantile() over sum by (...) needs 'le' in by")
                by = tuple(label for label in by if label != "le")
            return Vector("histogram_quantile", inner, quantile, by)
        raise Unsupported(f"function or aggregation {name}() is not supported")

    def by_clause(self) -> tuple[str, ...]:
        token = self.take()
        if token.kind != "ident" or token.text != "by":
            raise Unsupported("sum inside histogram_quantile() needs 'by (le, ...)' before its argument")
        self.expect("punct", "(")
        labels = []
        while not self.accept("punct", ")"):
            labels.append(self.expect("ident").text)
            if not self.accept("punct", ","):
                self.expect("punct", ")")
                break
        return tuple(labels)

    def rate_of_bucket(self) -> Selector:
        token = self.take()
        if token.kind != "ident" or token.text != "rate":
            raise Unsupported(f"histogram_quantile() needs rate(..._bucket[range]), found {token.text!r}")
        self.expect("punct", "(")
        sel = self.selector()
        self.expect("punct", ")")
        if sel.range_s is None or not sel.metric.endswith("_bucket"):
            raise Unsupported("histogram_quantile() needs rate(..._bucket[range])")
        return sel

    def selector(self) -> Selector:
        token = self.peek()
        metric = ""
        if token.kind == "ident":
            metric = self.take().text
        matchers = []
        if self.accept("punct", "{"):
            while not self.accept("punct", "}"):
                label = self.expect("ident").text
                op = self.take()
                if op.kind != "op" or op.text not in ("=", "!=", "=~", "!~"):
                    raise Unsupported(f"expected a label matcher operator at {op.position}")
                value = self.expect("string").text
                if op.text in ("=~", "!~"):
                    try:
                        re.compile(value)
                    except re.error as error:
                        raise Unsupported(f"invalid regex {value!r}: {error}") from None
                if label == "__name__":
                    if op.text != "=" or metric:
                        raise Unsupported("__name__ matchers other than one '=' are not supported")
                    metric = value
                else:
                    matchers.append(Matcher(label, op.text, value))
                if not self.accept("punct", ","):
                    self.expect("punct", "}")
                    break
        if not metric:
            raise Unsupported(f"a selector needs a metric name at {token.position}")
        range_s = None
        if self.accept("punct", "["):
            duration = self.take()
            if duration.kind not in ("duration", "number"):
                raise Unsupported(f"expected a range duration at {duration.position}")
            if self.peek().text.startswith(":"):
                raise Unsupported("subqueries are not supported")
            self.expect("punct", "]")
            try:
                range_s = parse_duration_s(duration.text)
            except ValueError as error:
                raise Unsupported(f"range [{duration.text}]: {error}") from None
            if range_s <= 0:
                raise Unsupported("a range must be positive")
        token = self.peek()
        if (token.kind == "ident" and token.text == "offset") or (token.kind == "punct" and token.text == "@"):
            raise Unsupported(f"'{token.text}' modifiers are not supported")
        return Selector(metric, tuple(matchers), range_s)


@lru_cache(maxsize=256)
def compile_expr(expr: str) -> Plan:
    """Parse ``expr`` into a :class:`Plan`; ``Unsupported`` (a ``ValueError``) naming the part otherwise."""
    return _Parser(expr).parse()
