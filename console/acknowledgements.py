"""Who acknowledged which alert episode, and the PagerDuty ``acknowledge`` it sends through the live outbox.

The record: ``OUTPUT/acknowledgements.jsonl``, append-only, one JSON object a line, each line fsync'ed
before :meth:`AcknowledgementStore.record` returns::

    {"type": "ack", "alert_id", "by", "via", "at_ms"}
    {"type": "delivery", "alert_id", "sink", "notification", "outcome", "status", "attempts", "retries",
     "reason", "at_ms"}

``via`` is ``slack`` | ``console`` | ``api``; ``by`` who (``slack:<user>``, a console token's name);
``at_ms`` epoch milliseconds UTC. The first ``ack`` line of an episode wins: acknowledging again changes
nothing and answers the first one. A ``delivery`` line is the outcome of a notification the
acknowledgement caused: ``acknowledge`` (a PagerDuty event, written by the live runner's outbox) or
``slack_update`` (the Slack message update through ``response_url``); ``outcome`` is ``delivered`` |
``dead_lettered``, ``status`` the last HTTP status (None without a reply). Writers in several processes
(the console, the live runner's outbox) take an exclusive ``flock`` on the file to append; a line torn by
a crash is ended on open and ignored.

:class:`Acknowledger` ties it together (``acknowledge(alert_id, by, via)``):

1. the episode is looked up: its stored notifications (``OUTPUT/alerts/date=*/*.parquet``) or a trigger
   still waiting in the outbox; unknown ids are answered ``found=False`` and nothing is recorded;
2. every configured ``pagerduty`` sink that was sent the episode's trigger (or a repeat) — a
   ``delivered`` line for it in ``OUTPUT/notification_history.jsonl``, or one still pending in
   ``STATE/outbox/c*.jsonl`` — gets an ``acknowledge`` notification: the trigger's Alert with
   ``notification="acknowledge"`` and the acknowledgement's time, written atomically as
   ``STATE/outbox/ack-<alert id>.jsonl`` (one ``{"key": "ack:<alert id>:<sink>", "sink", "alert"}`` line a
   sink). The live runner's outbox delivers it after every pending cycle file (so a pending trigger goes
   first), exactly once (its key memory), and records it in the notification history. A resolved episode
   is still recorded as acknowledged but sends nothing;
3. the ``ack`` line is appended. The outbox file is written first: a crash between the two leaves an
   unrecorded acknowledgement whose PagerDuty event is sent; acknowledging again records it and sends
   nothing more (same keys).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.dataset as ds

from airis_mon.files import write_text_atomically
from airis_mon.schema import Alert

__all__ = [
    "ACK_FILE",
    "ACK_VIAS",
    "ALERT_ID_PATTERN",
    "DELIVERY_NOTIFICATIONS",
    "AckResult",
    "Acknowledgement",
    "AcknowledgementStore",
    "Acknowledger",
    "Delivery",
    "ack_outbox_path",
    "episode_notifications",
    "find_episode_trigger",
]

LOG = logging.getLogger("airis_mon.console.acknowledgements")

ACK_FILE = "acknowledgements.jsonl"
ACK_VIAS = ("slack", "console", "api")
DELIVERY_NOTIFICATIONS = ("acknowledge", "slack_update")
#: what an alert (episode) id may look like here: it names a file in the outbox
ALERT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MAX_BY_CHARS = 200
_HISTORY_FILE = "notification_history.jsonl"  # pipelines.live.outbox.HISTORY_FILE
_ALERT_FIELDS = list(Alert._fields)


@dataclass(frozen=True)
class Acknowledgement:
    """One episode's acknowledgement: who (``by``), how (``via``: slack | console | api), when (epoch ms)."""

    alert_id: str
    by: str
    via: str
    at_ms: int


@dataclass(frozen=True)
class Delivery:
    """The outcome of a notification an acknowledgement caused (``notification``: acknowledge | slack_update)."""

    alert_id: str
    sink: str
    notification: str
    outcome: str  # delivered | dead_lettered
    status: int | None
    attempts: int
    retries: int
    reason: str
    at_ms: int


