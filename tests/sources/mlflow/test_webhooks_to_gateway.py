"""A real MLflow server delivers signed webhooks to a real gateway on loopback;
the gateway verifies them and spools the same ``model_version_status`` events
the registry poller reports."""

import socket
import threading
import time

import pytest
import uvicorn
from mlflow import MlflowClient

from airis_mon.config import parse_config
from sources.gateway.app import create_app
from sources.gateway.spool import SpoolWriter, segment_payloads
from sources.mlflow import MlflowConfig
from sources.mlflow.transform import MlflowRegistryPoller

SECRET = "mlflow-webhook-secret-for-tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_MLFLOW_SECRET", SECRET)
    port = free_port()
    document = {"integrations": [{"name": "api", "type": "gateway", "spool": "spool", "port": port,
                                  "mlflow_webhook_secret": {"env": "TEST_MLFLOW_SECRET"}}]}  # fmt: skip
    config = parse_config(document, tmp_path).integrations[0]
    writer = SpoolWriter(config.spool)
    server = uvicorn.Server(uvicorn.Config(create_app(config, writer), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}", writer
    server.should_exit = True
    thread.join(timeout=10)


def spooled(writer: SpoolWriter) -> list[dict]:
    lines = []
    for path in sorted(writer.directory.glob("*.jsonl")):
        lines += segment_payloads(path)
    return lines


def test_mlflow_webhooks_are_verified_and_match_the_polled_events(mlflow_server, gateway):
    url, writer = gateway
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    client.create_webhook(name="airis-mon", url=f"{url}/mlflow/webhook", secret=SECRET,
                          events=["model_version.created", "model_version_alias.created"])  # fmt: skip
    poller = MlflowRegistryPoller(MlflowConfig(name="registry", tracking_uri=mlflow_server.url, models=["hooked"]))
    poller.setup()
    poller.poll(0)  # the registry before the change

    run = client.create_run(client.create_experiment("webhook-test"))
    client.create_registered_model("hooked")
    version = client.create_model_version("hooked", f"{run.info.artifact_uri}/model", run_id=run.info.run_id).version
    client.set_registered_model_alias("hooked", "champion", version)

    deadline = time.monotonic() + 30
    while len(spooled(writer)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    delivered = spooled(writer)
    assert sorted(e["data"]["change"] for e in delivered) == ["model_version.created", "model_version_alias.created"]
    assert {(e["event_type"], e["source"]) for e in delivered} == {("model_version_status", "mlflow")}

    # The poller sees the state difference: one new version that already carries its alias; the
    # webhooks report each action. Same event type, same change names, same model version.
    (polled,) = poller.poll(1)
    assert (polled["event_type"], polled["data"]["change"]) == ("model_version_status", "model_version.created")
    assert polled["data"]["aliases"] == ["champion"]
    assert {(e["data"]["model_name"], str(e["data"]["version"])) for e in [polled, *delivered]} == {("hooked", version)}
