"""Webhook registrations through the gateway API: no SSRF destinations, no header injection, headers secret
(issue 14, item 6). Delivery-time resolution and pinning are tested in tests/sinks/webhooks/test_destination.py."""

import pytest
from fastapi.testclient import TestClient

from airis_mon.config import parse_config
from sources.gateway.app import create_app
from sources.gateway.spool import SpoolWriter

TOKEN = "t0ken-for-registration-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOOK = {"name": "bot", "url": "https://hooks.example.com/in", "events": ["alert.triggered"],
        "secret": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="}  # fmt: skip


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("REG_TOKEN", TOKEN)
    tokens = [{"name": "ci", "token": {"env": "REG_TOKEN"}}]
    entry = {"name": "api", "type": "gateway", "spool": "spool", "tokens": tokens,
             "webhook_allowed_networks": ["10.20.0.0/16"]}  # fmt: skip
    config = parse_config({"integrations": [entry]}, tmp_path).integrations[0]
    return TestClient(create_app(config, SpoolWriter(config.spool)))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://localhost:8080/x",
        "http://127.0.0.1/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://10.0.0.5/x",
        "http://192.168.1.1/x",
        "http://0x7f000001/x",
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
    ],
)
def test_destinations_that_are_not_public_are_refused_naming_the_url_without_echoing_it(client, url):
    answer = client.post("/api/v1/integrations/webhooks", json={**HOOK, "url": url}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert [d["field"] for d in answer.json()["details"]] == ["url"]
    host = url.split("//")[1].split("/")[0].strip("[]")
    assert not host or host not in answer.text


def test_an_explicitly_allowed_network_may_be_registered(client):
    answer = client.post("/api/v1/integrations/webhooks", json={**HOOK, "url": "http://10.20.3.4/in"}, headers=AUTH)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    "headers, field",
    [
        ({"X-Token": "a\r\nX-Injected: 1"}, "headers.X-Token"),
        ({"X-Token": "a\nb"}, "headers.X-Token"),
        ({"X-Token": "a\x00b"}, "headers.X-Token"),
        ({"X-Bad\r\nName": "v"}, "headers"),
        ({"Host": "internal.example"}, "headers.Host"),
        ({"Transfer-Encoding": "chunked"}, "headers.Transfer-Encoding"),
    ],
)
def test_header_injection_and_framing_headers_are_refused(client, headers, field):
    answer = client.post("/api/v1/integrations/webhooks", json={**HOOK, "headers": headers}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["details"][0]["field"].startswith(field)
    assert "Injected" not in answer.text and "internal.example" not in answer.text


def test_header_values_are_secrets_never_returned(client):
    hook = {**HOOK, "headers": {"Authorization": "Bearer receiver-credential-123"}}
    created = client.post("/api/v1/integrations/webhooks", json=hook, headers=AUTH)
    listed = client.get("/api/v1/integrations/webhooks", headers=AUTH)
    assert created.status_code == 201 and listed.status_code == 200
    for answer in (created, listed):
        assert "receiver-credential-123" not in answer.text and "whsec" not in answer.text
    assert listed.json()["webhooks"][0]["headers"] == {"Authorization": "***"}
