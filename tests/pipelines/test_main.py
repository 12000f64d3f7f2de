"""End-to-end: the main job as a user runs it (a subprocess), on small and bundled data."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.conftest import DAY_MS

REPO = Path(__file__).resolve().parents[2]


def main(*args: str, cwd: Path = REPO, job: str = "pipelines.main") -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", job, "--runner", "DirectRunner", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def alerts_in(out: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(out.glob("alerts-*.jsonl")) for line in path.read_text().splitlines()]


def test_small_day_end_to_end(small_day: Path):
    result = main("--config", str(small_day / "config.yaml"))
    out = small_day / "out"
    assert "normalized               240 metric points" in result.stdout
    assert "dead-lettered              3 records" in result.stdout
    assert "alerts                     2 triggered (critical 1, high 1), 2 resolved" in result.stdout
    alerts = sorted(alerts_in(out), key=lambda a: (a["timestamp_ms"], a["notification"] == "resolve"))
    assert [
        (a["name"], a["notification"], (a["timestamp_ms"] - DAY_MS) // 60_000, a["duration_s"]) for a in alerts
    ] == [
        ("five_xx", "trigger", 11, 60.0),
        ("five_xx", "resolve", 13, 180.0),
        ("latency", "trigger", 21, 60.0),
        ("latency", "resolve", 22, 120.0),
    ]
    alerts = [a for a in alerts if a["notification"] == "trigger"]
    assert alerts[0]["model_id"] == "ep-a" and alerts[1]["model_id"] == "fraud"
    metrics = pq.read_table(out / "metrics" / "date=2026-11-28")  # one file per shard
    health = metrics.filter(pc.equal(metrics.column("source"), "airis_mon"))
    assert sorted(health.column("tags").to_pylist()) == [
        '{"integration":"aws_sagemaker"}', '{"integration":"mlflow"}', '{"integration":"recorded"}',
        '{"integration":"tensorflow_serving"}',
    ]  # fmt: skip
    metrics = metrics.filter(pc.not_equal(metrics.column("source"), "airis_mon"))
    assert metrics.num_rows == 240  # 30 minutes x (2 SageMaker + 6 TF Serving points)
    assert set(metrics.column("name").to_pylist()) == {"invocation_5xx_errors", "model_latency", "inference_latency"}
    latency = [r["value"] for r in metrics.to_pylist() if r["name"] == "model_latency"]
    assert min(latency) == 40.0  # 40,000 µs -> 40 ms
    aggregates = pq.read_table(out / "aggregates" / "date=2026-11-28")
    assert aggregates.num_rows == 90 + 4  # 3 series x 30 minutes, and 4 health series
    dead = [json.loads(line) for p in (out / "dead_letters").rglob("*.jsonl") for line in p.read_text().splitlines()]
    reasons = sorted(d["reason"] for d in dead)
    assert reasons[0].startswith("line is not JSON (Unterminated string starting at) in ")
    assert reasons[1].startswith("severity: Input should be 'info', 'warning', 'error' or 'critical'")
    assert reasons[2] == "value: NaN is not a metric value"
    report = json.loads((out / "health_report.json").read_text())
    assert report["overall_status"] == "degraded"
    assert report["integrations"]["aws_sagemaker"]["status"] == "healthy"


def test_rerun_overwrites_identical_files(small_day: Path):
    out = small_day / "out"

    def digest():
        # The health report and the health rows measure this run (poll latencies): same names, new contents.
        return {
            p: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in out.rglob("*")
            if p.is_file() and p.name != "health_report.json" and "health" not in p.relative_to(out).parts
        }

    def health_files():
        return sorted(p.relative_to(out) for p in (out / "health").rglob("*.parquet"))

    main("--config", str(small_day / "config.yaml"))
    first, first_health = digest(), health_files()
    main("--config", str(small_day / "config.yaml"))
    assert digest() == first
    assert health_files() == first_health and first_health  # overwritten, not added


@pytest.mark.slow
def test_bundled_sample_finds_exactly_the_injected_incidents(tmp_path: Path):
    result = main("--output", str(tmp_path / "out"), cwd=tmp_path)
    assert "records read          62,582 payload lines" in result.stdout
    assert "dead-lettered             15 records" in result.stdout
    assert "alerts                     2 triggered (critical 1, high 1), 2 resolved" in result.stdout
    alerts = sorted(alerts_in(tmp_path / "out"), key=lambda a: a["timestamp_ms"])
    found = [(a["name"], a["model_id"], a["severity"], a["notification"]) for a in alerts]
    assert found == [
        ("endpoint_5xx_burst", "churn-model-prod", "critical", "trigger"),  # injected 09:30-09:42
        ("endpoint_5xx_burst", "churn-model-prod", "critical", "resolve"),
        ("model_p95_latency_high", "fraud-detector", "high", "trigger"),  # injected 14:05-14:25
        ("model_p95_latency_high", "fraud-detector", "high", "repeat"),  # repeat_interval 10m
        ("model_p95_latency_high", "fraud-detector", "high", "resolve"),  # after keep_firing_for 2m
    ]
    day = 1_795_824_000_000
    burst, latency = alerts[1], alerts[4]
    assert ((burst["starts_at_ms"] - day) // 60_000, (burst["resolved_at_ms"] - day) // 60_000) == (
        9 * 60 + 30,
        9 * 60 + 42,
    )
    assert ((latency["starts_at_ms"] - day) // 60_000, (latency["resolved_at_ms"] - day) // 60_000) == (
        14 * 60 + 5,
        14 * 60 + 27,
    )
    oncall = [json.loads(line) for line in (tmp_path / "out" / "notifications-oncall.jsonl").read_text().splitlines()]
    assert [a["notification"] for a in oncall] == ["trigger", "resolve", "trigger", "repeat", "resolve"]
    report = json.loads((tmp_path / "out" / "health_report.json").read_text())
    assert report["integrations"]["github_actions"]["status"] == "degraded"
    assert report["integrations"]["tensorflow_serving"]["status"] == "healthy"


@pytest.mark.slow
def test_backtest_of_the_bundled_sample_history_finds_the_injected_incidents(tmp_path: Path):
    main("--output", str(tmp_path / "history"), cwd=tmp_path)
    result = main("--history", str(tmp_path / "history"), "--output", str(tmp_path / "bt"), cwd=tmp_path,
                  job="pipelines.backtest")  # fmt: skip
    table = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[2:6]}
    assert table["model_p95_latency_high"][:3] == ["1", "2026-11-28", "14:07"]
    assert table["endpoint_5xx_burst"][:3] == ["1", "2026-11-28", "09:32"]
    assert table["sagemaker_endpoint_silent"][0] == table["integration_failing"][0] == "0"
    live = sorted(alerts_in(tmp_path / "history"), key=lambda a: (a["timestamp_ms"], a["id"], a["notification"]))
    replayed = [json.loads(line) for line in (tmp_path / "bt" / "backtest-alerts.jsonl").read_text().splitlines()]
    replayed.sort(key=lambda a: (a["timestamp_ms"], a["id"], a["notification"]))
    # Same engine, same history: the same alerts, ids included. The backtest replays aggregates only, so it
    # has no events to enrich from: its alerts carry no context (the live ones name their model at least).
    assert all(json.loads(a.pop("context")).get("model") == a["model_id"] for a in live)
    assert all(a.pop("context") == "{}" for a in replayed)
    assert replayed == live


def test_backtest_range_and_errors(small_day: Path):
    main("--config", str(small_day / "config.yaml"))
    history = str(small_day / "out")
    result = main("--config", str(small_day / "config.yaml"), "--history", history, "--output", str(small_day / "bt"),
                  "--start", "2026-11-28T00:15:00Z", job="pipelines.backtest")  # fmt: skip
    assert "five_xx                                 0" in result.stdout
    assert "latency                                 1  2026-11-28 00:21" in result.stdout
    # A second backtest into the same output replaces the first's alerts file, even with no alert at all.
    quiet = main("--config", str(small_day / "config.yaml"), "--history", history, "--output", str(small_day / "bt"),
                 "--start", "2026-11-28T00:25:00Z", job="pipelines.backtest")  # fmt: skip
    assert "latency                                 0" in quiet.stdout
    assert (small_day / "bt" / "backtest-alerts.jsonl").read_text() == ""
    missing = subprocess.run(
        [sys.executable, "-m", "pipelines.backtest", "--history", str(small_day / "nothing-here")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 2 and "no stored aggregates" in missing.stderr


def test_backtest_counts_an_episode_still_firing_to_the_end_of_history(small_day: Path):
    """The latency of ep-a is above 1 ms all day: one episode, triggered at 00:01, never resolved. It fires
    until the history's last window ends (00:30), or until --end, not until its one notification."""
    main("--config", str(small_day / "config.yaml"))
    config = small_day / "always.yaml"
    config.write_text(
        "rules:\n  - {name: always, metric: model_latency, aggregation: mean, comparator: '>', threshold: 1,"
        " severity: warning}\n",
        encoding="utf-8",
    )
    common = ("--config", str(config), "--history", str(small_day / "out"), "--output", str(small_day / "bt"))

    def row(*extra: str) -> list[str]:
        lines = main(*common, *extra, job="pipelines.backtest").stdout.splitlines()
        return next(line for line in lines if line.startswith("always")).split()

    assert row() == ["always", "1", "2026-11-28", "00:01", "2026-11-28", "00:01", "29.0", "m", "1"]
    assert row("--end", "2026-11-28T00:20:00Z")[-3:] == ["19.0", "m", "1"]
