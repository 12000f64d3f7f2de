"""``--log-format json`` on every entry point, run as a user runs it (subprocesses): stderr holds only JSON
objects (component, run id, level, message); text stays the default; Beam's harmless lines never show."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airis_mon.logs import HARMLESS_BEAM_MESSAGES
from tests.sources.gateway.live import wait_healthy

REPO = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")
TOKEN = "log-format-test-token"


def command(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**ENV, **(env or {})})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def json_lines(stderr: str, component: str) -> list[dict]:
    """Every stderr line as an object of ``component``: fails on any other line."""
    lines = []
    for text in stderr.splitlines():
        line = json.loads(text)
        assert {"time", "level", "component", "logger", "run_id", "message"} <= set(line), line
        assert line["component"] == component, line
        lines.append(line)
    return lines


def assert_no_harmless_beam_lines(stderr: str) -> None:
    for harmless in (*HARMLESS_BEAM_MESSAGES, "Discarding unparseable args"):
        assert harmless not in stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bad_http_request(port: int) -> None:
    """A request uvicorn refuses and logs (``uvicorn.error``: Invalid HTTP request received.)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"GARBAGE\r\n\r\n")
        assert connection.recv(1000).startswith(b"HTTP/1.1 400")


def gateway_entry(folder: Path, port: int) -> dict:
    return {"name": "api", "type": "gateway", "spool": str(folder / "spool"), "host": "127.0.0.1", "port": port,
            "tokens": [{"name": "default", "token": {"env": "AIRIS_TOKEN"}}], "max_segment_age_s": 1}  # fmt: skip


