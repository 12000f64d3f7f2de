"""``python -m pipelines.serve`` starts the console beside the pipeline when the config has a ``console:`` section,
waits until it answers, and stops it on exit (a real run with ``--once``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.console.console_server import free_port

REPO = Path(__file__).resolve().parents[2]


def _config(folder: Path, port: int, start_console: bool = True) -> Path:
    path = folder / "airis-mon.yaml"
    path.write_text(
        "live:\n"
        "  metrics_port: 0\n"
        f"  start_console: {'true' if start_console else 'false'}\n"
        "console:\n"
        f"  port: {port}\n"
        "  tokens:\n"
        "    - {name: oncall, token: {env: SERVE_CONSOLE_TOKEN}, role: admin}\n",
        encoding="utf-8",
    )
    return path


def _serve_once(config: Path, output: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SERVE_CONSOLE_TOKEN": "serve-console-token-123"}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.serve", "--config", str(config), "--output", str(output), "--once"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_serve_starts_the_console_and_stops_it(tmp_path):
    port = free_port()
    result = _serve_once(_config(tmp_path, port), tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"console ready at http://127.0.0.1:{port}" in result.stderr
    assert f"AIRIS-MON console ready on http://127.0.0.1:{port}" in result.stdout
    assert "serve-console-token-123" not in result.stdout + result.stderr
    try:
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        still_up = True
    except requests.ConnectionError:
        still_up = False
    assert not still_up, "the console child outlived pipelines.serve"
    assert (tmp_path / "out" / "state" / "console.duckdb").exists()  # its index, in the runner's state folder


def test_start_console_false_leaves_it_out(tmp_path):
    port = free_port()
    result = _serve_once(_config(tmp_path, port, start_console=False), tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "console ready" not in result.stderr + result.stdout
