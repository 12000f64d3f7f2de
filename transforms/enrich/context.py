"""What enrichment knows, built from events, and what it adds to an alert (pure, no Beam).

:class:`EnrichmentContext` is folded from the event stream, so every way the
facts arrive feeds it the same way:

- ``user_sync`` events (the ``ldap`` source, the gateway's user-sync API):
  the user directory, by username and by e-mail (the latest sync of a user wins);
- ``model_version_status`` events (the ``mlflow`` source, MLflow webhooks):
  registry changes per registered model: new versions, alias moves, stage moves,
  with the version's stage, aliases and run after the change (the ``mlflow``
  source's :func:`~sources.mlflow.snapshot.model_metadata` fields);
- ``workflow_run`` and ``push`` events (the ``github`` source, GitHub webhooks):
  CI activity per repository.

:func:`alert_context` then gives an alert its owner and team (ownership map
+ directory) and its *change context*: the most recent registry change of
its model and the most recent workflow run or push of its repository that
happened within ``lookback_s`` before the episode started, the registry
state of the newest version seen before it (``registry``), plus one sentence
saying so::

    "p95_latency breached 23 min after model v12 became champion; deployed by run #481 of deploy (success, by alice)"

Nothing here ever drops an alert: a model nobody owns, a user missing from
the directory or no recent change just leaves those fields out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from airis_mon.enrichment import EnrichmentConfig
from airis_mon.schema import Alert, Event

__all__ = ["CONTEXT_EVENT_TYPES", "EnrichmentContext", "alert_context", "describe_change", "describe_deploy"]

CONTEXT_EVENT_TYPES = frozenset({"user_sync", "model_version_status", "workflow_run", "push"})
#: Changes kept per model and CI events per repository (the newest; enough for any lookback in practice).
MAX_HISTORY = 200
_USER_FIELDS = ("username", "display_name", "email", "department", "title")


@dataclass
class EnrichmentContext:
    """Directory, registry changes and CI activity seen so far (mergeable: a CombineFn accumulator)."""

    users: dict[str, dict] = field(default_factory=dict)  # username and lower-cased e-mail -> user
    user_times: dict[str, int] = field(default_factory=dict)  # username -> time of the sync that set it
    model_changes: dict[str, list[dict]] = field(default_factory=dict)  # registered model -> changes
    repo_activity: dict[str, list[dict]] = field(default_factory=dict)  # owner/name -> runs and pushes
    events_seen: int = 0  # grows with every event folded in: the newest of several refreshes has the most

    def add(self, event: Event) -> EnrichmentContext:
        """Fold one event in (events of other types are ignored)."""
        if event.event_type not in CONTEXT_EVENT_TYPES:
            return self
        self.events_seen += 1
        try:
            data = json.loads(event.data)
        except ValueError:
            return self
        if not isinstance(data, dict):
            return self
        if event.event_type == "user_sync":
            self._add_users(event.timestamp_ms, data.get("users"))
        elif event.event_type == "model_version_status":
            self._add_change(event.timestamp_ms, data)
        else:
            self._add_activity(event.timestamp_ms, event.event_type, data)
        return self

    def merge(self, other: EnrichmentContext) -> EnrichmentContext:
        self.events_seen += other.events_seen
        for username, at_ms in other.user_times.items():
            self._set_user(at_ms, other.users[username])
        for model, changes in other.model_changes.items():
            self.model_changes[model] = _newest(self.model_changes.get(model, []) + changes)
        for repository, activity in other.repo_activity.items():
            self.repo_activity[repository] = _newest(self.repo_activity.get(repository, []) + activity)
        return self

    def user(self, name: str) -> dict | None:
        """A directory user by username or e-mail (case-insensitive e-mail)."""
        return self.users.get(name) or self.users.get(name.lower()) if name else None

    def _add_users(self, at_ms: int, users: Any) -> None:
        for user in users if isinstance(users, list) else []:
            if isinstance(user, dict) and isinstance(user.get("username"), str) and user["username"]:
                self._set_user(at_ms, {key: str(user.get(key) or "") for key in _USER_FIELDS})

    def _set_user(self, at_ms: int, user: dict) -> None:
        username = user["username"]
        if at_ms < self.user_times.get(username, -1):
            return  # an older sync never overwrites a newer one
        self.user_times[username] = at_ms
        self.users[username] = user
        if user.get("email"):
            self.users[user["email"].lower()] = user

    def _add_change(self, at_ms: int, data: dict) -> None:
        model = data.get("model_name")
        if not isinstance(model, str) or not model:
            return
        keys = ("version", "change", "alias", "to_stage", "stage", "aliases", "run_id")
        change = {"at_ms": at_ms, **{k: data.get(k) for k in keys}}
        _append(self.model_changes.setdefault(model, []), change)

    def _add_activity(self, at_ms: int, kind: str, data: dict) -> None:
        repository = data.get("repository")
        if not isinstance(repository, str) or not repository:
            return
        if kind == "workflow_run" and data.get("status") not in (None, "completed") and not data.get("conclusion"):
            return  # a run still queued or in progress deploys nothing yet
        keys = ("workflow", "run_number", "conclusion", "actor", "html_url", "branch", "pusher", "after")
        entry = {"at_ms": at_ms, "kind": kind, **{k: data[k] for k in keys if data.get(k) is not None}}
        _append(self.repo_activity.setdefault(repository, []), entry)


def _order(entry: dict) -> tuple[int, str]:
    """Time, then the whole entry: a total order, so ties resolve the same way in every run."""
    return entry["at_ms"], json.dumps(entry, sort_keys=True)


def _append(entries: list[dict], entry: dict) -> None:
    """Add one entry; trim to the newest MAX_HISTORY only when twice that many have piled up
    (amortised: adding an event costs O(1), not a sort of the history)."""
    entries.append(entry)
    if len(entries) > 2 * MAX_HISTORY:
        entries[:] = _newest(entries)


def _newest(entries: list[dict]) -> list[dict]:
    """Duplicates dropped, the newest MAX_HISTORY kept, in time order."""
    unique = {json.dumps(e, sort_keys=True): e for e in entries}
    return sorted(unique.values(), key=_order)[-MAX_HISTORY:]


def _latest_before(entries: Iterable[dict], anchor_ms: int, lookback_ms: int) -> dict | None:
    """The newest entry in [anchor - lookback, anchor] (entries need not be sorted)."""
    candidates = [e for e in entries if anchor_ms - lookback_ms <= e["at_ms"] <= anchor_ms]
    return max(candidates, key=_order) if candidates else None


def _version_number(version: Any) -> int:
    try:
        return int(version)
    except (TypeError, ValueError):
        return -1


def describe_change(change: dict) -> str:
    """``model v12 became champion``, ``model v7 moved to Production``, ``model v3 was registered``."""
    version = f"model v{change.get('version')}" if change.get("version") else "the model"
    kind = change.get("change") or ""
    if kind == "model_version_alias.created" and change.get("alias"):
        return f"{version} became {change['alias']}"
    if kind == "model_version_alias.deleted" and change.get("alias"):
        return f"alias {change['alias']} left {version}"
    if kind == "model_version.stage_changed":
        return f"{version} moved to {change.get('to_stage') or change.get('stage')}"
    if kind == "model_version.created":
        return f"{version} was registered"
    return f"{version} changed ({kind or 'unknown change'})"


def describe_deploy(activity: dict) -> str:
    """``run #481 of deploy (success, by alice)`` or ``a push to main by bob (1a2b3c4)``."""
    if activity["kind"] == "push":
        commit = f" ({str(activity['after'])[:7]})" if activity.get("after") else ""
        by = f" by {activity['pusher']}" if activity.get("pusher") else ""
        return f"a push to {activity.get('branch') or 'a branch'}{by}{commit}"
    run = f"run #{activity['run_number']}" if activity.get("run_number") is not None else "a workflow run"
    if activity.get("workflow"):
        run += f" of {activity['workflow']}"
    details = [str(activity["conclusion"])] if activity.get("conclusion") else []
    if activity.get("actor"):
        details.append(f"by {activity['actor']}")
    return run + (f" ({', '.join(details)})" if details else "")


