"""The live runner's durable state: what has been read, evaluated and promised.

Everything a cycle needs from the cycles before it lives in one JSON file,
``STATE/checkpoint.json``, replaced atomically (temporary file, fsync,
rename, fsync of the folder) when a cycle commits:

- ``cycle``: the number of the last committed cycle;
- ``closed_until_ms``: every window ending at or before this (epoch ms) was
  aggregated, stored and evaluated; a point for such a window is late;
- ``data_end_ms``: the end of the newest window seen (the horizon of a final flush);
- ``rules``: per (rule, source, group) the engine's
  :class:`~transforms.rules.engine.RuleState` and the partial windows whose
  rule window is not complete yet (only groups that are pending or firing,
  have waiting windows, or belong to a no-data rule);
- ``carry``: Parquet files (``STATE/carry/cNNNNNNNN.parquet``) of the normalized points of windows still
  open, each with the time of its earliest point (epoch ms): a cycle reads only the files holding a point
  of a window it closes, and writes one file of the points it leaves open;
- ``context_events``: the newest enrichment-context events (directory,
  registry, CI), so alerts of later cycles still know what changed;
- ``files_read``, ``last_poll_ms`` and ``last_success_ms``: which recorded
  files were read, when each polled integration last ran, and each
  integration's newest successful health record.

Notifications of committed cycles wait in ``STATE/outbox/`` (see
:mod:`pipelines.live.outbox`).

Before a cycle runs, its *plan* (the spool segments and files it reads, the
clock value it evaluates at) is written to ``STATE/plan.json``. A cycle killed
half-way is run again from its plan: same inputs, same clock, same file
names, so storage is overwritten with identical files and nothing is stored
twice. The plan is removed once its segments are marked processed.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airis_mon.files import fsync_directory, write_text_atomically
from airis_mon.schema import Event
from sinks.delivery.transform import idempotency_key
from transforms.rules.checkpointed import RuleEntry

__all__ = [
    "Checkpoint",
    "CyclePlan",
    "decode_context",
    "decode_data_end",
    "decode_entries",
    "decode_policy",
    "encode_context",
    "encode_data_end",
    "encode_entries",
    "encode_health",
    "encode_outbox",
    "encode_policy",
    "last_successes",
    "load_checkpoint",
    "load_plan",
    "save_checkpoint",
    "save_plan",
]

CHECKPOINT = "checkpoint.json"
PLAN = "plan.json"
FORMAT = 1


@dataclass
class Checkpoint:
    """The state committed by the last cycle (see the module docstring)."""

    instance: str = field(default_factory=lambda: secrets.token_hex(4))
    cycle: int = 0
    closed_until_ms: int | None = None
    data_end_ms: int | None = None
    rules: list[RuleEntry] = field(default_factory=list)
    carry: list[list] = field(default_factory=list)  # [path, earliest point (epoch ms)]
    context_events: list[Event] = field(default_factory=list)
    files_read: dict[str, list[list]] = field(default_factory=dict)
    last_poll_ms: dict[str, int] = field(default_factory=dict)
    last_success_ms: dict[str, int] = field(default_factory=dict)
    notify_policy: dict = field(default_factory=dict)  # the notification policy's dispatcher state (JSON)

    def run_key(self, cycle: int) -> str:
        """Storage file names of ``cycle``: unique per state folder and cycle, the same on a re-run."""
        return f"live{self.instance}c{cycle:08d}"

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "instance": self.instance,
            "cycle": self.cycle,
            "closed_until_ms": self.closed_until_ms,
            "data_end_ms": self.data_end_ms,
            "rules": [entry.to_json() for entry in self.rules],
            "carry": self.carry,
            "context_events": [list(event) for event in self.context_events],
            "files_read": self.files_read,
            "last_poll_ms": self.last_poll_ms,
            "last_success_ms": self.last_success_ms,
            "notify_policy": self.notify_policy,
        }

    @classmethod
    def from_json(cls, data: dict) -> Checkpoint:
        if data.get("format") != FORMAT:
            raise ValueError(f"checkpoint format {data.get('format')!r} is not {FORMAT}")
        return cls(
            instance=data["instance"],
            cycle=data["cycle"],
            closed_until_ms=data["closed_until_ms"],
            data_end_ms=data["data_end_ms"],
            rules=[RuleEntry.from_json(entry) for entry in data["rules"]],
            carry=data["carry"],
            context_events=[Event(*event) for event in data["context_events"]],
            files_read=data["files_read"],
            last_poll_ms=data["last_poll_ms"],
            last_success_ms=data["last_success_ms"],
            notify_policy=data.get("notify_policy") or {},
        )


@dataclass(frozen=True)
class CyclePlan:
    """What one cycle reads and the clock it evaluates at, fixed before it runs.

    ``segments``: integration name -> spool segment paths; ``files``: integration
    name -> ``[path, size, mtime_ns]`` of recorded files read for the first time;
    ``polls``: the polled integrations due this cycle; ``now_ms``: the clock
    (epoch ms); ``closed_until_ms``: windows ending at or before this are
    evaluated this cycle; ``final``: evaluate every window (end of input).
    """

    cycle: int
    now_ms: int
    closed_until_ms: int
    segments: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[list]] = field(default_factory=dict)
    polls: list[str] = field(default_factory=list)
    final: bool = False

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _write_json(path: Path, document: Any) -> None:
    write_text_atomically(path, json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")


def load_checkpoint(state_dir: Path) -> Checkpoint:
    """The committed checkpoint, or a new one when the folder has none."""
    path = state_dir / CHECKPOINT
    if not path.exists():
        return Checkpoint()
    return Checkpoint.from_json(json.loads(path.read_text(encoding="utf-8")))


def save_checkpoint(state_dir: Path, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint atomically and durably (this is the commit of a cycle)."""
    _write_json(state_dir / CHECKPOINT, checkpoint.to_json())


