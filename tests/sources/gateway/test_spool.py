import os

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.config import parse_config
from sources.gateway import ReadFromGatewaySpool
from sources.gateway.spool import SpoolWriter, closed_segments, mark_processed, segment_payloads
from tests.conftest import DAY_MS, metrics_payload


def lines_of(paths) -> list[dict]:
    return [payload for path in paths for payload in segment_payloads(path)]


def test_appends_are_durable_lines_and_closing_publishes_a_segment(tmp_path):
    writer = SpoolWriter(tmp_path)
    writer.append([{"a": 1}, {"b": 2}])
    writer.append([{"c": 3}])
    assert closed_segments(tmp_path) == []  # the open segment is not for readers yet
    writer.close()
    segments = closed_segments(tmp_path)
    assert [p.name for p in segments] == ["segment-000001.jsonl"]
    assert lines_of(segments) == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_segments_rotate_by_size_and_age(tmp_path):
    writer = SpoolWriter(tmp_path, max_segment_bytes=1024, max_segment_age_s=3600)
    for i in range(40):
        writer.append([{"i": i, "pad": "x" * 40}])
    assert len(closed_segments(tmp_path)) >= 2
    aged = SpoolWriter(tmp_path / "aged", max_segment_age_s=0.01)
    aged.append([{"i": 1}])
    import time

    time.sleep(0.02)
    assert aged.rotate_if_due() and len(closed_segments(tmp_path / "aged")) == 1


def test_a_crash_leaves_an_open_segment_that_the_next_writer_closes_without_its_torn_line(tmp_path):
    writer = SpoolWriter(tmp_path)
    writer.append([{"ok": 1}])
    open_segment = next(tmp_path.glob("open-*.jsonl"))
    with open(open_segment, "ab") as handle:  # a write cut short by SIGKILL, never acknowledged
        handle.write(b'{"torn": ')
    restarted = SpoolWriter(tmp_path)
    assert lines_of(closed_segments(tmp_path)) == [{"ok": 1}]
    restarted.append([{"next": 2}])
    restarted.close()
    assert [p.name for p in closed_segments(tmp_path)] == ["segment-000001.jsonl", "segment-000002.jsonl"]


def test_processed_segments_move_to_done_and_numbering_continues(tmp_path):
    writer = SpoolWriter(tmp_path)
    writer.append([{"a": 1}])
    writer.close()
    mark_processed(tmp_path, closed_segments(tmp_path))
    assert closed_segments(tmp_path) == [] and os.listdir(tmp_path / "done") == ["segment-000001.jsonl"]
    SpoolWriter(tmp_path).append([{"b": 2}])
    assert next(tmp_path.glob("open-*.jsonl")).name.startswith("open-000002-")  # and its opening time (ms)


def test_bad_bounds_are_refused(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        SpoolWriter(tmp_path, max_segment_bytes=0)


def test_the_pipeline_source_reads_closed_segments_once(tmp_path):
    spool = tmp_path / "spool"
    writer = SpoolWriter(spool)
    writer.append([metrics_payload(DAY_MS, "api", ("latency", 12.5, "ms", {"m": "a"}))])
    writer.append([{"timestamp": DAY_MS, "event_type": "deploy", "source": "api", "severity": "info", "data": {}}])
    writer.close()
    writer.append([metrics_payload(DAY_MS, "api", ("still_open", 1.0, "", {}))])  # not read: still open
    config = parse_config({"integrations": [{"name": "api", "type": "gateway", "spool": "spool"}]}, tmp_path)
    source = ReadFromGatewaySpool(config.integrations[0])
    with beam.Pipeline() as pipeline:
        out = pipeline | source
        names = out["points"] | beam.FlatMap(lambda t: t.column("name").to_pylist())
        assert_that(names, equal_to(["latency"]), label="points")
        assert_that(out["events"] | beam.Map(lambda e: e.event_type), equal_to(["deploy"]), label="events")
    source.on_success()
    assert closed_segments(spool) == []
    assert ReadFromGatewaySpool(config.integrations[0]).segments == []  # the next run reads nothing again


def test_processed_segments_past_their_retention_are_deleted_but_the_numbering_goes_on(tmp_path):
    from sources.gateway.spool import find_acknowledged, prune_processed

    writer = SpoolWriter(tmp_path)
    acks = []
    for i in range(4):  # four segments, one keyed request each
        acks.append(writer.append([metrics_payload(DAY_MS + i, "tf", ("lat", 1.0, "ms", {}))]))
        writer.close()
    segments = closed_segments(tmp_path)
    mark_processed(tmp_path, segments)
    done = sorted((tmp_path / "done").iterdir())
    old = 1_000_000_000  # 2001: past any retention
    for path in done[:3]:
        os.utime(path, (old, old))
    os.utime(done[3], (old, old))  # the newest is kept however old it is
    assert prune_processed(tmp_path, before_s=old + 1) == 3
    assert [p.name for p in sorted((tmp_path / "done").iterdir())] == [done[3].name]
    assert find_acknowledged(tmp_path, acks[0]) is None  # deleted: the API answers 404
    assert find_acknowledged(tmp_path, acks[3])[1] == "processed"
    later = SpoolWriter(tmp_path).append([metrics_payload(DAY_MS, "tf", ("lat", 1.0, "ms", {}))])
    assert int(later.split("-")[0]) == int(acks[3].split("-")[0]) + 1  # no segment number, no ack id reused
    assert prune_processed(tmp_path, before_s=old + 1) == 0


def test_retention_must_cover_the_dedup_window(tmp_path):
    from airis_mon.errors import ConfigError

    entry = {"name": "api", "type": "gateway", "spool": str(tmp_path), "dedup_window_s": 7200,
             "processed_retention_s": 3600}  # fmt: skip
    with pytest.raises(ConfigError, match=r"processed_retention_s must be at least dedup_window_s"):
        parse_config({"integrations": [entry]}, tmp_path)
