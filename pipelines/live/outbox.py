"""``Outbox``: the live runner's notifications, delivered once each, after their cycle committed.

A cycle's routed notifications are committed with it as one file,
``STATE/outbox/cNNNNNNNN.jsonl`` (``{"key", "sink", "alert"}`` lines in
delivery order). :meth:`Outbox.deliver_pending` sends each line through its
sink's notifier (:func:`sinks.delivery.notifier.notifier_for`: the same
encoders, retries, rate limits and idempotency keys as the Beam sinks) and
appends the outcome to the notification history,
``OUTPUT/notification_history.jsonl``, fsync'ed before the next line is sent.
A file whose every line has an outcome is removed.

The console's acknowledgements (:mod:`console.acknowledgements`) wait here
too, as ``STATE/outbox/ack-<alert id>.jsonl`` (the same lines; key
``ack:<alert id>:<sink>``, notification ``acknowledge``). Cycle files go
first, then acknowledgement files, so a trigger still pending is sent before
its acknowledge. Only ``pagerduty`` sinks take an acknowledge (any other sink
type dead-letters it with that reason, never posting it); its outcome is
recorded in the history like any notification (notification ``acknowledge``).

On start the history's keys are read back: a notification already in it is
never sent again, so a restart resends nothing that was recorded. The one
window left is between the receiver's 2xx and the history's fsync (about a
millisecond): a kill exactly there resends that one notification on restart
(PagerDuty folds it into the same incident by ``dedup_key``; webhook receivers
see the same ``webhook-id``).

History lines: ``key, sink, alert_id, rule, notification, outcome``
(``delivered`` | ``dead_lettered``), ``status``, ``attempts``, ``retries``,
``reason``, ``at_ms`` (epoch ms), and for a dead-lettered one the original
``alert`` to replay.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from pathlib import Path

from airis_mon.files import fsync_directory
from airis_mon.schema import Alert
from sinks.delivery.notifier import Notifier, notifier_for

__all__ = ["ACKNOWLEDGE_SINK_TYPES", "ACK_FILE_GLOB", "CYCLE_FILE_GLOB", "HISTORY_FILE", "Outbox"]

LOG = logging.getLogger("airis_mon.live.outbox")
HISTORY_FILE = "notification_history.jsonl"
CYCLE_FILE_GLOB = "c*.jsonl"  # the runner's committed cycles
ACK_FILE_GLOB = "ack-*.jsonl"  # the console's acknowledgements
#: sink types that take an ``acknowledge`` notification
ACKNOWLEDGE_SINK_TYPES = frozenset({"pagerduty"})


class Outbox:
    """Delivers ``STATE/outbox/*.jsonl`` in order; thread-safe (one delivery at a time).

    ``sinks``: the notification sink configs by name (paths already resolved).
    """

    def __init__(self, sinks: dict, state_dir: str | Path, output: str | Path, clock=time.time):
        self._sinks = sinks
        self.folder = Path(state_dir) / "outbox"
        self.history = Path(output) / HISTORY_FILE
        self._clock = clock
        self._lock = threading.Lock()
        self._notifiers: dict[str, Notifier] = {}
        self._end_torn_line()
        self._done = self._recorded_keys()
        self.counts: Counter = Counter()  # (sink, outcome) -> notifications; outcome also "retried"

    def _end_torn_line(self) -> None:
        """A crash mid-append leaves a line without its newline: end it, so the next record is a line of its
        own (the torn one is ignored: its notification was not recorded, and is sent again)."""
        if self.history.exists() and self.history.stat().st_size:
            with open(self.history, "rb+") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
                    handle.flush()
                    os.fsync(handle.fileno())

    def _recorded_keys(self) -> set[str]:
        keys = set()
        if self.history.exists():
            for line in self.history.read_text(encoding="utf-8").splitlines():
                try:
                    keys.add(json.loads(line)["key"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a crash: its notification was not recorded
        return keys

    def pending_files(self) -> list[Path]:
        """The outbox files in delivery order: cycles (in cycle order), then acknowledgements.

        Acknowledgements are listed first: a cycle file the console saw before it wrote an acknowledgement
        file is then surely listed too, and goes first."""
        if not self.folder.is_dir():
            return []
        acknowledgements = sorted(self.folder.glob(ACK_FILE_GLOB))
        return sorted(self.folder.glob(CYCLE_FILE_GLOB)) + acknowledgements

    def backlog(self) -> int:
        """Notifications committed and not yet delivered or dead-lettered (read without waiting for a delivery)."""
        done = set(self._done)
        try:
            return sum(1 for path in self.pending_files() for key, _, _ in _lines(path) if key not in done)
        except FileNotFoundError:  # a file finished meanwhile
            return self.backlog()

    def deliver_pending(self, stop: threading.Event | None = None) -> int:
        """Deliver every pending notification (until ``stop`` is set); return how many were handled."""
        handled = 0
        with self._lock:
            for path in self.pending_files():
                for key, sink, alert in _lines(path):
                    if stop is not None and stop.is_set():
                        return handled
                    if key in self._done:
                        continue
                    self._deliver(key, sink, alert)
                    handled += 1
                path.unlink()
                fsync_directory(self.folder)
        return handled

    def _deliver(self, key: str, sink: str, alert: Alert) -> None:
        config = self._sinks.get(sink)
        if config is None:
            outcome = {"outcome": "dead_lettered", "status": None, "attempts": 0, "retries": 0,
                       "reason": f"sink {sink!r} is no longer configured"}  # fmt: skip
        elif alert.notification == "acknowledge" and config.type not in ACKNOWLEDGE_SINK_TYPES:
            outcome = {"outcome": "dead_lettered", "status": None, "attempts": 0, "retries": 0,
                       "reason": f"sink type {config.type!r} takes no acknowledge notifications"}  # fmt: skip
        else:
            if sink not in self._notifiers:
                self._notifiers[sink] = notifier_for(config)
            result = self._notifiers[sink].notify([alert])[0]
            outcome = {"outcome": "delivered" if result.delivered else "dead_lettered", "status": result.status,
                       "attempts": result.attempts, "retries": result.retries, "reason": result.reason}  # fmt: skip
        record = {"key": key, "sink": sink, "alert_id": alert.id, "rule": alert.rule,
                  "notification": alert.notification, "at_ms": int(self._clock() * 1000), **outcome}  # fmt: skip
        if outcome["outcome"] != "delivered":
            record["alert"] = alert._asdict()
            LOG.warning("notification %s to %s dead-lettered: %s", key, sink, outcome["reason"])
        self._append_history(record)
        self._done.add(key)
        self.counts[(sink, outcome["outcome"])] += 1
        self.counts[(sink, "retried")] += outcome["retries"]

    def _append_history(self, record: dict) -> None:
        self.history.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, allow_nan=True) + "\n"
        with open(self.history, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())


def _lines(path: Path):
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        yield entry["key"], entry["sink"], Alert(**entry["alert"])
