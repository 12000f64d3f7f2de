"""A real console (uvicorn + the FastAPI app) on a free loopback port, for HTTP and browser tests.

``ConsoleServer(config_document, output)`` validates the config (its ``console.port`` is replaced by a free
port and ``public_url`` by the server's address), builds the same services ``python -m pipelines.console``
builds, serves them in a thread, and stops on ``close()``.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import requests
import uvicorn

from airis_mon.config import Config, parse_config
from console.app import create_app
from pipelines.console import build_services

__all__ = ["ConsoleServer", "free_port"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ConsoleServer:
    """The console over ``output``, configured by ``document`` (a config mapping with a ``console:`` section)."""

    def __init__(self, document: dict, output: Path, base_dir: Path):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        console = {**document["console"], "host": "127.0.0.1", "port": port, "public_url": self.url}
        self.config: Config = parse_config({**document, "console": console}, base_dir)
        self.services = build_services(self.config, output)
        self.services.store.refresh()
        self.app = create_app(self.config, self.services)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning",
                                                     access_log=False, log_config=None))  # fmt: skip
        self._thread = threading.Thread(target=self._server.run, name="console", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("the console did not start")

    def sign_in(self, token: str) -> requests.Session:
        """A requests session signed in with ``token`` (cookie set), and its CSRF token as ``.csrf``."""
        session = requests.Session()
        answer = session.post(f"{self.url}/login", data={"token": token, "next": "/alerts"}, timeout=10)
        answer.raise_for_status()
        page = session.get(f"{self.url}/silences", timeout=10).text
        marker = 'name="csrf_token" value="'
        session.csrf = page.split(marker, 1)[1].split('"', 1)[0]  # type: ignore[attr-defined]
        return session

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
