"""Tag matchers, silences and routes (config models and their pure logic).

::

    silences:
      - name: maintenance
        matchers: {model_name: fraud-detector, severity: {regex: "high|critical"}}
        starts_at: "2026-11-28T14:00:00Z"
        ends_at: "2026-11-28T15:00:00Z"
        comment: "planned load test"

    routes:                  # first match wins, unless continue: true
      - name: page-on-call
        match: {severity: [critical, high]}
        sinks: [pagerduty]
        continue: true
      - name: fraud-team
        match: {labels: {team: fraud}}
        sinks: [fraud-slack]
    default_route:
      sinks: [team-log]      # alerts no route matched
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from airis_mon.models import StrictModel
from airis_mon.schema import ALERT_SEVERITIES
from airis_mon.timeutil import to_epoch_ms

__all__ = ["DefaultRoute", "RegexMatch", "Route", "RouteMatch", "Silence", "TagMatcher", "matches", "route_sinks"]


def _valid_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"invalid regular expression: {error}") from None
    return pattern


class RegexMatch(StrictModel):
    """A matcher by regular expression; the whole value must match."""

    regex: Annotated[str, AfterValidator(_valid_regex)]


TagMatcher = str | RegexMatch
EpochMs = Annotated[int, BeforeValidator(to_epoch_ms)]


def matches(matchers: Mapping[str, TagMatcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher holds (exact value, or full regex match)."""
    for key, matcher in matchers.items():
        value = labels.get(key)
        if value is None:
            return False
        if isinstance(matcher, RegexMatch):
            if not re.fullmatch(matcher.regex, value):
                return False
        elif value != matcher:
            return False
    return True


class Silence(StrictModel):
    """Suppresses notifications, not storage, of matching alerts whose time
    falls in ``[starts_at, ends_at)``. Matchers see the alert's labels plus
    ``rule``, ``severity`` and ``source``."""

    name: str = Field(min_length=1)
    matchers: dict[str, TagMatcher] = Field(min_length=1)
    starts_at: EpochMs
    ends_at: EpochMs
    comment: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def silences(self, labels: Mapping[str, str], at_ms: int) -> bool:
        return self.starts_at <= at_ms < self.ends_at and matches(self.matchers, labels)


class RouteMatch(StrictModel):
    severity: list[Literal[ALERT_SEVERITIES]] | None = None
    labels: dict[str, TagMatcher] = Field(default_factory=dict)

    def accepts(self, severity: str, labels: Mapping[str, str]) -> bool:
        return (self.severity is None or severity in self.severity) and matches(self.labels, labels)


class Route(StrictModel):
    """Sends matching alerts to the named sinks."""

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True)

    name: str = Field(min_length=1)
    match: RouteMatch = Field(default_factory=RouteMatch)
    sinks: list[str] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue", description="keep matching later routes")


class DefaultRoute(StrictModel):
    sinks: list[str] = Field(default_factory=list)


def route_sinks(
    routes: tuple[Route, ...],
    default: DefaultRoute,
    severity: str,
    labels: Mapping[str, str],
    owner_sinks: Sequence[str] = (),
) -> list[str]:
    """The sink names an alert goes to, without duplicates: its owning team's sinks first
    (``owner_sinks``, see :mod:`airis_mon.enrichment`), then the matching routes in order;
    the default route only when neither chose anything."""
    chosen: list[str] = list(dict.fromkeys(owner_sinks))
    matched = bool(chosen)
    for route in routes:
        if route.match.accepts(severity, labels):
            matched = True
            chosen.extend(s for s in route.sinks if s not in chosen)
            if not route.continue_:
                break
    if not matched:
        chosen.extend(s for s in default.sinks if s not in chosen)
    return chosen
