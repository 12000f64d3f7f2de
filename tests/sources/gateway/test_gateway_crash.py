"""Crash test: under load the gateway is killed with SIGKILL; every request
that got a 2xx is in the spool afterwards, and the gateway restarts on it."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from sources.gateway.spool import closed_segments, segment_payloads
from tests.conftest import DAY_MS, metrics_payload

REPO = Path(__file__).resolve().parents[3]
TOKEN = "crash-test-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gateway(config: Path) -> subprocess.Popen:
    env = {**os.environ, "CRASH_TEST_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "pipelines.gateway", "--config", str(config)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("gateway did not become ready")


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_request(tmp_path):
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"integrations:\n  - name: api\n    type: gateway\n    spool: spool\n    port: {port}\n"
        f"    rate_limit_per_s: 100000\n    rate_limit_burst: 100000\n"
        f"    tokens: [{{name: load, token: {{env: CRASH_TEST_TOKEN}}}}]\n"
    )
    url = f"http://127.0.0.1:{port}"
    gateway = start_gateway(config)
    acknowledged: list[str] = []
    bodies: dict[str, tuple[dict, str]] = {}  # request id -> (body, ack id)
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        session = requests.Session()
        for n in range(100_000):
            if stop.is_set():
                return
            request_id = f"w{worker}-{n}"
            body = metrics_payload(DAY_MS + n, "load", ("latency", 1.0, "ms", {"request_id": request_id}))
            try:
                headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": request_id}
                response = session.post(f"{url}/api/v1/metrics/ingest", json=body, timeout=5, headers=headers)
            except requests.RequestException:
                return  # the gateway is gone
            if 200 <= response.status_code < 300:
                with lock:
                    acknowledged.append(request_id)
                    bodies[request_id] = (body, response.json()["id"])

    try:
        wait_ready(url, gateway)
        workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(1.5)
        gateway.send_signal(signal.SIGKILL)  # no chance to close anything
        gateway.wait(timeout=10)
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
    finally:
        if gateway.poll() is None:
            gateway.kill()
    assert len(acknowledged) > 50, "the load never got going"

    restarted = start_gateway(config)  # recovers the segment left open, on the same spool
    try:
        wait_ready(url, restarted)
        after = requests.post(f"{url}/api/v1/metrics/ingest", json=metrics_payload(DAY_MS, "load", ("x", 1, "", {})),
                              headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)  # fmt: skip
        assert after.status_code == 202
        # Retries of acknowledged requests after the crash: recognised, answered with the same id, not stored.
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for request_id in acknowledged[:10] + acknowledged[-10:]:
            body, ack = bodies[request_id]
            retry = requests.post(f"{url}/api/v1/metrics/ingest", json=body, timeout=5,
                                  headers={**auth, "Idempotency-Key": request_id})  # fmt: skip
            assert retry.status_code == 202 and retry.json()["duplicate"] is True and retry.json()["id"] == ack
            found = requests.get(f"{url}/api/v1/ingest/{ack}", headers=auth, timeout=5)
            assert found.status_code == 200 and found.json()["state"] == "spooled"
    finally:
        restarted.send_signal(signal.SIGTERM)  # graceful: closes the open segment
        restarted.wait(timeout=20)

    spooled = [payload for path in closed_segments(tmp_path / "spool") for payload in segment_payloads(path)]
    ids = [p["metrics"][0]["tags"]["request_id"] for p in spooled if "request_id" in p["metrics"][0]["tags"]]
    assert set(acknowledged) <= set(ids), f"{len(set(acknowledged) - set(ids))} acknowledged requests were lost"
    assert len(ids) == len(set(ids))  # nothing written twice
    assert len(spooled) == len(ids) + 1  # plus the request sent after the restart