def _minutes(ms: int) -> str:
    return f"{max(0, round(ms / 60_000))} min"


def alert_context(alert: Alert, context: EnrichmentContext, config: EnrichmentConfig) -> dict:
    """What enrichment adds to ``alert`` (the JSON of ``Alert.context``); see the module docstring."""
    out: dict[str, Any] = {"model": alert.model_id} if alert.model_id else {}
    entry = config.owner_of(alert.model_id) if alert.model_id else None
    anchor_ms = alert.starts_at_ms or alert.timestamp_ms
    lookback_ms = config.lookback_s * 1000
    registry_model = alert.model_id
    if entry is not None:
        registry_model = entry.registry_name()
        out.update(ownership=entry.model, team=entry.team)
        if entry.slack_channel:
            out["slack_channel"] = entry.slack_channel
        if entry.repository:
            out["repository"] = entry.repository
        if entry.owner:
            user = context.user(entry.owner)
            out["owner"] = {k: user[k] for k in _USER_FIELDS if user.get(k)} if user else {"username": entry.owner}
            if user is None:
                out["owner_in_directory"] = False
    known = [
        c for c in (context.model_changes.get(registry_model, []) if registry_model else []) if c["at_ms"] <= anchor_ms
    ]
    if known:  # the registry as last seen before the episode: the newest version's state
        newest = max(known, key=lambda c: (_version_number(c.get("version")), c["at_ms"]))
        out["registry"] = {"model": registry_model, **{k: newest[k] for k in ("version", "stage", "aliases", "run_id")
                                                       if newest.get(k)}}  # fmt: skip
    what = alert.rule or alert.name
    change_models = context.model_changes.get(registry_model, []) if registry_model else []
    change = _latest_before(change_models, anchor_ms, lookback_ms)
    repository = entry.repository if entry is not None else None
    deploy = _latest_before(context.repo_activity.get(repository, []), anchor_ms, lookback_ms) if repository else None
    parts = []
    if change is not None:
        out["change"] = {**{k: v for k, v in change.items() if v is not None}, "text": describe_change(change),
                         "minutes_before": round((anchor_ms - change["at_ms"]) / 60_000)}  # fmt: skip
        parts.append(f"{what} breached {_minutes(anchor_ms - change['at_ms'])} after {describe_change(change)}")
    if deploy is not None:
        out["deploy"] = {**deploy, "text": describe_deploy(deploy),
                         "minutes_before": round((anchor_ms - deploy["at_ms"]) / 60_000)}  # fmt: skip
        lead = "deployed by" if deploy["kind"] == "workflow_run" else "after"
        if parts:
            parts.append(f"{lead} {describe_deploy(deploy)}")
        else:
            parts.append(f"{what} breached {_minutes(anchor_ms - deploy['at_ms'])} after {describe_deploy(deploy)}")
    if parts:
        out["summary"] = "; ".join(parts)
    return out
