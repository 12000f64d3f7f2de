"""Registry snapshots, their differences as events, and the state file (pure, no I/O but the state file).

A *snapshot* maps ``(model_name, version)`` to that version's state::

    {("fraud", "12"): {"stage": "Production", "status": "READY", "aliases": ["champion"],
                       "tags": {"validated": "true"}, "run_id": "0a1b...", "status_message": None,
                       "source": "s3://.../model", "created_ms": 1795996659574, "updated_ms": 1795996659690}}

:func:`diff_snapshots` turns two snapshots into ``model_version_status`` event
payloads (public contract, source ``mlflow``), one per change, in a stable
order (model, numeric version, kind of change). ``data`` always holds
``model_name``, ``version``, ``change``, ``run_id``, ``stage``, ``aliases``
(the version's state after the change) and ``environment`` (from
``environment_by_stage``: the stage first, then the aliases in order; None
when nothing maps), plus per change (names follow MLflow 3 webhooks where
one exists, so one rule matches both the gateway's webhook events and these):

================================  ==========================================  ========
``change``                        details                                     severity
================================  ==========================================  ========
``model_version.created``         ``status``, ``source``, ``tags``,           info
                                  ``created_ms`` (error when FAILED_...)
``model_version.stage_changed``   ``from_stage``, ``to_stage``                info
``model_version_alias.created``   ``alias``                                   info
``model_version_alias.deleted``   ``alias``, ``now_points_to`` (version or    info
                                  None)
``model_version_tag.set``         ``key``, ``tags`` ({key: value}),           info
                                  ``previous_value`` (None when new)
``model_version_tag.deleted``     ``key``, ``tags`` ({key: None}),            info
                                  ``previous_value``
``model_version.status_changed``  ``from_status``, ``to_status``,             info;
                                  ``status_message``                          error
                                                                              when
                                                                              FAILED_
                                                                              REGISTRATION
``model_version.deleted``         (last known state)                          warning
================================  ==========================================  ========

A new version gives one ``model_version.created`` event that carries its
aliases and tags (no separate alias/tag events); an alias that moves to it
shows as ``model_version_alias.deleted`` on the old version with
``now_points_to``. The event ``timestamp`` is the poll time (when the change
was seen): the registry's ``updated_ms`` does not move on alias changes.

:func:`model_metadata` is the view enrichment uses:
``{(name, version): {"stage", "aliases", "run_id", "tags"}}``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airis_mon.files import write_text_atomically

__all__ = [
    "EVENT_TYPE",
    "SOURCE",
    "RegisteredModelInfo",
    "Snapshot",
    "State",
    "VersionInfo",
    "VersionKey",
    "build_snapshot",
    "diff_snapshots",
    "environment_of",
    "load_state",
    "model_metadata",
    "registry_fingerprint",
    "save_state",
    "version_sort_key",
]

EVENT_TYPE = "model_version_status"
SOURCE = "mlflow"
FAILED_STATUS = "FAILED_REGISTRATION"
STATE_FORMAT = 1

VersionKey = tuple[str, str]
Snapshot = dict[VersionKey, dict[str, Any]]


@dataclass(frozen=True)
class RegisteredModelInfo:
    """A registered model's name and aliases (alias -> version)."""

    name: str
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionInfo:
    """One model version as the registry reports it (timestamps in epoch ms)."""

    model: str
    version: str
    stage: str
    status: str
    status_message: str | None
    run_id: str | None
    tags: dict[str, str]
    source: str | None
    created_ms: int | None
    updated_ms: int | None


@dataclass
class State:
    """What a poller remembers between polls: the snapshot and the configured models found missing."""

    snapshot: Snapshot = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)


def version_sort_key(key: VersionKey) -> tuple[str, int, str]:
    """Model name, then numeric version (MLflow versions are "1", "2", ...)."""
    model, version = key
    return (model, int(version), "") if version.isdigit() else (model, -1, version)


def build_snapshot(models: Iterable[RegisteredModelInfo], versions: Iterable[VersionInfo]) -> Snapshot:
    """A snapshot from registry reads: aliases come from each model's alias -> version mapping."""
    aliases_of: dict[VersionKey, list[str]] = {}
    for model in models:
        for alias, version in model.aliases.items():
            aliases_of.setdefault((model.name, str(version)), []).append(alias)
    snapshot: Snapshot = {}
    for info in versions:
        key = (info.model, info.version)
        snapshot[key] = {
            "stage": info.stage,
            "status": info.status,
            "aliases": sorted(aliases_of.get(key, [])),
            "tags": dict(sorted(info.tags.items())),
            "run_id": info.run_id,
            "status_message": info.status_message,
            "source": info.source,
            "created_ms": info.created_ms,
            "updated_ms": info.updated_ms,
        }
    return dict(sorted(snapshot.items(), key=lambda item: version_sort_key(item[0])))


def model_metadata(snapshot: Mapping[VersionKey, Mapping[str, Any]]) -> dict[VersionKey, dict[str, Any]]:
    """Per ``(model_name, version)``: ``stage``, ``aliases`` (sorted), ``run_id`` and ``tags``.

    Pure; meant for enrichment (join metrics tagged ``model_name`` /
    ``model_version`` with their registry state)::

        >>> model_metadata({("fraud", "12"): {"stage": "Production", "status": "READY",
        ...                 "aliases": ["champion"], "tags": {"team": "risk"}, "run_id": "r1"}})
        {('fraud', '12'): {'stage': 'Production', 'aliases': ['champion'], 'run_id': 'r1', 'tags': {'team': 'risk'}}}
    """
    return {
        (str(model), str(version)): {
            "stage": entry.get("stage"),
            "aliases": sorted(entry.get("aliases") or []),
            "run_id": entry.get("run_id"),
            "tags": dict(entry.get("tags") or {}),
        }
        for (model, version), entry in snapshot.items()
    }