@pytest.fixture(scope="module")
def main_json(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The bundled sample through the main job, JSON logs at DEBUG (Beam's runner logs lines at that level; at
    INFO and above a clean run may log nothing): (its output folder, the process)."""
    folder = tmp_path_factory.mktemp("main-json")
    result = command("-m", "pipelines.main", "--runner", "DirectRunner", "--output", str(folder / "out"),
                     "--log-format", "json", "--log-level", "DEBUG", cwd=folder)  # fmt: skip
    return folder / "out", result


@pytest.mark.slow
def test_main_json_lines_only(main_json):
    _, result = main_json
    lines = json_lines(result.stderr, "main")
    assert lines, "at DEBUG Beam's runner logs its bundles"
    assert len({line["run_id"] for line in lines}) == 1
    assert {line["level"] for line in lines} <= {"DEBUG", "INFO", "WARNING"}
    assert_no_harmless_beam_lines(result.stderr)
    assert "AIRIS-MON" in result.stdout  # the summary stays on stdout, as text


@pytest.mark.slow
def test_main_text_is_the_default_and_prints_no_harmless_beam_line(tmp_path):
    plain = command("-m", "pipelines.main", "--runner", "DirectRunner", "--output", str(tmp_path / "a"), cwd=tmp_path)
    assert_no_harmless_beam_lines(plain.stderr)
    assert not [line for line in plain.stderr.splitlines() if line.startswith('{"time": ')]
    verbose = command("-m", "pipelines.main", "--runner", "DirectRunner", "--output", str(tmp_path / "b"),
                      "--log-level", "debug", cwd=tmp_path)  # fmt: skip
    records = [line for line in verbose.stderr.splitlines() if TEXT_LINE.match(line)]
    assert records and TEXT_LINE.match(verbose.stderr.splitlines()[0])
    assert not [line for line in verbose.stderr.splitlines() if line.startswith('{"time": ')]
    assert_no_harmless_beam_lines(verbose.stderr)


@pytest.mark.slow
def test_backtest_json_lines_only(main_json, tmp_path):
    history, _ = main_json
    result = command("-m", "pipelines.backtest", "--history", str(history), "--output", str(tmp_path / "bt"),
                     "--log-format", "json", "--log-level", "DEBUG", cwd=tmp_path)  # fmt: skip
    lines = json_lines(result.stderr, "backtest")
    assert lines and len({line["run_id"] for line in lines}) == 1
    assert_no_harmless_beam_lines(result.stderr)
    assert "AIRIS-MON backtest" in result.stdout


def test_launch_and_main_validate_json_lines_only(tmp_path):
    launch = command(str(REPO / "templates" / "launch.py"), "--validate", "--log-format", "json", cwd=tmp_path)
    json_lines(launch.stderr, "launch")
    assert "valid" in launch.stdout
    main = command("-m", "pipelines.main", "--validate", "--log-format=json", "--log-level=DEBUG", cwd=tmp_path)
    json_lines(main.stderr, "main")


def test_backfill_accepts_the_logging_options(tmp_path):
    result = command("-m", "pipelines.backfill", "--help", cwd=tmp_path)
    assert "--log-format {text,json}" in result.stdout and "--log-level" in result.stdout


def test_gateway_json_lines_carry_its_integration_and_uvicorns_go_through_them(tmp_path):
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(json.dumps({"integrations": [gateway_entry(tmp_path, port)]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.gateway", "--config", str(config), "--log-format", "json"],
        cwd=tmp_path, env={**ENV, "AIRIS_TOKEN": TOKEN}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready = process.stdout.readline()  # the readiness line, on stdout
        assert f"ready on http://127.0.0.1:{port}" in ready, process.stderr.read() if process.poll() else ready
        wait_healthy(f"http://127.0.0.1:{port}", process, timeout_s=120)  # healthy too, not only listening
        bad_http_request(port)
        time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    lines = json_lines(stderr, "gateway")
    refused = [line for line in lines if line["message"] == "Invalid HTTP request received."]
    assert len(refused) == 1
    assert refused[0]["logger"] == "uvicorn.error" and refused[0]["integration"] == "api"
    assert refused[0]["level"] == "WARNING"
    assert all(line["integration"] == "api" for line in lines)


def serve_config(folder: Path) -> tuple[Path, int]:
    port = free_port()
    config = {
        "integrations": [gateway_entry(folder, port)],
        "aggregation": {"window_seconds": 60},
        "rules": [{"name": "high", "type": "threshold", "metric": "inference_latency", "aggregation": "p95",
                   "comparator": ">", "threshold": 250, "severity": "high"}],
        "sinks": [{"name": "storage", "type": "parquet"}, {"name": "log", "type": "notification_log"}],
        "default_route": {"sinks": ["log"]},
        "live": {"cycle_interval_s": 1, "metrics_host": "127.0.0.1", "metrics_port": 0},
    }  # fmt: skip
    path = folder / "airis-mon.yaml"
    path.write_text(json.dumps(config))
    return path, port


@pytest.mark.slow
def test_serve_once_json_lines_only(tmp_path):
    config, port = serve_config(tmp_path)
    result = command("-m", "pipelines.serve", "--config", str(config), "--once", "--output", str(tmp_path / "out"),
                     "--log-format", "json", cwd=tmp_path, env={"AIRIS_TOKEN": TOKEN}, timeout=240)  # fmt: skip
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # its gateway child shares the stream
    serve = json_lines("\n".join(json.dumps(line) for line in lines if line["component"] == "serve"), "serve")
    messages = [line["message"] for line in serve]
    assert f"gateway api ready at http://127.0.0.1:{port}" in messages
    assert any(message.startswith("cycle {") for message in messages)
    assert len({line["run_id"] for line in lines}) == 1
    assert {line["component"] for line in lines} <= {"serve", "gateway"}
    assert_no_harmless_beam_lines(result.stderr)


@pytest.mark.slow
def test_serve_hands_its_log_format_and_run_id_to_its_gateway(tmp_path):
    config, port = serve_config(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.serve", "--config", str(config), "--output", str(tmp_path / "out"),
         "--log-format", "json"],
        cwd=tmp_path, env={**ENV, "AIRIS_TOKEN": TOKEN}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, timeout_s=120)
        bad_http_request(port)
        time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-3000:]
    lines = [json.loads(line) for line in stderr.splitlines()]
    (refused,) = [line for line in lines if line["message"] == "Invalid HTTP request received."]
    assert refused["component"] == "gateway" and refused["integration"] == "api"
    serve_ids = {line["run_id"] for line in lines if line["component"] == "serve"}
    assert serve_ids == {refused["run_id"]}


@pytest.mark.parametrize("job", ["pipelines.main", "pipelines.backtest"])
def test_a_refused_config_is_one_json_error_line(tmp_path, job):
    config = tmp_path / "bad.yaml"
    config.write_text("rules: [{name: r, metric: m, threshold: high}]\nbogus: 1\n")
    args = ["--config", str(config), "--log-format", "json"] + (
        ["--history", str(tmp_path)] if "backtest" in job else []
    )
    result = subprocess.run([sys.executable, "-m", job, *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=ENV)  # fmt: skip
    assert result.returncode == 2
    (line,) = json_lines(result.stderr, job.split(".")[1])
    assert line["level"] == "ERROR"
    assert "bogus: Extra inputs are not permitted" in line["message"]
    assert "rules[0].threshold" in line["message"]
