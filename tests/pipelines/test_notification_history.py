"""The notification log is a history: runs over different inputs append, the same input again adds nothing,
a run without alerts leaves it untouched (the main job, in process, on the local runner)."""

import gzip
import json
import os
from pathlib import Path

import pytest

from pipelines.main import run
from tests.conftest import DAY_MS

FEED = {"name": "feed", "type": "notification_log", "path": "notifications/feed.jsonl"}


def day_like(small_day: Path, name: str, shift_days: int = 0, calm: bool = False) -> Path:
    """A config over the small day's data moved by ``shift_days`` (``calm``: with rules that never fire),
    logging to the small day's ``notifications/feed.jsonl``."""
    lines = gzip.decompress((small_day / "data" / "day.jsonl.gz").read_bytes()).decode().splitlines()
    moved = []
    for line in lines:
        try:
            payload = json.loads(line)
        except ValueError:
            moved.append(line)  # the planted truncated record
            continue
        if isinstance(payload["timestamp"], int) and payload["timestamp"] >= DAY_MS:
            payload["timestamp"] += shift_days * 86_400_000
        moved.append(json.dumps(payload, allow_nan=True))
    folder = small_day / name
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "day.jsonl.gz").write_bytes(gzip.compress(("\n".join(moved) + "\n").encode()))
    config = (small_day / "config.yaml").read_text()
    if calm:
        config = config.replace("threshold: 20,", "threshold: 1e9,").replace("threshold: 250,", "threshold: 1e9,")
    config += f"  - {json.dumps(FEED | {'path': str(small_day / FEED['path'])})}\ndefault_route: {{sinks: [feed]}}\n"
    (folder / "config.yaml").write_text(config)
    return folder / "config.yaml"


def run_main(config: Path, capsys) -> str:
    assert run(["--config", str(config), "--output", str(config.parent / "out")]) == 0
    summary = capsys.readouterr().out
    return next(line for line in summary.splitlines() if line.startswith("  notifications"))


def logged(small_day: Path) -> list[tuple]:
    lines = (small_day / FEED["path"]).read_text().splitlines()
    return [(a["name"], a["notification"], a["timestamp_ms"] // 86_400_000) for a in map(json.loads, lines)]


@pytest.mark.slow
def test_runs_over_different_inputs_append_and_the_same_input_twice_adds_nothing(small_day: Path, capsys):
    first, next_day = day_like(small_day, "first"), day_like(small_day, "next", shift_days=1)
    day = DAY_MS // 86_400_000
    assert run_main(first, capsys).split()[1] == "4"  # logged
    once = [("five_xx", "trigger", day), ("five_xx", "resolve", day), ("latency", "trigger", day),
            ("latency", "resolve", day)]  # fmt: skip
    assert logged(small_day) == once
    history = (small_day / FEED["path"]).read_bytes()
    assert run_main(next_day, capsys).split()[1] == "4"
    assert (small_day / FEED["path"]).read_bytes().startswith(history)  # appended, not rewritten
    assert logged(small_day) == once + [(name, kind, d + 1) for name, kind, d in once]
    both = (small_day / FEED["path"]).read_bytes()
    assert run_main(first, capsys).split()[1] == "0"  # the same input again: nothing new
    assert (small_day / FEED["path"]).read_bytes() == both


@pytest.mark.slow
def test_a_run_without_alerts_leaves_the_log_untouched(small_day: Path, capsys):
    log = small_day / FEED["path"]
    log.parent.mkdir()
    log.write_text('{"id": "earlier", "notification": "trigger", "timestamp_ms": 1}\n')
    before = os.stat(log)
    assert run_main(day_like(small_day, "calm", calm=True), capsys).split()[1] == "0"
    assert log.read_text() == '{"id": "earlier", "notification": "trigger", "timestamp_ms": 1}\n'
    assert os.stat(log).st_mtime_ns == before.st_mtime_ns
