"""Config models of the notification policy (Alertmanager-shaped), validated by pydantic.

::

    notification_policy:              # the root route: every alert enters here
      receiver: team-slack            # a notification sink name, or a list of them
      group_by: [alertname, model_id] # "..." groups by every label
      group_wait: 30s                 # first notification of a new group
      group_interval: 5m              # further notifications when the group changed
      repeat_interval: 4h             # resend an unchanged, still firing group
      routes:                         # children inherit receiver, group_by and the timers
        - matchers: ['severity=~"high|critical"', 'team!="infra"']
          receiver: [pagerduty, team-slack]
          continue: true
          mute_time_intervals: [weekends]
    inhibit_rules:
      - source_matchers: ['severity="critical"']
        target_matchers: ['severity="warning"']
        equal: [model_id]
    time_intervals:
      - name: weekends
        time_intervals: [{weekdays: [saturday, sunday], location: Europe/London}]

Durations are seconds or ``90s`` / ``5m`` / ``1h30m`` (:mod:`airis_mon.durations`).
:meth:`NotificationPolicy.compile` resolves inheritance into :class:`CompiledRoute`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from airis_mon.durations import parse_duration_s
from airis_mon.models import StrictModel
from airis_mon.validation import describe_validation_error, without_inputs
from transforms.notify_policy.matchers import Matcher, matchers_key, matches_all
from transforms.notify_policy.time_intervals import NamedTimeInterval

__all__ = [
    "DEFAULT_GROUP_INTERVAL_S",
    "DEFAULT_GROUP_WAIT_S",
    "DEFAULT_REPEAT_INTERVAL_S",
    "CompiledRoute",
    "InhibitRule",
    "NotificationPolicy",
    "PolicyRoute",
    "policy_from_document",
]

DEFAULT_GROUP_WAIT_S = 30  # Alertmanager's defaults
DEFAULT_GROUP_INTERVAL_S = 300
DEFAULT_REPEAT_INTERVAL_S = 4 * 3600


def _positive_duration(value: object) -> int:
    seconds = parse_duration_s(value)
    if seconds <= 0:
        raise ValueError("must be longer than 0 s")
    return seconds


def _matcher_list(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return value
    return [Matcher.parse(v) if isinstance(v, str) else v for v in value]


def _receivers(value: object) -> object:
    return [value] if isinstance(value, str) else value


Matchers = Annotated[list[Matcher], BeforeValidator(_matcher_list)]
PositiveDuration = Annotated[int, BeforeValidator(_positive_duration)]
Receivers = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_receivers)]


class PolicyRoute(StrictModel):
    """One node of the route tree; unset fields are inherited from the parent."""

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True, arbitrary_types_allowed=True)

    receiver: Receivers | None = Field(default=None, description="notification sink name(s)")
    matchers: Matchers = Field(default_factory=list, description='Alertmanager matchers, e.g. team!="infra"')
    group_by: list[str] | None = Field(default=None, description='labels to group by; ["..."]: all labels')
    group_wait: PositiveDuration | None = Field(
        default=None, description="seconds before a new group's first notification"
    )
    group_interval: PositiveDuration | None = Field(
        default=None, description="seconds between notifications of a changed group"
    )
    repeat_interval: PositiveDuration | None = Field(
        default=None, description="seconds before an unchanged group is re-sent"
    )
    continue_: bool = Field(default=False, alias="continue", description="also try the next sibling routes")
    routes: list[PolicyRoute] = Field(default_factory=list)
    mute_time_intervals: list[str] = Field(
        default_factory=list, description="names of time_intervals: no notifications then"
    )
    active_time_intervals: list[str] = Field(
        default_factory=list, description="names of time_intervals: notify only then"
    )

    @field_validator("receiver")
    @classmethod
    def _some_receiver(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("name at least one receiver")
        return value

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and "..." in value and len(value) > 1:
            raise ValueError('"..." (every label) cannot be combined with other labels')
        return value

    def receivers(self) -> list[tuple[str, str]]:
        """``(field path, receiver name)`` of this node and its descendants."""
        found = [("receiver", name) for name in self.receiver or ()]
        for index, child in enumerate(self.routes):
            found.extend((f"routes[{index}].{path}", name) for path, name in child.receivers())
        return found

    def interval_names(self) -> list[tuple[str, str]]:
        found = [(f"mute_time_intervals[{i}]", n) for i, n in enumerate(self.mute_time_intervals)]
        found += [(f"active_time_intervals[{i}]", n) for i, n in enumerate(self.active_time_intervals)]
        for index, child in enumerate(self.routes):
            found.extend((f"routes[{index}].{path}", name) for path, name in child.interval_names())
        return found


class InhibitRule(StrictModel):
    """Mutes alerts matching ``target_matchers`` while an alert matching ``source_matchers``
    fires with the same values of the ``equal`` labels."""

    model_config = ConfigDict(**StrictModel.model_config, arbitrary_types_allowed=True)

    source_matchers: Matchers = Field(min_length=1)
    target_matchers: Matchers = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)


class NotificationPolicy(StrictModel):
    """The route tree (``notification_policy``) with the top-level ``inhibit_rules`` and ``time_intervals``."""

    model_config = ConfigDict(**StrictModel.model_config, arbitrary_types_allowed=True)

    route: PolicyRoute
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    time_intervals: list[NamedTimeInterval] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> NotificationPolicy:
        if not self.route.receiver:
            raise ValueError("notification_policy.receiver: the root route needs a receiver")
        if self.route.matchers:
            raise ValueError(
                "notification_policy.matchers: the root route matches every alert; it cannot have matchers"
            )
        if self.route.mute_time_intervals or self.route.active_time_intervals:
            raise ValueError("notification_policy: the root route cannot have mute or active time intervals")
        names = [interval.name for interval in self.time_intervals]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"time_intervals: duplicate names {duplicates}")
        for path, name in self.route.interval_names():
            if name not in names:
                raise ValueError(
                    f"notification_policy.{path}: no time interval named {name!r} (known: {names or 'none'})"
                )
        return self

    def compile(self) -> CompiledRoute:
        """The root of the route tree with every option resolved."""
        return CompiledRoute.build(self.route, None, "0", {t.name: t for t in self.time_intervals})


@dataclass(frozen=True)
class CompiledRoute:
    """A route with inherited options resolved; ``path`` ("0", "0.1" ...) identifies it, ``key`` is
    Alertmanager's route key (``{}/{severity="critical"}``) used in group keys."""

    path: str
    key: str
    matchers: tuple[Matcher, ...]
    receivers: tuple[str, ...]
    group_by: tuple[str, ...] | None  # None: every label
    group_wait_s: int
    group_interval_s: int
    repeat_interval_s: int
    continue_: bool
    mute: tuple[NamedTimeInterval, ...]
    active: tuple[NamedTimeInterval, ...]
    children: tuple[CompiledRoute, ...]

    @classmethod
    def build(cls, node: PolicyRoute, parent: CompiledRoute | None, path: str,
              intervals: Mapping[str, NamedTimeInterval]) -> CompiledRoute:  # fmt: skip
        def pick(own, inherited, default):
            if own is not None:
                return own
            return inherited if parent is not None else default

        group_by = node.group_by
        grouping = (None if "..." in group_by else tuple(group_by)) if group_by is not None else (
            parent.group_by if parent is not None else ())  # fmt: skip
        key = (parent.key + "/" if parent is not None else "") + matchers_key(node.matchers)
        shell = cls(
            path=path,
            key=key,
            matchers=tuple(node.matchers),
            receivers=tuple(node.receiver) if node.receiver else parent.receivers,
            group_by=grouping,
            group_wait_s=pick(node.group_wait, parent and parent.group_wait_s, DEFAULT_GROUP_WAIT_S),
            group_interval_s=pick(node.group_interval, parent and parent.group_interval_s, DEFAULT_GROUP_INTERVAL_S),
            repeat_interval_s=pick(
                node.repeat_interval, parent and parent.repeat_interval_s, DEFAULT_REPEAT_INTERVAL_S
            ),
            continue_=node.continue_,
            mute=tuple(intervals[n] for n in node.mute_time_intervals),  # not inherited, as in Alertmanager
            active=tuple(intervals[n] for n in node.active_time_intervals),
            children=(),
        )
        children = tuple(cls.build(child, shell, f"{path}.{i}", intervals) for i, child in enumerate(node.routes))
        return cls(**{**shell.__dict__, "children": children})

    def match(self, labels: Mapping[str, str]) -> list[CompiledRoute]:
        """Alertmanager's ``Route.Match``: the deepest matching routes, children in order, a child
        that matches stops its later siblings unless it has ``continue``; this route when no child matched."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[CompiledRoute] = []
        for child in self.children:
            hits = child.match(labels)
            found.extend(hits)
            if hits and not child.continue_:
                break
        return found or [self]

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


def _section(model: type, data: Any, where: str, problems: list[str]):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems.extend(describe_validation_error(error, prefix=where))
        return None


def policy_from_document(
    document: Mapping[str, Any], notifiable: set[str] | None = None, unknown_ok: set[str] = frozenset()
) -> tuple[NotificationPolicy | None, list[str]]:
    """The ``notification_policy``, ``inhibit_rules`` and ``time_intervals`` sections of a config
    document, validated; ``(None, [])`` without a ``notification_policy``. Problems name the field
    (``notification_policy.routes[0].matchers[1]: ...``). ``notifiable``: the notification sink names
    receivers may name (not checked when ``None``); ``unknown_ok``: names of sinks that failed to validate."""
    problems: list[str] = []
    raw_route = document.get("notification_policy")
    raw_rules = document.get("inhibit_rules") or []
    raw_intervals = document.get("time_intervals") or []
    if raw_route is None:
        for key in ("inhibit_rules", "time_intervals"):
            if document.get(key):
                problems.append(f"{key}: only used with a notification_policy (add one)")
        return None, problems
    for key in ("routes", "default_route"):
        if document.get(key):
            problems.append(f"{key}: not used with a notification_policy (its route tree replaces them): remove one")
    route = _section(PolicyRoute, raw_route, "notification_policy", problems)
    rules, intervals = [], []
    for key, model, raw, into in (("inhibit_rules", InhibitRule, raw_rules, rules),
                                  ("time_intervals", NamedTimeInterval, raw_intervals, intervals)):  # fmt: skip
        if not isinstance(raw, list):
            problems.append(f"{key}: Input should be a valid list")
            continue
        for index, entry in enumerate(raw):
            value = _section(model, entry, f"{key}[{index}]", problems)
            if value is not None:
                into.append(value)
    if route is not None and notifiable is not None:
        for path, name in route.receivers():
            if name not in notifiable and name not in unknown_ok:
                known = ", ".join(sorted(notifiable)) or "none configured"
                problems.append(f"notification_policy.{path}: names no notification sink (known: {known})")
    if problems or route is None:
        return None, problems
    try:
        return NotificationPolicy(route=route, inhibit_rules=rules, time_intervals=intervals), []
    except ValidationError as error:
        return None, [without_inputs(d["msg"], None).removeprefix("Value error, ") for d in error.errors()]
