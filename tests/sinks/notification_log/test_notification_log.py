import json

import apache_beam as beam
import pytest

from sinks.notification_log import NotificationLogConfig, WriteToNotificationLog
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate


def write(path, alerts):
    with beam.Pipeline() as pipeline:
        _ = pipeline | beam.Create(alerts) | WriteToNotificationLog(NotificationLogConfig(name="feed", path=str(path)))


def test_writes_alerts_sorted_by_time_one_json_object_a_line(tmp_path):
    alerts, _ = evaluate(threshold_rule(), GROUP, series(11, 1, 11, 1))
    path = tmp_path / "feed.jsonl"
    write(path, list(reversed(alerts)))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(a["notification"], a["timestamp_ms"]) for a in lines] == [(a.notification, a.timestamp_ms) for a in alerts]
    first = path.read_bytes()
    write(path, alerts)
    assert path.read_bytes() == first  # same input, same file


def test_an_empty_run_leaves_an_empty_log_not_a_stale_one(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text("stale\n")
    write(path, [])
    assert path.read_text() == ""


def test_a_path_is_required():
    with pytest.raises(ValueError, match="no path"):
        WriteToNotificationLog(NotificationLogConfig(name="feed"))
