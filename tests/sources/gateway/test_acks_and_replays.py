"""Ack ids stored with the records, Idempotency-Key, and replays refused across restarts (issue 14, items 5-7).

A "restart" is a new ``SpoolWriter`` and a new app on the same spool folder (what a new gateway process
does at start); the crash case leaves the open segment behind, as a SIGKILL does. The real-process
SIGKILL case is in ``test_gateway_crash.py``.
"""

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from airis_mon.config import parse_config
from sources.gateway.app import create_app
from sources.gateway.spool import SpoolWriter, closed_segments, mark_processed, segment_payloads
from tests.conftest import DAY_MS, metrics_payload

TOKEN = "t0ken-for-ack-tests"
OTHER = "another-t0ken-for-ack-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW_S = 1_795_824_000.0
TESTDATA = Path(__file__).parent / "testdata"
GITHUB_SECRET = b"It's a Secret to Everybody"


class Gateway:
    """One gateway 'process' on ``spool``: a writer and its app; :meth:`restart` starts the next one."""

    def __init__(self, tmp_path: Path, monkeypatch, **settings):
        monkeypatch.setenv("ACK_TOKEN", TOKEN)
        monkeypatch.setenv("ACK_OTHER", OTHER)
        monkeypatch.setenv("ACK_MLFLOW", "mlflow-secret")
        monkeypatch.setenv("ACK_GITHUB", GITHUB_SECRET.decode())
        tokens = [{"name": "ci", "token": {"env": "ACK_TOKEN"}}, {"name": "other", "token": {"env": "ACK_OTHER"}}]
        entry = {"name": "api", "type": "gateway", "spool": "spool", "tokens": tokens,
                 "mlflow_webhook_secret": {"env": "ACK_MLFLOW"}, "github_webhook_secret": {"env": "ACK_GITHUB"},
                 **settings}  # fmt: skip
        self.config = parse_config({"integrations": [entry]}, tmp_path).integrations[0]
        self.spool = Path(self.config.spool)
        self.now = NOW_S
        self.start()

    def start(self) -> None:
        self.writer = SpoolWriter(self.spool, clock=lambda: self.now)
        self.client = TestClient(create_app(self.config, self.writer, wall_clock=lambda: self.now))

    def restart(self, crash: bool = False) -> None:
        """A new process: after a clean stop (the open segment closed), or after a crash (left open)."""
        if not crash:
            self.writer.close()
        self.start()

    def stored(self) -> list[dict]:
        self.writer.close()
        folders = [self.spool, self.spool / "done"]
        return [p for folder in folders for path in closed_segments(folder) for p in segment_payloads(path)]


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    return Gateway(tmp_path, monkeypatch)


def body(value: float = 1.0) -> dict:
    return metrics_payload(DAY_MS, "ci", ("latency", value, "ms", {"model": "a"}))


def test_the_ack_id_is_stored_with_the_records_and_can_be_looked_up(gateway):
    answer = gateway.client.post("/api/v1/metrics/ingest", json=body(), headers=AUTH)
    assert answer.status_code == 202
    ack = answer.json()["id"]
    gateway.writer.close()
    (segment,) = closed_segments(gateway.spool)
    (line,) = [json.loads(raw) for raw in segment.read_bytes().splitlines()]
    assert line["ack"] == ack and line["payloads"] == [body()] and line["token"] == "ci"
    found = gateway.client.get(f"/api/v1/ingest/{ack}", headers=AUTH)
    assert found.status_code == 200 and found.json() == {"id": ack, "state": "spooled",
                                                         "received_ms": int(NOW_S * 1000), "payloads": 1}  # fmt: skip
    mark_processed(gateway.spool, [segment])  # what a successful pipeline run does
    assert gateway.client.get(f"/api/v1/ingest/{ack}", headers=AUTH).json()["state"] == "processed"


def test_ack_ids_are_unique_and_other_clients_records_are_not_shown(gateway):
    acks = [gateway.client.post("/api/v1/metrics/ingest", json=body(i), headers=AUTH).json()["id"] for i in range(20)]
    assert len(set(acks)) == 20
    other = {"Authorization": f"Bearer {OTHER}"}
    assert gateway.client.get(f"/api/v1/ingest/{acks[0]}", headers=other).status_code == 404
    for unknown in ("000001-ffff", "nonsense", "000001-0" + "0" * 20):
        missing = gateway.client.get(f"/api/v1/ingest/{unknown}", headers=AUTH)
        assert missing.status_code == 404 and missing.json()["details"][0]["field"] == "id"


def test_a_repeated_idempotency_key_stores_nothing_and_answers_the_first_id_also_after_a_restart(gateway):
    keyed = {**AUTH, "Idempotency-Key": "batch-0001"}
    first = gateway.client.post("/api/v1/metrics/ingest", json=body(), headers=keyed)
    again = gateway.client.post("/api/v1/metrics/ingest", json=body(), headers=keyed)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    gateway.restart()
    after_restart = gateway.client.post("/api/v1/metrics/ingest", json=body(), headers=keyed)
    assert after_restart.json() == again.json()
    gateway.restart(crash=True)  # the key's segment was never closed cleanly
    after_crash = gateway.client.post("/api/v1/metrics/ingest", json=body(), headers=keyed)
    assert after_crash.json()["id"] == first.json()["id"] and after_crash.json()["duplicate"] is True
    assert gateway.stored() == [body()]


