"""The whole main graph in streaming mode on the local runner: the same alerts as the batch graph."""

import collections
import json
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions

from airis_mon.config import load_config
from pipelines.main import build_pipeline
from tests.sinks.notification_log.logged import logged_keys


def alerts_of(out: Path) -> list[tuple]:
    alerts = [json.loads(line) for p in out.rglob("alerts-*.jsonl") for line in p.read_text().splitlines()]
    return sorted((a["id"], a["name"], a["notification"], a["timestamp_ms"], a["current_value"]) for a in alerts)


def run(small_day: Path, out: Path, streaming: bool, config: str = "config.yaml") -> None:
    options = PipelineOptions(["--streaming"] if streaming else [])
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, load_config(small_day / config), num_shards=2)
    pipeline.run().wait_until_finish()
    (small_day / "out").rename(out)  # the config's storage path (the notification log is in there too)


def test_streaming_graph_raises_the_batch_alerts_and_stores_each_row_once(small_day: Path):
    """Event-time windows, the watermark, the stateful rule runner and windowed storage, end to end. (The
    bounded input ends with the watermark at infinity, so both runs see complete windows.)"""
    run(small_day, small_day / "batch", streaming=False)
    run(small_day, small_day / "stream", streaming=True)
    batch, stream = alerts_of(small_day / "batch"), alerts_of(small_day / "stream")
    assert sorted((a[1], a[2]) for a in batch) == [
        ("five_xx", "resolve"), ("five_xx", "trigger"), ("latency", "resolve"), ("latency", "trigger"),
    ]  # fmt: skip
    assert stream == batch
    for kind in ("metrics", "aggregates"):
        parts = sorted(p.name for p in (small_day / "stream" / kind).rglob("*.parquet"))
        # One file per shard and hour of event time (the small day is half an hour), one on-time pane each;
        # the same rows as the batch run, each once.
        assert len(parts) == 2 and all("-w1795824000000" in name and name.endswith("-p0.parquet") for name in parts)
        assert stored_rows(small_day / "stream" / kind) == stored_rows(small_day / "batch" / kind)


def stored_rows(folder: Path) -> list[tuple]:
    table = pq.read_table(folder)  # every partition and part
    return sorted(zip(*(table.column(name).to_pylist() for name in table.column_names if name != "date"), strict=True))


def notification_counts(log: Path) -> collections.Counter:
    """How many lines of the notification log hold each idempotency key."""
    return collections.Counter(logged_keys(log, "feed"))


def test_streaming_logs_each_notification_once_the_same_as_batch(small_day: Path):
    """Every window fires its own pane of alerts in streaming: the notification log still holds each
    notification once (by idempotency key), and the same ones as the batch run."""
    config = (small_day / "config.yaml").read_text()
    feed = "  - {name: feed, type: notification_log, path: out/notifications-feed.jsonl}\n"
    (small_day / "feed.yaml").write_text(config + feed + "default_route: {sinks: [feed]}\n")
    run(small_day, small_day / "batch", streaming=False, config="feed.yaml")
    run(small_day, small_day / "stream", streaming=True, config="feed.yaml")
    batch = notification_counts(small_day / "batch" / "notifications-feed.jsonl")
    stream = notification_counts(small_day / "stream" / "notifications-feed.jsonl")
    assert len(batch) == 4 and set(batch.values()) == {1}
    assert stream == batch
