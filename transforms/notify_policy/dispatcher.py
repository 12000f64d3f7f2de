"""A pure, deterministic Alertmanager dispatcher in event time (no clock, no I/O, no Beam).

In: alert notifications in time order (:class:`Incoming`: labels, ``starts_at_ms``,
``ends_at_ms`` for a resolve). Out: :class:`GroupNotification` (receiver, group key,
group labels, ``at_ms``, firing and resolved members), following Alertmanager 0.25's
dispatch and notify pipeline:

* an alert goes to every route :meth:`CompiledRoute.match` returns; per route the
  ``group_by`` labels pick its aggregation group, created at the alert's arrival;
* a group is first flushed ``group_wait`` after it was created (at once when the alert
  started more than ``group_wait`` before it arrived), then every ``group_interval``;
* at a flush, inhibited members are dropped (a firing source alert with equal labels),
  a route in a mute (or out of its active) time interval sends nothing, then per receiver
  the notification log decides as Alertmanager's ``DedupStage``: notify when a member is
  firing that was not in the last notification, when members resolved since (resolved
  members are included once), when the last firing member resolved, or when unchanged for
  ``repeat_interval``;
* resolved members leave the group after every flush; an empty group is removed.

Timers due at the same millisecond as an arriving alert fire before it. The state is plain
JSON (:meth:`Dispatcher.state`), so a live runner can keep it across cycles: flushes due after
the horizon passed to :meth:`Dispatcher.advance` stay pending until a later call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from transforms.notify_policy.config import CompiledRoute, NotificationPolicy
from transforms.notify_policy.matchers import matches_all
from transforms.notify_policy.time_intervals import in_any

__all__ = ["Dispatcher", "GroupNotification", "Incoming", "group_key", "labels_string"]


class Incoming(NamedTuple):
    """One alert notification: arrives at ``at_ms`` (epoch ms); ``ends_at_ms`` is set (and not
    after ``at_ms``) when it resolves, ``None`` while firing; ``payload`` is carried to the output."""

    at_ms: int
    labels: Mapping[str, str]
    starts_at_ms: int
    ends_at_ms: int | None = None
    payload: Any = None


class GroupNotification(NamedTuple):
    """One notification of one group to one receiver at ``at_ms`` (epoch ms). Members are dicts
    ``{"labels", "starts_at_ms", "ends_at_ms", "payload"}``; ``first`` when the receiver had no
    firing member of this group before (a new incident)."""

    receiver: str
    group_key: str
    group_labels: dict[str, str]
    at_ms: int
    firing: tuple[dict, ...]
    resolved: tuple[dict, ...]
    first: bool


def labels_string(labels: Mapping[str, str]) -> str:
    """Prometheus's ``LabelSet.String()``: ``{a="1", b="2"}``, sorted."""
    return "{" + ", ".join(f"{k}={json.dumps(labels[k], ensure_ascii=False)}" for k in sorted(labels)) + "}"


def group_key(route: CompiledRoute, group_labels: Mapping[str, str]) -> str:
    """Alertmanager's group key (the webhook's ``groupKey``): ``ROUTE_KEY:{labels}``."""
    return f"{route.key}:{labels_string(group_labels)}"


