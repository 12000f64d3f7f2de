import json
import multiprocessing
import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to

from sinks.delivery import idempotency_key
from sinks.notification_log import NotificationLogConfig, WriteToNotificationLog
from sinks.notification_log.transform import NotificationLog
from tests.sinks.notification_log.logged import logged_keys
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate

SINK = "feed"


def alerts_of(*values) -> list:
    """Trigger, repeats and resolve of one threshold rule over one window a minute."""
    alerts, _ = evaluate(threshold_rule(repeat_interval=120), GROUP, series(*values))
    return alerts


def write(path, alerts, replace: bool = False, delivered: list | None = None) -> int:
    """Run the sink over ``alerts`` in batch (checking its ``delivered`` paths when given); return the
    ``notifications_written`` counter."""
    pipeline = beam.Pipeline()
    outputs = (
        pipeline
        | beam.Create(alerts)
        | WriteToNotificationLog(NotificationLogConfig(name=SINK, path=str(path)), replace=replace)
    )
    if delivered is not None:
        assert_that(outputs["delivered"], equal_to(delivered), label="delivered")
    assert_that(outputs["dead_letters"], equal_to([]), label="no dead letters")
    result = pipeline.run()
    result.wait_until_finish()
    query = result.metrics().query(beam.metrics.MetricsFilter().with_name("notifications_written"))
    return sum(c.committed for c in query["counters"])


def logged(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def keys_of(path) -> list[str]:
    return logged_keys(path, SINK)


def test_appends_alerts_sorted_by_time_one_json_object_a_line(tmp_path):
    alerts = alerts_of(11, 1, 11, 1)
    path = tmp_path / "feed.jsonl"
    assert write(path, list(reversed(alerts)), delivered=[str(path)]) == len(alerts) == 4
    assert [(a["notification"], a["timestamp_ms"]) for a in logged(path)] == [
        (a.notification, a.timestamp_ms) for a in alerts
    ]
    assert logged(path)[0] == json.loads(json.dumps(alerts[0]._asdict()))  # the whole alert, as in storage


def test_the_same_input_twice_appends_nothing_and_new_notifications_are_appended_after_the_history(tmp_path):
    path = tmp_path / "feed.jsonl"
    first_run, later_run = alerts_of(11, 1, 11, 1), alerts_of(1, 1, 1, 1, 1, 11, 11, 11, 11)
    assert not set(map(tuple, first_run)) & set(map(tuple, later_run))
    write(path, first_run)
    history = path.read_bytes()
    assert write(path, first_run + first_run, delivered=[]) == 0
    assert path.read_bytes() == history
    assert write(path, first_run[1:] + later_run, delivered=[str(path)]) == len(later_run)  # overlapping
    assert path.read_bytes().startswith(history)  # appended, never rewritten
    assert sorted(keys_of(path)) == sorted({idempotency_key(SINK, a) for a in first_run + later_run})


def test_a_run_without_alerts_leaves_an_existing_log_untouched_and_creates_none(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text('{"kept": "history"}\n')
    before = os.stat(path)
    assert write(path, [], delivered=[]) == 0
    assert path.read_text() == '{"kept": "history"}\n'
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    missing = tmp_path / "none" / "feed.jsonl"
    write(missing, [])
    assert not missing.exists() and not missing.parent.exists()


def test_streaming_panes_and_windows_log_each_notification_once(tmp_path):
    """TestStream on the local streaming runner: the same notifications arrive again in later windows and
    panes (a replay, a retried upstream bundle); each is logged once."""
    alerts = alerts_of(11, 1, 11, 1, 11)
    stream = (
        TestStream()
        .add_elements(alerts[:2], event_timestamp=10)
        .advance_watermark_to(70)
        .add_elements(alerts[1:4], event_timestamp=80)
        .advance_processing_time(60)
        .advance_watermark_to(200)
        .add_elements(alerts, event_timestamp=210)
        .advance_watermark_to_infinity()
    )
    path = tmp_path / "feed.jsonl"
    with beam.Pipeline(options=PipelineOptions(["--streaming"])) as pipeline:
        _ = (
            pipeline
            | stream
            | beam.WindowInto(beam.window.FixedWindows(60))
            | WriteToNotificationLog(NotificationLogConfig(name=SINK, path=str(path)))
        )
    assert sorted(keys_of(path)) == sorted(idempotency_key(SINK, a) for a in alerts)


def test_a_torn_last_line_is_set_apart_and_its_notification_appended_again(tmp_path):
    alerts = alerts_of(11, 1, 11, 1)
    path = tmp_path / "feed.jsonl"
    write(path, alerts[:1])
    whole = path.read_text()
    path.write_text(whole + whole[:40])  # a crash in the middle of writing the second line
    log = NotificationLog(SINK, path)
    assert log.keys() == {idempotency_key(SINK, alerts[0])}
    assert log.append(alerts[:2]) == alerts[1:2]
    lines = path.read_text().splitlines()
    assert lines[:2] == [whole.strip(), whole[:40]] and json.loads(lines[2])["notification"] == "resolve"


def _append_in_a_process(path: str, start, alerts) -> int:
    start.wait()
    return len(NotificationLog(SINK, path).append(alerts))


def test_processes_appending_the_same_notifications_at_once_log_each_once(tmp_path):
    """Local multi-process workers share the file: the append is locked, and checks the file under the lock."""
    alerts = alerts_of(*[11, 1] * 20)
    path = str(tmp_path / "feed.jsonl")
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(4) as pool:
            pending = [pool.apply_async(_append_in_a_process, (path, start, alerts)) for _ in range(4)]
            start.set()
            counts = [p.get(timeout=60) for p in pending]
    assert sum(counts) == len(alerts) == 40
    assert sorted(keys_of(tmp_path / "feed.jsonl")) == sorted(idempotency_key(SINK, a) for a in alerts)


def test_replace_rewrites_the_file_with_exactly_this_runs_alerts(tmp_path):
    path = tmp_path / "backtest.jsonl"
    alerts = alerts_of(11, 1, 11, 1)
    write(path, alerts)
    assert write(path, alerts[:2], replace=True) == 2
    assert [a["notification"] for a in logged(path)] == ["trigger", "resolve"]
    write(path, [], replace=True)
    assert path.read_text() == ""


def test_a_path_is_required():
    with pytest.raises(ValueError, match="no path"):
        WriteToNotificationLog(NotificationLogConfig(name="feed"))
