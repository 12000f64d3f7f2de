"""The main job with a notification policy: grouped notifications reach the sink; --streaming is refused."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pytest
import yaml

from airis_mon.config import load_config
from airis_mon.errors import ConfigError
from pipelines.main import build_pipeline


def _config(small_day: Path, group_by: list[str]):
    document = yaml.safe_load((small_day / "config.yaml").read_text())
    document["sinks"].append({"name": "feed", "type": "notification_log", "path": "feed.jsonl"})
    document["notification_policy"] = {
        "receiver": "feed",
        "group_by": group_by,
        "group_wait": "30s",
        "group_interval": "5m",
    }
    (small_day / "policy.yaml").write_text(yaml.safe_dump(document))
    return load_config(small_day / "policy.yaml")


def test_the_main_job_sends_one_notification_per_group_and_change(small_day: Path):
    config = _config(small_day, [])  # one group for everything
    with beam.Pipeline() as pipeline:
        build_pipeline(pipeline, config, output=str(small_day / "out"))
    alerts = [
        json.loads(line) for p in (small_day / "out").glob("alerts-*.jsonl") for line in p.read_text().splitlines()
    ]
    sent = [json.loads(line) for line in (small_day / "feed.jsonl").read_text().splitlines()]
    assert sorted(a["notification"] for a in alerts) == ["resolve", "resolve", "trigger", "trigger"]  # two episodes
    # five_xx fires at minute 10 and resolves; latency fires at minute 20 (after the group emptied): a new
    # trigger of the same group, same id (one incident per group)
    assert [(n["notification"], n["summary"].split(" ")[0]) for n in sent] == [
        ("trigger", "[FIRING:1]"),
        ("resolve", "[RESOLVED]"),
        ("trigger", "[FIRING:1]"),
        ("resolve", "[RESOLVED]"),
    ]
    assert len({n["id"] for n in sent}) == 1
    first = min(alerts, key=lambda a: a["timestamp_ms"])
    # its condition held from the window's start, more than group_wait before the alert: sent at once, as
    # Alertmanager does with an alert whose startsAt is older than group_wait
    assert first["starts_at_ms"] + 30_000 < first["timestamp_ms"] == sent[0]["timestamp_ms"]


def test_streaming_with_a_policy_is_refused(small_day: Path):
    config = _config(small_day, ["alertname"])
    with pytest.raises(ConfigError, match="notification_policy: not supported with --streaming"):
        build_pipeline(beam.Pipeline(), config, output=str(small_day / "out"), streaming=True)