def environment_of(entry: Mapping[str, Any], environment_by_stage: Mapping[str, str]) -> str | None:
    """The environment a version is in: its stage's mapping, else its first mapped alias."""
    lowered = {key.lower(): value for key, value in environment_by_stage.items()}
    for name in [entry.get("stage") or "", *(entry.get("aliases") or [])]:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _event(now_ms: int, severity: str, version_key: VersionKey, change: str, entry: Mapping[str, Any],
           environment_by_stage: Mapping[str, str], **details: Any) -> dict:  # fmt: skip
    data = {
        "model_name": version_key[0],
        "version": version_key[1],
        "change": change,
        **details,
        "run_id": entry.get("run_id"),
        "stage": entry.get("stage"),
        "aliases": list(entry.get("aliases") or []),
        "environment": environment_of(entry, environment_by_stage),
    }
    return {"timestamp": now_ms, "event_type": EVENT_TYPE, "source": SOURCE, "severity": severity, "data": data}


def diff_snapshots(previous: Snapshot, current: Snapshot, now_ms: int,
                   environment_by_stage: Mapping[str, str] | None = None) -> list[dict]:  # fmt: skip
    """Event payloads for every change from ``previous`` to ``current`` (see the module docstring)."""
    env = environment_by_stage or {}
    alias_target = {(model, alias): version for (model, version), e in current.items() for alias in e["aliases"]}
    events: list[dict] = []
    for key in sorted(set(previous) | set(current), key=version_sort_key):
        old, new = previous.get(key), current.get(key)
        if old is None:
            severity = "error" if new["status"] == FAILED_STATUS else "info"
            events.append(_event(now_ms, severity, key, "model_version.created", new, env, status=new["status"],
                                 status_message=new.get("status_message"), source=new.get("source"),
                                 tags=dict(new["tags"]), created_ms=new.get("created_ms")))  # fmt: skip
            continue
        if new is None:
            events.append(_event(now_ms, "warning", key, "model_version.deleted", old, env, status=old.get("status")))
            continue
        if old.get("status") != new["status"]:
            severity = "error" if new["status"] == FAILED_STATUS else "info"
            events.append(_event(now_ms, severity, key, "model_version.status_changed", new, env,
                                 from_status=old.get("status"), to_status=new["status"],
                                 status_message=new.get("status_message")))  # fmt: skip
        if old.get("stage") != new["stage"]:
            events.append(_event(now_ms, "info", key, "model_version.stage_changed", new, env,
                                 from_stage=old.get("stage"), to_stage=new["stage"]))  # fmt: skip
        old_aliases, new_aliases = set(old.get("aliases") or []), set(new["aliases"])
        for alias in sorted(new_aliases - old_aliases):
            events.append(_event(now_ms, "info", key, "model_version_alias.created", new, env, alias=alias))
        for alias in sorted(old_aliases - new_aliases):
            events.append(_event(now_ms, "info", key, "model_version_alias.deleted", new, env, alias=alias,
                                 now_points_to=alias_target.get((key[0], alias))))  # fmt: skip
        old_tags, new_tags = old.get("tags") or {}, new["tags"]
        for tag in sorted(new_tags):
            if tag not in old_tags or old_tags[tag] != new_tags[tag]:
                events.append(_event(now_ms, "info", key, "model_version_tag.set", new, env, key=tag,
                                     tags={tag: new_tags[tag]}, previous_value=old_tags.get(tag)))  # fmt: skip
        for tag in sorted(set(old_tags) - set(new_tags)):
            events.append(_event(now_ms, "info", key, "model_version_tag.deleted", new, env, key=tag,
                                 tags={tag: None}, previous_value=old_tags[tag]))  # fmt: skip
    return events


def registry_fingerprint(registry_uri: str) -> str:
    """A short hash naming the registry a state file belongs to (the URI itself is not stored)."""
    return hashlib.sha256(registry_uri.encode("utf-8")).hexdigest()[:16]


def save_state(path: str | os.PathLike, state: State, fingerprint: str) -> None:
    """Write ``state`` as JSON atomically: a temporary file in the same folder, fsync, rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "format": STATE_FORMAT,
        "registry": fingerprint,
        "missing_models": sorted(state.missing),
        "versions": [
            {"model": model, "version": version, **entry}
            for (model, version), entry in sorted(state.snapshot.items(), key=lambda item: version_sort_key(item[0]))
        ],
    }
    write_text_atomically(target, json.dumps(document, sort_keys=True, indent=1))


def load_state(path: str | os.PathLike, fingerprint: str) -> State:
    """The state saved by :func:`save_state`; an empty state when the file does not exist.

    Raises ``ValueError`` when the file is unreadable, malformed, of another
    format, or was written for another registry.
    """
    target = Path(path)
    if not target.exists():
        return State()
    try:
        document = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read state file {target}: {error}") from None
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        raise ValueError(f"state file {target}: unknown format")
    if document.get("registry") != fingerprint:
        raise ValueError(f"state file {target} was written for another registry")
    state = State(missing={str(name) for name in document.get("missing_models") or []})
    try:
        for row in document.get("versions") or []:
            entry = dict(row)
            key = (str(entry.pop("model")), str(entry.pop("version")))
            entry["aliases"] = sorted(str(a) for a in entry.get("aliases") or [])
            entry["tags"] = {str(k): str(v) for k, v in (entry.get("tags") or {}).items()}
            entry["stage"] = str(entry.get("stage"))
            entry["status"] = str(entry.get("status"))
            state.snapshot[key] = entry
    except (TypeError, KeyError, ValueError, AttributeError) as error:
        raise ValueError(f"state file {target}: malformed version entry: {error}") from None
    return state
