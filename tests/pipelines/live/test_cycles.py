"""The live runner: the same alerts however the input is cut, killed cycles re-run, every point stored once.

A property test: one stream (tests/pipelines/live/stream.py) is cut at random points into spool segments,
each followed by a cycle at the arrival time of its last record, with runner restarts (a new process's
state: a new LiveRunner over the same folders) and interrupted cycles (planned and run, killed before the
commit) between some of them. The alerts must equal one batch run of the main job over the whole stream,
ids, times, values and enrichment context included.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import apache_beam as beam
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from airis_mon.config import load_config
from pipelines.live.runner import LiveRunner
from pipelines.main import build_pipeline
from sources.gateway.spool import SpoolWriter
from tests.conftest import DAY_MS, write_jsonl
from tests.pipelines.live.stream import CONFIG, JITTER_MS, MINUTE, T0, arrivals
from tests.pipelines.test_main import main

pytestmark = pytest.mark.slow


def _alerts(out: Path) -> list[dict]:
    rows = [json.loads(line) for path in sorted(out.glob("alerts-*.jsonl")) for line in path.read_text().splitlines()]
    return sorted(rows, key=lambda a: (a["timestamp_ms"], a["id"], a["notification"]))


@pytest.fixture(scope="module")
def batch_alerts(tmp_path_factory) -> list[dict]:
    """One batch run of the main job over the whole stream (the oracle)."""
    folder = tmp_path_factory.mktemp("batch")
    write_jsonl(folder / "stream.jsonl", [payload for _, payload in arrivals()])
    (folder / "config.yaml").write_text(
        CONFIG.replace(
            "{name: api, type: gateway, spool: ./spool}", "{name: api, type: payload_files, paths: [stream.jsonl]}"
        )
    )
    config = load_config(folder / "config.yaml")
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        build_pipeline(pipeline, config, str(folder / "out"), num_shards=4, streaming=False)
    alerts = _alerts(folder / "out")
    kinds = [(a["name"], a["notification"]) for a in alerts]
    # The scenario is not trivial: two episodes, a repeat, a stale resolve, a no-data trigger and resolve.
    assert kinds.count(("latency", "trigger")) == 2 and ("latency", "repeat") in kinds
    assert ("silent", "trigger") in kinds
    churn = [a for a in alerts if a["name"] == "latency" and "churn" in a["group"]]
    assert [a["notification"] for a in churn][-1] == "resolve"  # the stale series resolved without new data
    return alerts


def _live_folder(tmp_path: Path) -> tuple[Path, object]:
    (tmp_path / "config.yaml").write_text(CONFIG)
    return tmp_path, load_config(tmp_path / "config.yaml")


def _interrupted_cycle(runner: LiveRunner, now_ms: int) -> None:
    """A cycle killed after its pipeline ran and before its commit (what SIGKILL leaves)."""
    from pipelines.live.checkpoint import save_plan

    plan = runner._plan(now_ms, final=False)
    save_plan(runner.state_dir, plan)
    staging = runner._staging(plan.cycle)
    staging.mkdir(parents=True, exist_ok=True)
    runner._execute(plan, staging)


@pytest.mark.parametrize("seed", [11, 23])
def test_any_cut_with_restarts_gives_the_batch_alerts(tmp_path, batch_alerts, seed):
    rng = random.Random(seed)
    folder, config = _live_folder(tmp_path)
    items = arrivals()
    cuts = sorted(rng.sample(range(1, len(items)), 9))
    writer = SpoolWriter(folder / "spool")
    runner = LiveRunner(config, str(folder / "out"))
    start = 0
    for cut in [*cuts, len(items)]:
        piece = items[start:cut]
        writer.append([payload for _, payload in piece])
        writer.close()
        now_ms = piece[-1][0]
        roll = rng.random()
        if roll < 0.25:
            _interrupted_cycle(runner, now_ms)
            runner = LiveRunner(config, str(folder / "out"))  # restart: recovers the planned cycle
        elif roll < 0.5:
            runner = LiveRunner(config, str(folder / "out"))  # restart between cycles
        runner.run_cycle(now_ms=now_ms)
        start = cut
    runner.flush()
    assert _alerts(folder / "out") == batch_alerts
    dead = [
        json.loads(line)
        for p in (folder / "out").rglob("dead_letters/*/*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert not [d for d in dead if d["component"] == "live"]  # nothing was late


def _spanning_midnight(run: int) -> list[dict]:
    """Points from 2 minutes before to 2 minutes after midnight of day ``run`` (each run spans two days)."""
    midnight = DAY_MS + (run + 1) * 86_400_000
    return [
        {
            "timestamp": ts,
            "source": "s",
            "metrics": [{"name": "m", "value": float(run), "unit": "", "tags": {"run": str(run)}}],
        }
        for ts in range(midnight - 2 * MINUTE, midnight + 2 * MINUTE, 10_000)
    ]


def _stored_once(out: Path, sent: list[dict]) -> None:
    metrics = pq.read_table(out / "metrics")
    metrics = metrics.filter(pc.equal(metrics.column("name"), "m"))
    series = [json.loads(tags)["run"] for tags in metrics.column("tags").to_pylist()]
    stored = sorted(zip(metrics.column("timestamp_ms").to_pylist(), series, strict=True))
    assert stored == sorted((p["timestamp"], p["metrics"][0]["tags"]["run"]) for p in sent)  # each point once
    aggregates = pq.read_table(out / "aggregates")
    aggregates = aggregates.filter(pc.equal(aggregates.column("name"), "m"))
    keys = list(
        zip(aggregates.column("window_start_ms").to_pylist(), aggregates.column("tags").to_pylist(), strict=True)
    )
    assert len(keys) == len(set(keys)) == 3 * 4  # 3 runs x 4 one-minute windows, each once
    assert sum(aggregates.column("count").to_pylist()) == len(sent)


def _three_runs(folder: Path, run_once) -> list[dict]:
    """Three runs over a growing spool, each after one more segment of points spanning a midnight."""
    writer = SpoolWriter(folder / "spool")
    sent = []
    for run in range(3):
        payloads = _spanning_midnight(run)
        writer.append(payloads)
        writer.close()
        sent += payloads
        run_once(payloads[-1]["timestamp"])
    return sent


def test_live_cycles_store_every_point_and_aggregate_once_across_days(tmp_path):
    """Three cycles (each in a new runner) over the spool, each run's points spanning midnight."""
    folder, config = _live_folder(tmp_path)
    sent = _three_runs(
        folder, lambda last_ms: LiveRunner(config, str(folder / "out")).run_cycle(now_ms=last_ms + 5 * MINUTE)
    )
    _stored_once(folder / "out", sent)


