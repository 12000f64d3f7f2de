"""``WriteToNotificationLog``: the alerts routed to this sink, appended to a
local file, one JSON object a line, each notification exactly once.

The local stand-in for a pager or a chat channel: it shows what would have
been sent, to whom, and makes routing testable end to end. The file is a
history: it is only ever appended to, never rewritten. A notification is
identified by :func:`sinks.delivery.idempotency_key` (sink, episode id,
notification kind, time), and a line is appended only when the file does not
hold that key yet, so a re-run of the same input, a retried bundle or a
repeated streaming pane adds nothing, and a run without alerts does not touch
the file at all.

Each bundle appends its new notifications in one write, sorted by (time, id,
notification), under an exclusive ``flock`` of the file (several local worker
processes may append to one log). A line torn by a crash is left in place and
ignored: the notification it held is appended again in full.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import apache_beam as beam

from airis_mon import streams
from airis_mon.beamutil import finish_bundle_output
from airis_mon.files import fsync_directory, write_text_atomically
from airis_mon.schema import Alert
from sinks.delivery import idempotency_key
from sinks.notification_log.config import NotificationLogConfig

__all__ = ["NotificationLog", "WriteToNotificationLog"]

COMPONENT = "notification_log"
_LIFECYCLE = {"trigger": 0, "repeat": 1, "resolve": 2}


class _Identity(NamedTuple):
    """The fields of an :class:`~airis_mon.schema.Alert` that :func:`idempotency_key` reads."""

    id: str
    notification: str
    timestamp_ms: int


def _order(alert: Alert) -> tuple:
    return alert.timestamp_ms, alert.id, _LIFECYCLE.get(alert.notification, len(_LIFECYCLE)), alert.notification


def _json_line(alert: Alert) -> str:
    return json.dumps(alert._asdict(), sort_keys=True, allow_nan=True) + "\n"


class NotificationLog:
    """One sink's append-only JSON-lines file (no Beam): :meth:`append` adds only notifications it lacks.

    The keys already in the file are cached with the byte offset read up to, so each append reads only
    what others appended since (the whole file again if it was replaced or truncated).
    """

    def __init__(self, sink: str, path: str | os.PathLike):
        self.sink = sink
        self.path = Path(path)
        self._keys: set[str] = set()
        self._file_id: tuple[int, int] | None = None  # (device, inode) of the file read
        self._read_up_to = 0  # bytes: the end of the last complete line read

    def key(self, alert: Alert | _Identity) -> str:
        """The notification's idempotency key for this sink."""
        return idempotency_key(self.sink, alert)

    def append(self, alerts: Iterable[Alert]) -> list[Alert]:
        """Append the alerts whose key is neither in the file nor earlier in ``alerts``, in (time, id,
        notification) order, and fsync; return them. Nothing is written (or created) when none is new."""
        pending = {self.key(a): a for a in alerts}  # one per key: equal keys are the same notification
        if not pending:
            return []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        with open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            torn = self._read_new_keys(handle)
            new = sorted((a for k, a in pending.items() if k not in self._keys), key=_order)
            if not new:
                return []
            data = "".join(_json_line(a) for a in new).encode("utf-8")
            handle.write(b"\n" + data if torn else data)  # a torn last line stays a line of its own
            handle.flush()
            os.fsync(handle.fileno())
            self._keys.update(self.key(a) for a in new)
            self._read_up_to = handle.tell()
        if created:
            fsync_directory(self.path.parent)
        return new

    def keys(self) -> set[str]:
        """Every idempotency key the file holds now."""
        if not self.path.exists():
            return set()
        with open(self.path, "rb") as handle:
            self._read_new_keys(handle)
        return set(self._keys)

    def _read_new_keys(self, handle) -> bool:
        """Add the keys of the lines appended since the last read; True if the file ends in a torn line."""
        stat = os.fstat(handle.fileno())
        if self._file_id != (stat.st_dev, stat.st_ino) or stat.st_size < self._read_up_to:
            self._keys, self._read_up_to = set(), 0
            self._file_id = (stat.st_dev, stat.st_ino)
        handle.seek(self._read_up_to)
        data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        for line in complete.splitlines():
            identity = _identity_of(line)
            if identity is not None:
                self._keys.add(self.key(identity))
        self._read_up_to += len(complete)
        return len(complete) < len(data)


def _identity_of(line: bytes) -> _Identity | None:
    """The identity of one logged notification; None for a line that is not one (a torn write)."""
    try:
        record = json.loads(line)
        return _Identity(str(record["id"]), str(record["notification"]), int(record["timestamp_ms"]))
    except (ValueError, KeyError, TypeError):
        return None


class _AppendToLog(beam.DoFn):
    """Alerts -> appended to the log once per bundle; outputs the log's path when lines were added."""

    def __init__(self, sink: str, path: str):
        self._sink = sink
        self._path = path
        self._written = beam.metrics.Metrics.counter(COMPONENT, "notifications_written")

    def setup(self):
        self._log = NotificationLog(self._sink, self._path)

    def start_bundle(self):
        self._pending: list[Alert] = []

    def process(self, alert: Alert) -> None:
        self._pending.append(alert)

    def finish_bundle(self):
        alerts, self._pending = self._pending, []
        appended = self._log.append(alerts)
        if appended:
            self._written.inc(len(appended))
            yield finish_bundle_output(self._path)


def _replace(path: str, alerts: list[Alert]) -> str:
    ordered = sorted(alerts, key=_order)
    write_text_atomically(path, "".join(_json_line(a) for a in ordered))
    beam.metrics.Metrics.counter(COMPONENT, "notifications_written").inc(len(ordered))
    return path


class WriteToNotificationLog(beam.PTransform):
    """Alerts -> appended, each notification once, to the sink's JSON-lines file (batch and streaming).

    Returns ``{"delivered": paths, "dead_letters": []}``, the output shape every notification sink has:
    the log's path once per append that added lines. The counter ``notification_log/notifications_written``
    counts the lines appended.

    ``replace=True`` (batch only) is for a run's own result file rather than a history: the file is
    rewritten with exactly this run's alerts, sorted, even when there are none.
    """

    def __init__(self, config: NotificationLogConfig, replace: bool = False):
        super().__init__()
        if not config.path:
            raise ValueError(f"{config.name}: no path (set sinks[].path or --output)")
        self._sink = config.name
        self._path = str(config.path)
        self._replace = replace

    def expand(self, alerts: beam.PCollection) -> Mapping[str, beam.PCollection]:
        if self._replace:
            written = (
                alerts.pipeline
                | "LogPath" >> beam.Create([self._path])
                | "ReplaceLog" >> beam.Map(_replace, beam.pvalue.AsList(alerts))
            )
        else:
            written = alerts | "AppendToLog" >> beam.ParDo(_AppendToLog(self._sink, self._path))
        no_failures = alerts.pipeline | "NoDeadLetters" >> beam.Create([])
        return {"delivered": written, streams.DEAD_LETTERS: no_failures}
