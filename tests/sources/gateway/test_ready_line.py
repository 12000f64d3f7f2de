"""The gateway's one start-up line: its address and spool, printed only once the port accepts connections."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

from tests.sources.gateway.live import REPO, free_port


def test_the_ready_line_comes_when_the_port_answers(tmp_path):
    port = free_port()
    entry = {"name": "api", "type": "gateway", "spool": str(tmp_path / "spool"), "host": "127.0.0.1", "port": port,
             "tokens": [{"name": "ci", "token": {"env": "READY_TEST_TOKEN"}}]}  # fmt: skip
    config = tmp_path / "gateway.yaml"
    config.write_text(json.dumps({"integrations": [entry]}))
    process = subprocess.Popen([sys.executable, "-m", "pipelines.gateway", "--config", str(config)], cwd=REPO,
                               env={**os.environ, "READY_TEST_TOKEN": "ready-test-token-0123456789"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = process.stdout.readline()
        with socket.create_connection(("127.0.0.1", port), timeout=1):  # no retry: it must answer now
            pass
        assert line.startswith(f"AIRIS-MON gateway 'api' ready on http://127.0.0.1:{port} ")
        assert f"spool {tmp_path / 'spool'}" in line and "1 token(s)" in line
        assert "ready-test-token" not in line
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