def _fingerprint(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"), ensure_ascii=False)


def _resolved(member: Mapping, now_ms: int) -> bool:
    return member["ends_at_ms"] is not None and member["ends_at_ms"] <= now_ms


class Dispatcher:
    """Alertmanager's dispatcher, inhibitor and notification log for one :class:`NotificationPolicy`."""

    def __init__(self, policy: NotificationPolicy, state: Mapping | None = None):
        self._policy = policy
        self._root = policy.compile()
        self._routes = {route.path: route for route in self._root.walk()}
        state = json.loads(json.dumps(state)) if state else {}
        self._alerts: dict[str, dict] = state.get("alerts", {})  # every unresolved alert: inhibition sources
        self._groups: dict[str, dict] = state.get("groups", {})
        self._log: dict[str, dict] = state.get("log", {})  # receiver \x00 group key -> last notification

    def state(self) -> dict:
        """The whole state as JSON-serializable dicts (a copy)."""
        return json.loads(json.dumps({"alerts": self._alerts, "groups": self._groups, "log": self._log}))

    def next_flush_ms(self) -> int | None:
        """When the earliest pending flush is due (epoch ms), ``None`` without groups."""
        return min((g["next_ms"] for g in self._groups.values()), default=None)

    def run(self, alerts: Iterable[Incoming], horizon_ms: int) -> list[GroupNotification]:
        """Receive ``alerts`` (sorted by ``at_ms``) and flush up to ``horizon_ms``."""
        out: list[GroupNotification] = []
        for alert in alerts:
            out.extend(self.receive(alert))
        out.extend(self.advance(horizon_ms))
        return out

    def receive(self, alert: Incoming) -> list[GroupNotification]:
        """Flush what is due before ``alert.at_ms``, then insert the alert into its groups."""
        out = self.advance(alert.at_ms - 1)
        labels = dict(alert.labels)
        fingerprint = _fingerprint(labels)
        ends = None if alert.ends_at_ms is None else int(alert.ends_at_ms)
        member = {
            "labels": labels,
            "starts_at_ms": int(alert.starts_at_ms),
            "ends_at_ms": ends,
            "payload": alert.payload,
        }
        previous = self._alerts.get(fingerprint)
        if previous is not None and member["ends_at_ms"] is None and previous["ends_at_ms"] is None:
            member["starts_at_ms"] = min(member["starts_at_ms"], previous["starts_at_ms"])  # same alert, still firing
        if member["ends_at_ms"] is None:
            self._alerts[fingerprint] = {k: member[k] for k in ("labels", "starts_at_ms", "ends_at_ms")}
        else:
            self._alerts.pop(fingerprint, None)
        for route in self._root.match(labels):
            grouping = route.group_by
            group_labels = dict(labels) if grouping is None else {k: labels[k] for k in grouping if k in labels}
            gid = route.path + "\x00" + _fingerprint(group_labels)
            group = self._groups.get(gid)
            if group is None:
                first_ms = alert.at_ms + route.group_wait_s * 1000
                group = {
                    "route": route.path,
                    "labels": group_labels,
                    "members": {},
                    "next_ms": first_ms,
                    "flushed": False,
                }
                self._groups[gid] = group
            group["members"][fingerprint] = member
            if not group["flushed"] and member["starts_at_ms"] + route.group_wait_s * 1000 < alert.at_ms:
                group["next_ms"] = min(group["next_ms"], alert.at_ms)  # started long ago: flush at once
        return out

    def advance(self, until_ms: int) -> list[GroupNotification]:
        """Run every flush due at or before ``until_ms`` (epoch ms), in time order."""
        out: list[GroupNotification] = []
        while self._groups:
            gid = min(self._groups, key=lambda g: (self._groups[g]["next_ms"], g))
            group = self._groups[gid]
            if group["next_ms"] > until_ms:
                break
            out.extend(self._flush(gid, group, group["next_ms"]))
        return out

    def _inhibited(self, labels: Mapping[str, str], now_ms: int) -> bool:
        for rule in self._policy.inhibit_rules:
            if not matches_all(rule.target_matchers, labels):
                continue
            two_sided = matches_all(rule.source_matchers, labels)
            for source in self._alerts.values():
                if _resolved(source, now_ms) or not matches_all(rule.source_matchers, source["labels"]):
                    continue
                if any(source["labels"].get(n, "") != labels.get(n, "") for n in rule.equal):
                    continue
                if two_sided and matches_all(rule.target_matchers, source["labels"]):
                    continue  # an alert matching both sides cannot inhibit another such alert
                return True
        return False

    def _flush(self, gid: str, group: dict, now_ms: int) -> list[GroupNotification]:
        route = self._routes[group["route"]]
        group["next_ms"] = now_ms + route.group_interval_s * 1000
        group["flushed"] = True
        members = sorted(group["members"].items())
        gone = [fp for fp, m in members if _resolved(m, now_ms)]
        out: list[GroupNotification] = []
        muted = in_any(route.mute, now_ms) or (bool(route.active) and not in_any(route.active, now_ms))
        if not muted:
            shown = [(fp, m) for fp, m in members if not self._inhibited(m["labels"], now_ms)]
            firing = {fp: m for fp, m in shown if not _resolved(m, now_ms)}
            resolved = {fp: m for fp, m in shown if _resolved(m, now_ms)}
            key = group_key(route, group["labels"])
            for receiver in route.receivers:
                entry = self._log.get(receiver + "\x00" + key)
                if not self._needs_update(entry, firing, resolved, now_ms, route.repeat_interval_s):
                    continue
                out.append(GroupNotification(receiver, key, dict(group["labels"]), now_ms,
                                             tuple(firing.values()), tuple(resolved.values()),
                                             entry is None or not entry["firing"]))  # fmt: skip
                self._log[receiver + "\x00" + key] = {
                    "firing": sorted(firing),
                    "resolved": sorted(resolved),
                    "at_ms": now_ms,
                }
        for fp in gone:
            del group["members"][fp]
        if not group["members"]:
            del self._groups[gid]
        return out

    @staticmethod
    def _needs_update(entry: Mapping | None, firing: Mapping, resolved: Mapping, now_ms: int, repeat_s: int) -> bool:
        """Alertmanager's ``DedupStage.needsUpdate`` (``send_resolved`` on)."""
        if entry is None:
            return bool(firing)
        if not set(firing) <= set(entry["firing"]):
            return True
        if not firing:
            return bool(entry["firing"])
        if not set(resolved) <= set(entry["resolved"]):
            return True
        return entry["at_ms"] < now_ms - repeat_s * 1000
