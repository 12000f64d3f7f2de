"""A real gateway process for tests: ``python -m pipelines.gateway --config FILE`` on a free 127.0.0.1 port,
its memory read from ``/proc/PID/status``. Not a test module (no ``test_`` prefix)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 60.0, log: Path | None = None) -> None:
    """Wait until ``GET url/healthz`` answers 200; fail when ``process`` exits first (quoting ``log``) or after
    ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited: {log.read_text()[-2000:] if log else process.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"nothing healthy at {url}")


class LiveGateway:
    """One gateway process for ``settings`` (the integration entry, beside name/type/spool/host/port);
    ``env`` holds the secrets the entry names with ``{env: NAME}``. Its stderr goes to ``gateway.log``."""

    def __init__(self, folder: Path, settings: dict, env: dict[str, str]):
        self.folder, self.port = folder, free_port()
        entry = {"name": "api", "type": "gateway", "spool": "spool", "host": "127.0.0.1", "port": self.port,
                 **settings}  # fmt: skip
        self.config = folder / "gateway.yaml"
        self.config.write_text(json.dumps({"integrations": [entry]}))  # JSON is YAML
        self.log = folder / "gateway.log"
        self.url = f"http://127.0.0.1:{self.port}"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pipelines.gateway", "--config", str(self.config)],
                cwd=REPO, env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        self._wait_ready()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self, timeout_s: float = 60.0) -> None:
        wait_healthy(self.url, self.process, timeout_s, self.log)

    def memory_mb(self) -> dict[str, float]:
        """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) of the process, MB."""
        fields = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024  # kB
        return fields

    def errors_logged(self) -> str:
        """What the gateway logged at ERROR or above, or tracebacks (it logs nothing else at its level)."""
        text = self.log.read_text(errors="replace")
        return "\n".join(line for line in text.splitlines() if "ERROR" in line or "Traceback" in line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: closes the open segment
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