def load_plan(state_dir: Path) -> CyclePlan | None:
    """The plan of a cycle that started and has not finished, if any."""
    path = state_dir / PLAN
    if not path.exists():
        return None
    return CyclePlan(**json.loads(path.read_text(encoding="utf-8")))


def save_plan(state_dir: Path, plan: CyclePlan | None) -> None:
    """Write (or, with None, remove) the plan, durably."""
    path = state_dir / PLAN
    if plan is None:
        path.unlink(missing_ok=True)
        fsync_directory(state_dir)
        return
    _write_json(path, plan.to_json())


# The staging files one cycle's pipeline writes and its commit reads (STATE/cycles/cNNNNNNNN/).
RULES_FILE = "rules.jsonl"
CONTEXT_FILE = "context.jsonl"
OUTBOX_FILE = "outbox.jsonl"
DATA_END_FILE = "data_end.json"
CARRY_FILE = "carry.parquet"
HEALTH_FILE = "health.jsonl"
NOTIFY_POLICY_FILE = "notify_policy.json"
#: Context events kept between cycles (the newest; user syncs: the newest per source).
MAX_CONTEXT_EVENTS = 2_000
_LIFECYCLE = {"trigger": 0, "repeat": 1, "resolve": 2}


def encode_policy(states: list[dict]) -> str:
    """The notification policy's dispatcher state (one element) -> JSON; empty without one."""
    return json.dumps(states[0], sort_keys=True) if states else ""


def decode_policy(text: str, previous: dict) -> dict:
    """The staged dispatcher state, or ``previous`` when the cycle staged none."""
    return json.loads(text) if text.strip() else previous


def encode_entries(entries: list[RuleEntry]) -> str:
    """Rule entries -> JSON lines, sorted by key (deterministic)."""
    lines = sorted(json.dumps(entry.to_json(), sort_keys=True, allow_nan=True) for entry in entries)
    return "".join(line + "\n" for line in lines)


def decode_entries(text: str) -> list[RuleEntry]:
    return [RuleEntry.from_json(json.loads(line)) for line in text.splitlines() if line]


def encode_context(events: list[Event]) -> str:
    """The context events worth keeping: the newest user sync per source and the newest other events."""
    ordered = sorted(set(events))
    syncs: dict[str, Event] = {}
    for event in ordered:
        if event.event_type == "user_sync":
            syncs[event.source] = event
    others = [event for event in ordered if event.event_type != "user_sync"][-MAX_CONTEXT_EVENTS:]
    kept = sorted([*syncs.values(), *others])
    return "".join(json.dumps(list(event)) + "\n" for event in kept)


def decode_context(text: str) -> list[Event]:
    return [Event(*json.loads(line)) for line in text.splitlines() if line]


def encode_outbox(routed: list[tuple[str, object]]) -> str:
    """(sink name, alert) pairs -> JSON lines ``{"key", "sink", "alert"}`` in delivery order: time, then
    episode, then trigger before repeat before resolve. ``key`` is the notification's idempotency key."""
    ordered = sorted(routed, key=lambda pair: (pair[1].timestamp_ms, pair[1].id, _LIFECYCLE[pair[1].notification],
                                               pair[0]))  # fmt: skip
    lines = [
        json.dumps({"key": idempotency_key(sink, alert), "sink": sink, "alert": alert._asdict()}, allow_nan=True)
        for sink, alert in ordered
    ]
    return "".join(line + "\n" for line in lines)


def encode_health(records: list) -> str:
    """Health records -> JSON lines (sorted): the runner keeps each integration's last success from them."""
    return "".join(json.dumps(r._asdict(), sort_keys=True) + "\n" for r in sorted(records))


def last_successes(text: str) -> dict[str, int]:
    """Integration -> time (epoch ms) of its newest successful health record in a staged health file."""
    newest: dict[str, int] = {}
    for line in text.splitlines():
        record = json.loads(line)
        if record["ok"]:
            name = record["integration"]
            newest[name] = max(newest.get(name, 0), record["timestamp_ms"])
    return newest


def encode_data_end(ends: list[int]) -> str:
    return json.dumps({"data_end_ms": max(ends, default=None)}) + "\n"


def decode_data_end(text: str) -> int | None:
    return json.loads(text)["data_end_ms"]
