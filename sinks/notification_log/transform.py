"""``WriteToNotificationLog``: the alerts routed to this sink, one JSON object
a line, sorted by (time, id, notification), written atomically.

The local stand-in for a pager or a chat channel: it shows what would have
been sent, to whom, and makes routing testable end to end. Running the same
input again rewrites the same file.
"""

from __future__ import annotations

import json

import apache_beam as beam

from airis_mon import streams
from airis_mon.files import write_text_atomically
from sinks.notification_log.config import NotificationLogConfig

__all__ = ["WriteToNotificationLog"]

_LIFECYCLE = {"trigger": 0, "repeat": 1, "resolve": 2}


def _write(path: str, alerts) -> str:
    ordered = sorted(alerts, key=lambda a: (a.timestamp_ms, a.id, _LIFECYCLE[a.notification]))
    text = "".join(json.dumps(a._asdict(), sort_keys=True, allow_nan=True) + "\n" for a in ordered)
    write_text_atomically(path, text)
    beam.metrics.Metrics.counter("notification_log", "notifications_written").inc(len(ordered))
    return path


class WriteToNotificationLog(beam.PTransform):
    """Alerts -> one JSON-lines file (written even when empty, so a re-run
    never leaves a stale log). Returns ``{"delivered": [path], "dead_letters": []}``,
    the output shape every notification sink has."""

    def __init__(self, config: NotificationLogConfig):
        super().__init__()
        if not config.path:
            raise ValueError(f"{config.name}: no path (set sinks[].path or --output)")
        self._path = config.path

    def expand(self, alerts):
        written = (
            alerts.pipeline
            | "LogPath" >> beam.Create([self._path])
            | "WriteLog" >> beam.Map(_write, beam.pvalue.AsList(alerts))
        )
        no_failures = alerts.pipeline | "NoDeadLetters" >> beam.Create([])
        return {"delivered": written, streams.DEAD_LETTERS: no_failures}
