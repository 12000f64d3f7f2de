"""Silences created through the gateway's API apply to the live runner's next cycle, and stop when expired.

A real gateway process (``python -m pipelines.gateway``) takes the points over HTTP and the silences on
``/api/v2/silences``; a :class:`LiveRunner` over the same config runs the cycles. Silenced alerts are
stored (``silenced: true``) and not notified (not in the outbox).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from airis_mon.config import load_config
from pipelines.live.runner import LiveRunner
from tests.sources.gateway.live import LiveGateway

pytestmark = pytest.mark.slow

MINUTE = 60_000
WRITER, READER = "silence-writer-token-0123456789", "ingest-only-token-0123456789"


def _config(folder: Path, port: int) -> Path:
    path = folder / "config.yaml"
    path.write_text(f"""
integrations:
  - name: api
    type: gateway
    spool: ./spool
    port: {port}
    max_segment_age_s: 0.2
    tokens:
      - {{name: oncall, token: {{env: T_WRITER}}, scopes: [ingest, "silences:write"]}}
      - {{name: ci, token: {{env: T_READER}}}}
aggregation: {{window_seconds: 60}}
live: {{allowed_lateness: 1s}}
rules:
  - {{name: latency, metric: inference_latency, aggregation: max, comparator: ">", threshold: 250, for: 0,
     repeat_interval: 1m, severity: high, group_by: [model_name]}}
sinks:
  - {{name: storage, type: parquet, path: out}}
  - {{name: feed, type: notification_log}}
default_route: {{sinks: [feed]}}
""")
    return path


def _ingest(gateway: LiveGateway, minute_ms: int) -> None:
    points = [{"name": "inference_latency", "value": 900.0, "unit": "ms", "tags": {"model_name": model}}
              for model in ("fraud", "churn")]  # fmt: skip
    body = {"timestamp": minute_ms + 5_000, "source": "s", "metrics": points}
    headers = {"Authorization": f"Bearer {READER}"}
    answer = requests.post(f"{gateway.url}/api/v1/metrics/ingest", headers=headers, json=body, timeout=10)
    assert answer.status_code == 202, answer.text


def _wait_closed(spool: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if list(spool.glob("segment-*.jsonl")) and not list(spool.glob("*.open*")):
            return
        time.sleep(0.1)


def _alerts(out: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(out.glob("alerts-*.jsonl")) for line in p.read_text().splitlines()]


def _notified(state: Path) -> set[tuple[str, int]]:
    """(alert id, alert time) of every notification in the outbox."""
    entries = [json.loads(line) for p in (state / "outbox").glob("c*.jsonl") for line in p.read_text().splitlines()]
    return {(e["alert"]["id"], e["alert"]["timestamp_ms"]) for e in entries}


def _models(alerts: list[dict]) -> dict[str, bool]:
    return {json.loads(a["group"])["model_name"]: a["silenced"] for a in alerts}


def test_api_silence_applies_next_cycle_and_stops_when_expired(tmp_path, monkeypatch):
    from tests.sources.gateway.live import free_port

    port = free_port()
    config_path = _config(tmp_path, port)
    env = {"T_WRITER": WRITER, "T_READER": READER}
    gateway = LiveGateway.__new__(LiveGateway)
    gateway.folder, gateway.port, gateway.config = tmp_path, port, config_path
    gateway.log, gateway.url = tmp_path / "gateway.log", f"http://127.0.0.1:{port}"
    import os
    import subprocess
    import sys

    from tests.sources.gateway.live import REPO

    with open(gateway.log, "wb") as log:
        gateway.process = subprocess.Popen([sys.executable, "-m", "pipelines.gateway", "--config", str(config_path)],
                                           cwd=REPO, env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                                           stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    try:
        gateway._wait_ready()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config = load_config(config_path)
        runner = LiveRunner(config, str(tmp_path / "out"))
        base = (int(time.time() * 1000) // MINUTE - 10) * MINUTE  # recent minutes: silences are in event time

        def cycle(minute: int) -> list[dict]:
            _ingest(gateway, base + minute * MINUTE)
            time.sleep(0.5)
            _wait_closed(tmp_path / "spool")
            runner.run_cycle(now_ms=base + (minute + 1) * MINUTE + 2_000)
            return [a for a in _alerts(tmp_path / "out") if a["timestamp_ms"] == base + (minute + 1) * MINUTE]

        first = cycle(0)
        assert _models(first) == {"fraud": False, "churn": False}

        auth = {"Authorization": f"Bearer {WRITER}"}
        body = {"matchers": [{"name": "model_name", "value": "fraud", "isRegex": False, "isEqual": True},
                             {"name": "severity", "value": "high|critical", "isRegex": True}],
                "startsAt": base, "endsAt": int(time.time() * 1000) + 3_600_000, "createdBy": "jdoe",
                "comment": "deploy"}  # fmt: skip
        refused = requests.post(f"{gateway.url}/api/v2/silences", json=body, timeout=10,
                                headers={"Authorization": f"Bearer {READER}"})  # fmt: skip
        assert refused.status_code == 403  # an ingest-only token cannot silence
        created = requests.post(f"{gateway.url}/api/v2/silences", json=body, headers=auth, timeout=10)
        assert created.status_code == 200, created.text
        silence_id = created.json()["silenceID"]

        second = cycle(1)
        assert _models(second) == {"fraud": True, "churn": False}  # stored either way; only fraud silenced
        notified = _notified(runner.state_dir)
        assert {((a["id"], a["timestamp_ms"]) in notified) for a in second if a["silenced"]} == {False}
        assert {((a["id"], a["timestamp_ms"]) in notified) for a in second if not a["silenced"]} == {True}

        listed = requests.get(f"{gateway.url}/api/v2/silences", headers={"Authorization": f"Bearer {READER}"},
                              timeout=10).json()  # fmt: skip
        assert [(s["id"], s["status"]["state"]) for s in listed] == [(silence_id, "active")]
        assert requests.delete(f"{gateway.url}/api/v2/silence/{silence_id}", headers=auth, timeout=10).ok
        assert requests.get(f"{gateway.url}/api/v2/silence/{silence_id}", headers=auth,
                            timeout=10).json()["status"]["state"] == "expired"  # fmt: skip

        time.sleep(0.01)
        third = cycle(int((time.time() * 1000 - base) // MINUTE))  # alerts after the expiry
        assert _models(third) == {"fraud": False, "churn": False}
        assert WRITER not in gateway.log.read_text() and READER not in gateway.log.read_text()
    finally:
        gateway.process.terminate()
        gateway.process.wait(timeout=30)