@dataclass(frozen=True)
class AckResult:
    """What :meth:`Acknowledger.acknowledge` did.

    ``ack``: the episode's acknowledgement (the first one when ``first`` is False; None when not ``found``);
    ``pagerduty_sinks``: the sinks an acknowledge was queued for by this call (empty on a repeat, for a
    resolved episode, or when no PagerDuty sink was sent the trigger)."""

    ack: Acknowledgement | None
    first: bool
    pagerduty_sinks: tuple[str, ...]
    found: bool
    resolved: bool = False


def _check_alert_id(alert_id: str) -> str:
    if not isinstance(alert_id, str) or not ALERT_ID_PATTERN.fullmatch(alert_id):
        raise ValueError("alert_id must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'")
    return alert_id


def _end_torn_line(handle) -> None:
    """A crash mid-append leaves a line without its newline: end it (the torn line is then ignored)."""
    handle.seek(0, os.SEEK_END)
    if handle.tell():
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) != b"\n":
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())


class AcknowledgementStore:
    """``OUTPUT/acknowledgements.jsonl`` (see the module docstring); thread-safe, and safe with other
    processes appending (``flock``). Reads pick up lines other processes appended."""

    def __init__(self, output: str | Path):
        self.path = Path(output) / ACK_FILE
        self._lock = threading.Lock()
        self._offset = 0  # bytes of the file already read
        self._acks: dict[str, Acknowledgement] = {}
        self._deliveries: list[Delivery] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked_file() as handle:
            _end_torn_line(handle)
            self._read_new(handle)

    # --- reading ---------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked_file(self) -> Iterator:
        """The file opened for reading and appending, under an exclusive ``flock`` (other processes too)."""
        with open(self.path, "ab+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read_new(self, handle) -> None:
        """Parse the complete lines appended since the last read (a line without its newline waits)."""
        handle.seek(self._offset)
        data = handle.read()
        end = data.rfind(b"\n") + 1
        for raw in data[:end].splitlines():
            self._apply(raw)
        self._offset += end

    def _refresh(self) -> None:
        if self.path.exists() and self.path.stat().st_size > self._offset:
            with open(self.path, "rb") as handle:
                self._read_new(handle)

    def _apply(self, raw: bytes) -> None:
        try:
            line = json.loads(raw)
            if line["type"] == "ack":
                ack = Acknowledgement(line["alert_id"], line["by"], line["via"], int(line["at_ms"]))
                self._acks.setdefault(ack.alert_id, ack)  # the first one wins
            elif line["type"] == "delivery":
                self._deliveries.append(Delivery(**{k: line[k] for k in Delivery.__dataclass_fields__}))
        except (ValueError, KeyError, TypeError):
            return  # a line torn by a crash (ended on open), or not ours: ignored

    def get(self, alert_id: str) -> Acknowledgement | None:
        """The episode's (first) acknowledgement, None if it has none."""
        with self._lock:
            self._refresh()
            return self._acks.get(alert_id)

    def all(self) -> list[Acknowledgement]:
        """Every episode's acknowledgement, oldest first."""
        with self._lock:
            self._refresh()
            return sorted(self._acks.values(), key=lambda a: (a.at_ms, a.alert_id))

    def deliveries(self, alert_id: str | None = None) -> list[Delivery]:
        """The delivery lines (of one episode when ``alert_id`` is given), in file order."""
        with self._lock:
            self._refresh()
            return [d for d in self._deliveries if alert_id is None or d.alert_id == alert_id]

    # --- writing ---------------------------------------------------------------------------------------------

    def _append(self, handle, line: dict) -> None:
        handle.seek(0, os.SEEK_END)
        handle.write((json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())

    def record(self, alert_id: str, by: str, via: str, at_ms: int) -> tuple[Acknowledgement, bool]:
        """Record an acknowledgement; returns it and True, or the episode's first one and False (nothing
        written). ``at_ms``: epoch ms. Raises ``ValueError`` naming a bad field."""
        _check_alert_id(alert_id)
        if not isinstance(by, str) or not by.strip() or len(by) > _MAX_BY_CHARS:
            raise ValueError(f"by must be a non-empty string of at most {_MAX_BY_CHARS} characters")
        if via not in ACK_VIAS:
            raise ValueError(f"via must be one of {', '.join(ACK_VIAS)}, not {via!r}")
        if isinstance(at_ms, bool) or not isinstance(at_ms, int) or at_ms < 0:
            raise ValueError("at_ms must be a non-negative integer (epoch ms)")
        with self._lock, self._locked_file() as handle:
            self._read_new(handle)  # another process may have acknowledged it meanwhile
            if alert_id in self._acks:
                return self._acks[alert_id], False
            ack = Acknowledgement(alert_id, by, via, at_ms)
            self._append(handle, {"type": "ack", **asdict(ack)})
            self._read_new(handle)
            return self._acks[alert_id], True

    def record_delivery(
        self,
        alert_id: str,
        sink: str,
        notification: str,
        outcome: str,
        status: int | None,
        attempts: int,
        retries: int,
        reason: str,
        at_ms: int,
    ) -> Delivery:
        """Append a delivery line (``notification``: acknowledge | slack_update; ``at_ms``: epoch ms).
        ``reason`` must never hold a URL or secret (the delivery layer's reasons do not)."""
        if notification not in DELIVERY_NOTIFICATIONS:
            raise ValueError(f"notification must be one of {', '.join(DELIVERY_NOTIFICATIONS)}, not {notification!r}")
        delivery = Delivery(alert_id, sink, notification, outcome, status, attempts, retries, reason or "", at_ms)
        with self._lock, self._locked_file() as handle:
            self._append(handle, {"type": "delivery", **asdict(delivery)})
            self._read_new(handle)
        return delivery


# --- the episode's stored notifications ----------------------------------------------------------------------


def _date_folders(output: Path) -> list[Path]:
    """``OUTPUT/alerts/date=*`` folders, newest date first."""
    root = output / "alerts"
    if not root.is_dir():
        return []
    return sorted((p for p in root.glob("date=*") if p.is_dir()), key=lambda p: p.name, reverse=True)


def episode_notifications(output: str | Path, alert_id: str) -> list[Alert]:
    """Every stored notification of one episode (``OUTPUT/alerts``), oldest first.

    Date folders are read newest first, each as one pyarrow dataset filtered on ``id`` (row-group statistics
    skip most of the many small files' data), and the scan stops at the folder holding the trigger: a
    partition is the notification's date, so nothing of the episode is older. An unknown id reads every
    folder's ``id`` column once."""
    _check_alert_id(alert_id)
    found: list[Alert] = []
    for folder in _date_folders(Path(output)):
        files = sorted(str(p) for p in folder.glob("*.parquet"))
        if not files:
            continue
        table = ds.dataset(files, format="parquet").to_table(columns=_ALERT_FIELDS, filter=ds.field("id") == alert_id)
        found.extend(Alert(**row) for row in table.to_pylist())
        if any(a.notification == "trigger" for a in found):
            break
    return sorted(found, key=lambda a: (a.timestamp_ms, a.notification != "trigger"))


def find_episode_trigger(output: str | Path, alert_id: str) -> Alert | None:
    """The episode's stored trigger notification, or its latest stored notification when the trigger is not
    stored; None when nothing of the episode is stored."""
    notifications = episode_notifications(output, alert_id)
    triggers = [a for a in notifications if a.notification == "trigger"]
    if triggers:
        return triggers[0]
    return notifications[-1] if notifications else None


# --- the outbox ------------------------------------------------------------------------------------------------


def ack_outbox_path(state_dir: str | Path, alert_id: str) -> Path:
    """``STATE/outbox/ack-<alert id>.jsonl``: the episode's acknowledge notifications."""
    return Path(state_dir) / "outbox" / f"ack-{_check_alert_id(alert_id)}.jsonl"


def _jsonl(path: Path) -> Iterator[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:  # delivered and removed meanwhile
        return
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if isinstance(entry, dict):
            yield entry


def _pending_cycle_lines(state_dir: Path, alert_id: str) -> list[dict]:
    """Outbox lines of the episode still waiting in ``STATE/outbox/c*.jsonl``."""
    folder = state_dir / "outbox"
    lines = []
    for path in sorted(folder.glob("c*.jsonl")) if folder.is_dir() else []:
        lines += [e for e in _jsonl(path) if isinstance(e.get("alert"), dict) and e["alert"].get("id") == alert_id]
    return lines


class Acknowledger:
    """Acknowledges episodes: the record and the PagerDuty acknowledge (see the module docstring).

    ``config``: the loaded :class:`airis_mon.config.Config` (its ``pagerduty`` sinks); ``output``: the output
    folder; ``state_dir``: the live runner's state folder (``config.live.state_dir`` or ``OUTPUT/state``);
    ``clock``: epoch seconds. Thread-safe."""

    def __init__(self, config, output: str | Path, state_dir: str | Path, store: AcknowledgementStore, clock=time.time):
        self._config = config
        self.output = Path(output)
        self.state_dir = Path(state_dir)
        self.store = store
        self._clock = clock
        self._lock = threading.Lock()

    def pagerduty_sink_names(self) -> tuple[str, ...]:
        """The configured ``type: pagerduty`` sinks."""
        return tuple(s.name for s in self._config.sinks if s.type == "pagerduty")

    def acknowledge(self, alert_id: str, by: str, via: str) -> AckResult:
        """Acknowledge episode ``alert_id`` for ``by`` (who) via ``via`` (slack | console | api).

        Raises ``ValueError`` naming a bad field; an unknown episode is ``found=False`` (nothing recorded)."""
        _check_alert_id(alert_id)
        if via not in ACK_VIAS:
            raise ValueError(f"via must be one of {', '.join(ACK_VIAS)}, not {via!r}")
        with self._lock:
            existing = self.store.get(alert_id)
            if existing is not None:
                return AckResult(existing, False, (), True)
            stored = episode_notifications(self.output, alert_id)
            pending = _pending_cycle_lines(self.state_dir, alert_id)
            notifications = stored + [Alert(**e["alert"]) for e in pending]
            if not notifications:
                return AckResult(None, False, (), False)
            at_ms = int(self._clock() * 1000)
            resolved = any(a.notification == "resolve" for a in notifications) or self._resolve_sent(alert_id)
            sinks: tuple[str, ...] = ()
            if not resolved:
                sinks = self._paged_sinks(alert_id, pending)
                if sinks:
                    self._queue_acknowledge(alert_id, notifications, sinks, at_ms)
            ack, first = self.store.record(alert_id, by, via, at_ms)
            LOG.info("alert %s acknowledged by %s via %s (PagerDuty: %s)", alert_id, by, via, ", ".join(sinks) or "-")
            return AckResult(ack, first, sinks if first else (), True, resolved)

    def _history(self) -> Iterator[dict]:
        yield from _jsonl(self.output / _HISTORY_FILE)

    def _resolve_sent(self, alert_id: str) -> bool:
        return any(e.get("alert_id") == alert_id and e.get("notification") == "resolve" for e in self._history())

    def _paged_sinks(self, alert_id: str, pending: list[dict]) -> tuple[str, ...]:
        """The PagerDuty sinks that have (or will have) an incident for the episode: a delivered trigger or
        repeat in the history, or one pending in a cycle file."""
        names = set(self.pagerduty_sink_names())
        paged = {
            e.get("sink")
            for e in self._history()
            if e.get("alert_id") == alert_id
            and e.get("notification") in ("trigger", "repeat")
            and e.get("outcome") == "delivered"
        }
        paged |= {e.get("sink") for e in pending if e["alert"].get("notification") in ("trigger", "repeat")}
        return tuple(sorted(names & paged))

    def _queue_acknowledge(self, alert_id: str, notifications: list[Alert], sinks: tuple[str, ...], at_ms: int):
        triggers = [a for a in notifications if a.notification == "trigger"]
        base = triggers[0] if triggers else max(notifications, key=lambda a: a.timestamp_ms)
        alert = base._replace(
            notification="acknowledge",
            timestamp_ms=at_ms,
            duration_s=max(0.0, (at_ms - base.starts_at_ms) / 1000),
        )
        lines = [
            json.dumps({"key": f"ack:{alert_id}:{sink}", "sink": sink, "alert": alert._asdict()}, allow_nan=True)
            for sink in sinks
        ]
        path = ack_outbox_path(self.state_dir, alert_id)
        write_text_atomically(path, "".join(line + "\n" for line in lines))