def test_successive_batch_runs_over_the_spool_keep_every_run_s_rows(tmp_path):
    """``python -m pipelines.main`` run three times over a growing spool: no run replaces another's files."""
    folder, _ = _live_folder(tmp_path)
    sent = _three_runs(folder, lambda _: main("--config", str(folder / "config.yaml"), cwd=folder))
    assert not list((folder / "spool").glob("segment-*.jsonl"))  # every segment moved to done/
    _stored_once(folder / "out", sent)


def test_a_point_later_than_allowed_lateness_is_a_dead_letter_with_its_reason(tmp_path):
    folder, config = _live_folder(tmp_path)
    writer = SpoolWriter(folder / "spool")
    runner = LiveRunner(config, str(folder / "out"))
    point = {"timestamp": T0, "source": "s", "metrics": [{"name": "m", "value": 1.0, "unit": "", "tags": {}}]}
    writer.append([point])
    writer.close()
    runner.run_cycle(now_ms=T0 + 5 * MINUTE)  # the window of T0 closes
    late = {**point, "metrics": [{"name": "m", "value": 2.0, "unit": "", "tags": {}}]}
    on_time = {**point, "timestamp": T0 + 5 * MINUTE - JITTER_MS}
    writer.append([late, on_time])
    writer.close()
    runner.run_cycle(now_ms=T0 + 5 * MINUTE)
    runner.flush()
    dead = [
        json.loads(line)
        for p in (folder / "out").rglob("dead_letters/*/*.jsonl")
        for line in p.read_text().splitlines()
    ]
    late_letters = [d for d in dead if d["component"] == "live"]
    assert len(late_letters) == 1 and late_letters[0]["reason"].startswith("late point")
    assert json.loads(late_letters[0]["original"])["metrics"][0]["value"] == 2.0  # the original point, replayable
    metrics = pq.read_table(folder / "out" / "metrics")
    values = metrics.filter(pc.equal(metrics.column("name"), "m")).column("value").to_pylist()
    assert sorted(values) == [1.0, 1.0]  # the first point and the on-time one; the late one only as a dead letter


def test_pending_and_firing_are_stored_per_evaluation_and_queryable(tmp_path):
    """Like Prometheus's ALERTS{alertstate="pending"}: one row per (rule, group) and cycle while it is active."""
    folder, config = _live_folder(tmp_path)
    writer = SpoolWriter(folder / "spool")
    runner = LiveRunner(config, str(folder / "out"))
    for minute in range(4):  # breaching from minute 1: pending after minute 1, firing after minute 2 (for: 2)
        value = 900.0 if minute >= 1 else 10.0
        writer.append([{"timestamp": T0 + minute * MINUTE + s * 1000, "source": "tensorflow_serving",
                        "metrics": [{"name": "inference_latency", "value": value, "unit": "ms",
                                     "tags": {"model_name": "fraud"}}]} for s in range(0, 60, 10)])  # fmt: skip
        writer.close()
        runner.run_cycle(now_ms=T0 + (minute + 1) * MINUTE + 10_000)
    states = pq.read_table(folder / "out" / "alert_states").to_pylist()
    latency = sorted(
        (s["evaluated_at_ms"] - T0) // MINUTE for s in states if s["rule"] == "latency" and s["state"] == "pending"
    )
    assert latency == [2]  # evaluated up to minute 2: minute 1 breached, for not met yet
    firing = [s for s in states if s["rule"] == "latency" and s["state"] == "firing"]
    assert [(s["evaluated_at_ms"] - T0) // MINUTE for s in firing] == [3, 4]
    assert {s["id"] for s in firing} == {s["id"] for s in states if s["state"] == "pending" and s["rule"] == "latency"}
    assert runner.summary()["firing"] >= 1
