"""Load for the continuous runner: clients posting metrics to the gateway on loopback, with injected breaches.

Shared by ``python -m benchmarks.live`` and the SIGKILL test
(tests/pipelines/live/test_sigkill.py). Each client owns a slice of the
series and posts one metrics payload per ``interval_s`` holding one point per
series of its slice, stamped with the time of that attempt (a failed attempt
is dropped, not retried with an old timestamp: the runner accepts points up
to ``live.allowed_lateness`` late). A series is ``inference_latency`` tagged
``model_name: mNNNNN``; its value is ``BASELINE_MS`` plus a little noise, or
``BREACH_MS`` while one of the ``incidents`` covers it.

Everything stays on 127.0.0.1, and every loop is bounded by ``duration_s``.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import requests

__all__ = ["BASELINE_MS", "BREACH_MS", "Incident", "Load", "free_port", "model_name", "rotating_incidents",
           "wait_until_serving"]  # fmt: skip

BASELINE_MS = 40.0
BREACH_MS = 900.0


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, timeout_s: float = 120) -> None:
    """Poll ``URL/healthz`` until it answers 2xx; ``TimeoutError`` after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not come up in {timeout_s:g} s")


def model_name(index: int) -> str:
    return f"m{index:05d}"


@dataclass(frozen=True)
class Incident:
    """Series ``model`` breaches from ``start_s`` to ``end_s`` (s after the load started)."""

    model: int
    start_s: float
    end_s: float


def rotating_incidents(duration_s: float, every_s: float, length_s: float, models: int, first_s: float = 20.0):
    """One incident every ``every_s`` seconds, ``length_s`` long, on the next model each time."""
    incidents, start, index = [], first_s, 0
    while start + length_s < duration_s:
        incidents.append(Incident(index % models, start, start + length_s))
        start += every_s
        index += 1
    return incidents


@dataclass
class Load:
    """Posts ``series`` series through ``clients`` threads, one payload per client every ``interval_s``."""

    url: str  # the gateway, e.g. http://127.0.0.1:8080
    token: str
    series: int
    clients: int = 4
    interval_s: float = 1.0
    incidents: list[Incident] = field(default_factory=list)
    record_points: bool = False  # keep (timestamp ms, model, value) of every acknowledged point
    acked_points: list[tuple[int, str, float]] = field(default_factory=list)
    acked: int = 0  # points acknowledged (202)
    refused: int = 0  # points whose request failed or got another answer
    started_at: float = 0.0  # wall time the load started, s

    def _value(self, index: int, elapsed: float, tick: int) -> float:
        for incident in self.incidents:
            if incident.model == index and incident.start_s <= elapsed < incident.end_s:
                return BREACH_MS
        return BASELINE_MS + (index + tick) % 5

    def _client(self, slice_: range, duration_s: float, stop: threading.Event, lock: threading.Lock) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token}"}
        tick = 0
        while not stop.is_set():
            began = time.time()
            elapsed = began - self.started_at
            if elapsed >= duration_s:
                return
            ts = int(began * 1000)
            points = [(model_name(i), self._value(i, elapsed, tick)) for i in slice_]
            payload = {"timestamp": ts, "source": "loadgen",
                       "metrics": [{"name": "inference_latency", "value": v, "unit": "ms",
                                    "tags": {"model_name": m}} for m, v in points]}  # fmt: skip
            try:
                ok = session.post(f"{self.url}/api/v1/metrics/ingest", json=payload, headers=headers, timeout=10)
                ok = ok.status_code == 202
            except requests.RequestException:
                ok = False
                session = requests.Session()
            with lock:
                if ok:
                    self.acked += len(points)
                    if self.record_points:
                        self.acked_points.extend((ts, m, v) for m, v in points)
                else:
                    self.refused += len(points)
            tick += 1
            stop.wait(max(0.0, self.interval_s - (time.time() - began)))

    def run(self, duration_s: float, stop: threading.Event | None = None) -> None:
        """Post for ``duration_s`` seconds (or until ``stop``); returns when every client has stopped."""
        stop = stop or threading.Event()
        lock = threading.Lock()
        self.started_at = time.time()
        per_client = -(-self.series // self.clients)
        threads = [
            threading.Thread(
                target=self._client,
                args=(range(c * per_client, min(self.series, (c + 1) * per_client)), duration_s, stop, lock),
                daemon=True,
            )
            for c in range(self.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