def test_an_idempotency_key_is_per_client_and_refused_with_another_body(gateway):
    keyed = {**AUTH, "Idempotency-Key": "k-1"}
    assert gateway.client.post("/api/v1/metrics/ingest", json=body(1), headers=keyed).status_code == 202
    changed = gateway.client.post("/api/v1/metrics/ingest", json=body(2), headers=keyed)
    assert changed.status_code == 422 and changed.json()["details"] == [
        {"field": "Idempotency-Key", "message": "already used with a different body"}
    ]
    other = {"Authorization": f"Bearer {OTHER}", "Idempotency-Key": "k-1"}
    assert gateway.client.post("/api/v1/metrics/ingest", json=body(2), headers=other).json()["duplicate"] is False
    bad = gateway.client.post("/api/v1/metrics/ingest", json=body(), headers={**AUTH, "Idempotency-Key": "a b"})
    assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "Idempotency-Key"
    assert gateway.stored() == [body(1), body(2)]


def test_keys_are_forgotten_after_the_window(tmp_path, monkeypatch):
    gateway = Gateway(tmp_path, monkeypatch, dedup_window_s=600)
    keyed = {**AUTH, "Idempotency-Key": "k-window"}
    first = gateway.client.post("/api/v1/metrics/ingest", json=body(), headers=keyed).json()
    gateway.now += 601
    gateway.restart()
    later = gateway.client.post("/api/v1/metrics/ingest", json=body(), headers=keyed).json()
    assert later["duplicate"] is False and later["id"] != first["id"]
    assert len(gateway.stored()) == 2


def mlflow_headers(raw: bytes, delivery_id: str, timestamp: int) -> dict:
    mac = hmac.new(b"mlflow-secret", f"{delivery_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(mac).decode()
    return {"X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": str(timestamp),
            "X-MLflow-Signature": signature, "Content-Type": "application/json"}  # fmt: skip


@pytest.mark.parametrize("crash", [False, True], ids=["clean restart", "crash"])
def test_an_mlflow_delivery_replayed_after_a_restart_is_not_stored_again(gateway, crash):
    raw = (TESTDATA / "mlflow_model_version_alias_created.json").read_bytes()
    headers = mlflow_headers(raw, "delivery-7", int(NOW_S))
    first = gateway.client.post("/mlflow/webhook", content=raw, headers=headers)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    gateway.restart(crash=crash)
    gateway.now += 60  # still within the signature tolerance: the signature alone cannot refuse it
    replayed = gateway.client.post("/mlflow/webhook", content=raw, headers=headers)
    assert replayed.status_code == 200 and replayed.json()["duplicate"] is True
    assert replayed.json()["id"] == first.json()["id"]
    assert len(gateway.stored()) == 1


def test_the_same_github_delivery_twice_is_spooled_once(gateway):
    raw = (TESTDATA / "github_workflow_run_completed_failure.json").read_bytes()
    signature = "sha256=" + hmac.new(GITHUB_SECRET, raw, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
               "X-Hub-Signature-256": signature, "Content-Type": "application/json"}  # fmt: skip
    first = gateway.client.post("/github/webhook", content=raw, headers=headers)
    gateway.restart(crash=True)
    second = gateway.client.post("/github/webhook", content=raw, headers=headers)
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    assert second.json()["id"] == first.json()["id"]
    kinds = sorted("metrics" if "metrics" in p else p["event_type"] for p in gateway.stored())
    assert kinds == ["metrics", "workflow_run"]  # one delivery's payloads, once


def test_a_failed_store_is_forgotten_so_the_retry_is_accepted(gateway):
    keyed = {**AUTH, "Idempotency-Key": "k-disk-full"}
    gateway.writer.close()  # no open segment: the next request must create one
    aside = gateway.spool.with_name("spool-aside")
    gateway.spool.rename(aside)
    gateway.spool.write_text("not a folder")  # creating the segment fails, also for root
    try:
        refused = gateway.client.post("/api/v1/metrics/ingest", json=body(), headers=keyed)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    finally:
        gateway.spool.unlink()
        aside.rename(gateway.spool)
    retried = gateway.client.post("/api/v1/metrics/ingest", json=body(), headers=keyed)
    assert retried.status_code == 202 and retried.json()["duplicate"] is False
    assert gateway.stored() == [body()]


def test_keys_files_older_than_the_window_are_pruned_at_start(tmp_path, monkeypatch):
    gateway = Gateway(tmp_path, monkeypatch, dedup_window_s=600)
    gateway.client.post("/api/v1/metrics/ingest", json=body(), headers={**AUTH, "Idempotency-Key": "k-prune"})
    gateway.writer.close()
    (keys_file,) = (gateway.spool / "keys").glob("*.keys")
    old = NOW_S - 601
    os.utime(keys_file, (old, old))
    gateway.start()
    assert not keys_file.exists()
