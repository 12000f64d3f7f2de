"""The run summary's counters are right for every kind of source, and a terminal shows progress while it runs.

One run reads a payload file, a Parquet point file, a gateway spool segment and a polled Prometheus endpoint
(a loopback server); the summary's "records read" line of each is checked against what was written or served,
and its dead-letter and file counts against the files on disk.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sources.gateway.spool import SpoolWriter
from tests.sources.prometheus.exposition_server import ExpositionServer

REPO = Path(__file__).resolve().parents[2]
T0_MS = 1_795_824_000_000  # 2026-11-28T00:00:00Z


def _write_inputs(folder: Path) -> None:
    lines = [
        {"timestamp": T0_MS + i * 60_000, "source": "recorded", "metrics": [{"name": "latency", "value": 40.0 + i}]}
        for i in range(5)
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n{not json\n"  # 6 lines, one a dead letter
    (folder / "payloads.jsonl").write_text(text)
    points = pa.table({
        "timestamp": pa.array([T0_MS + i * 1000 for i in range(7)], pa.float64()),
        "source": ["exported"] * 7, "name": ["gpu_util"] * 7, "value": [float(i) for i in range(7)],
        "unit": ["percent"] * 7, "tags": ['{"host":"a"}'] * 7,
    })  # fmt: skip
    pq.write_table(points, folder / "points.parquet")
    spool = SpoolWriter(folder / "spool")
    for i in range(3):  # 3 acknowledged requests, 2 metrics each
        metrics = [{"name": "queue_depth", "value": float(i)}, {"name": "tokens", "value": 10.0 * i}]
        spool.append([{"timestamp": T0_MS + i * 1000, "source": "pushed", "metrics": metrics}])
    spool.close()  # a closed segment: what a run reads
    still_open = SpoolWriter(folder / "spool")  # a request acknowledged after that: in the open segment
    still_open.append([{"timestamp": T0_MS, "source": "pushed", "metrics": [{"name": "queue_depth", "value": 1.0}]}])


def _config(folder: Path, scrape_url: str) -> Path:
    config = f"""
integrations:
  - {{name: files, type: payload_files, paths: [payloads.jsonl], max_rejected_ratio: 0.5}}
  - {{name: exports, type: point_files, paths: [points.parquet]}}
  - {{name: api, type: gateway, spool: spool, tokens: [{{name: t, token: {{env: SUMMARY_TEST_TOKEN}}}}]}}
  - name: scrape
    type: prometheus
    targets: [{{url: "{scrape_url}"}}]
"""
    path = folder / "config.yaml"
    path.write_text(config)
    return path


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUMMARY_TEST_TOKEN": "t0ken-for-tests-only"}
    return subprocess.run([sys.executable, "-m", "pipelines.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.fixture
def inputs(tmp_path: Path):
    _write_inputs(tmp_path)
    with ExpositionServer({"/metrics": ["triton_1.prom"]}) as server:
        yield tmp_path, _config(tmp_path, f"{server.url}/metrics")


def _read_counts(summary: str) -> dict[str, tuple[int, str]]:
    """``{integration: (count, unit)}`` from the summary's "records read" lines."""
    found = {}
    for match in re.finditer(r"^  (?:records read)?\s+([\d,]+) ([a-z ]+) \(\w+ '([\w-]+)'\)$", summary, re.M):
        found[match.group(3)] = (int(match.group(1).replace(",", "")), match.group(2))
    return found


def test_every_source_type_counts_what_it_read(inputs):
    folder, config = inputs
    result = _run(["--config", str(config), "--output", str(folder / "out")], folder)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = _read_counts(result.stdout)
    metrics = pq.read_table(folder / "out" / "metrics").to_pylist()
    scraped = sum(1 for row in metrics if row["source"] not in ("recorded", "exported", "pushed", "airis_mon"))
    assert scraped > 0
    assert counts == {
        "files": (6, "payload lines"),
        "exports": (7, "points"),
        "api": (3, "acknowledged requests"),
        "scrape": (scraped, "records"),  # one poll: every point it yielded (no events in an exposition)
    }
    dead = [
        line for path in (folder / "out" / "dead_letters").rglob("*.jsonl") for line in path.read_text().splitlines()
    ]
    assert re.search(rf"dead-lettered\s+{len(dead)} records \(payload_files 1\)", result.stdout), result.stdout
    listed = re.search(r"files written\s+(\d+)", result.stdout)
    stored = [p for p in (folder / "out").rglob("*") if p.is_file() and (p.name.startswith(("part-", "alerts-"))
              or p.name == "health_report.json")]  # fmt: skip
    assert listed and int(listed.group(1)) == len(stored)
    assert "note: gateway 'api' holds 1 acknowledged request(s) in its open spool segment" in result.stdout


def test_a_terminal_shows_progress_and_a_pipe_does_not(inputs):
    folder, config = inputs
    piped = _run(["--config", str(config), "--output", str(folder / "piped")], folder)
    assert "\r" not in piped.stderr and "AIRIS-MON running" not in piped.stderr
    # On a terminal: the same run with stderr on a pseudo-terminal.
    controller, terminal = pty.openpty()
    env = {**os.environ, "SUMMARY_TEST_TOKEN": "t0ken-for-tests-only"}
    process = subprocess.Popen([sys.executable, "-m", "pipelines.main", "--config", str(config), "--output",
                                str(folder / "tty")], cwd=folder, env=env, stdout=subprocess.PIPE,
                               stderr=terminal)  # fmt: skip
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    process.wait(timeout=60)
    os.close(controller)
    assert process.returncode == 0
    text = seen.decode(errors="replace")
    assert "AIRIS-MON running: " in text and "\r" in text
    assert re.search(r"read [\d,]+", text), text[-2000:]
