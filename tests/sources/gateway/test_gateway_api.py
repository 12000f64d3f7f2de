"""The gateway's HTTP API: auth, validation, limits, hand-off (FastAPI app, in process)."""

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from airis_mon.config import parse_config
from sources.gateway.app import create_app
from sources.gateway.spool import SpoolWriter, closed_segments, segment_payloads
from tests.conftest import DAY_MS, metrics_payload

TOKEN = "t0ken-for-tests-only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TESTDATA = Path(__file__).parent / "testdata"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_GATEWAY_TOKEN", TOKEN)
    (tmp_path / "health_report.json").write_text('{"overall_status": "healthy", "integrations": {}}')
    tokens = [{"name": "ci", "token": {"env": "TEST_GATEWAY_TOKEN"}}]
    document = {"integrations": [{
        "name": "api", "type": "gateway", "spool": "spool", "tokens": tokens, "max_body_bytes": 2048,
        "rate_limit_per_s": 1, "rate_limit_burst": 3, "health_report": "health_report.json",
    }]}  # fmt: skip
    config = parse_config(document, tmp_path).integrations[0]
    writer = SpoolWriter(config.spool)
    clock = Clock()
    client = TestClient(create_app(config, writer, clock=clock))
    client.clock, client.writer, client.spool = clock, writer, tmp_path / "spool"
    return client


def spooled(client) -> list[dict]:
    client.writer.close()
    return [payload for path in closed_segments(client.spool) for payload in segment_payloads(path)]


def test_metrics_are_accepted_only_after_they_are_in_the_spool(gateway):
    body = metrics_payload(DAY_MS, "ci", ("latency", 12.5, "ms", {"model": "a"}))
    response = gateway.post("/api/v1/metrics/ingest", json=body, headers=AUTH)
    assert response.status_code == 202 and response.json()["metrics"] == 1
    assert spooled(gateway) == [body]


@pytest.mark.parametrize(
    "headers, status",
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": "Basic dXNlcjpwYXNz"}, 401)],
)
def test_no_or_wrong_token_is_401(gateway, headers, status):
    response = gateway.post(
        "/api/v1/metrics/ingest", json=metrics_payload(DAY_MS, "ci", ("x", 1, "", {})), headers=headers
    )
    assert response.status_code == status and response.headers["www-authenticate"].startswith("Bearer")
    assert spooled(gateway) == []


def test_validation_errors_name_every_bad_field_and_echo_nothing(gateway):
    body = {
        "timestamp": "yesterday",
        "source": "",
        "metrics": [{"name": "x", "value": "secret-value-123"}, {"value": 1}],
    }
    response = gateway.post("/api/v1/metrics/ingest", json=body, headers=AUTH)
    assert response.status_code == 400
    fields = [d["field"] for d in response.json()["details"]]
    assert fields == ["timestamp", "source", "metrics[0].value", "metrics[1].name"]
    assert "secret-value-123" not in response.text
    raw = b'{"timestamp": 1, "source": "s", "metrics": [{"name": "x", "value": NaN}]}'
    nan = gateway.post("/api/v1/metrics/ingest", content=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert nan.status_code == 400


def test_body_size_content_type_and_json_errors(gateway):
    big = metrics_payload(DAY_MS, "ci", *[("x", 1, "", {"k": "v" * 50}) for _ in range(40)])
    assert gateway.post("/api/v1/metrics/ingest", json=big, headers=AUTH).status_code == 413
    form = gateway.post("/api/v1/metrics/ingest", data={"a": "b"}, headers=AUTH)
    assert form.status_code == 415
    broken = gateway.post("/api/v1/events/ingest", content=b"{", headers={**AUTH, "Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["details"][0]["field"] == "(body)"


def test_rate_limit_per_token_is_429_with_retry_after(gateway):
    body = metrics_payload(DAY_MS, "ci", ("x", 1, "", {}))
    statuses = [gateway.post("/api/v1/metrics/ingest", json=body, headers=AUTH).status_code for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    limited = gateway.post("/api/v1/metrics/ingest", json=body, headers=AUTH)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    gateway.clock.now += 1.0  # one token refills per second
    assert gateway.post("/api/v1/metrics/ingest", json=body, headers=AUTH).status_code == 202


def test_events_and_user_sync_are_spooled_as_public_payloads(gateway):
    event = {"timestamp": DAY_MS, "event_type": "deploy", "source": "ci", "severity": "warning", "data": {"run": 7}}
    assert gateway.post("/api/v1/events/ingest", json=event, headers=AUTH).status_code == 202
    bad = gateway.post("/api/v1/events/ingest", json={**event, "severity": "fatal"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "severity"
    users = {"source": "okta", "timestamp": DAY_MS, "users": [{"user_id": "u1", "username": "ana", "groups": ["ml"]}]}
    assert gateway.post("/api/v1/integrations/user-sync", json=users, headers=AUTH).status_code == 202
    first, second = spooled(gateway)
    assert first == event
    assert (second["event_type"], second["source"], second["data"]["count"]) == ("user_sync", "okta", 1)
    assert second["data"]["users"][0]["username"] == "ana"


def test_webhook_registrations_never_return_the_secret(gateway):
    hook = {"name": "bot", "url": "https://hooks.example.com/in", "events": ["alert.triggered"],
            "secret": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="}  # fmt: skip
    created = gateway.post("/api/v1/integrations/webhooks", json=hook, headers=AUTH)
    assert created.status_code == 201 and "secret" not in created.json()
    listed = gateway.get("/api/v1/integrations/webhooks", headers=AUTH)
    assert listed.json() == {"webhooks": [{k: v for k, v in hook.items() if k != "secret"} | {"headers": {}}]}
    assert "whsec" not in listed.text
    private = gateway.post(
        "/api/v1/integrations/webhooks", json={**hook, "url": "http://169.254.169.254/x"}, headers=AUTH
    )
    assert private.status_code == 400 and private.json()["details"][0]["field"] == "url"
    gateway.clock.now += 10  # stay inside the rate limit
    assert gateway.delete("/api/v1/integrations/webhooks", params={"name": "bot"}, headers=AUTH).status_code == 204
    assert gateway.delete("/api/v1/integrations/webhooks", params={"name": "bot"}, headers=AUTH).status_code == 404


def test_health_endpoints_and_openapi(gateway):
    assert gateway.get("/healthz").json() == {"status": "ok"}
    assert gateway.get("/api/v1/integrations/health").status_code == 401
    assert gateway.get("/api/v1/integrations/health", headers=AUTH).json()["overall_status"] == "healthy"
    paths = gateway.get("/openapi.json").json()["paths"]
    assert {"/api/v1/metrics/ingest", "/api/v1/events/ingest", "/api/v1/integrations/user-sync",
            "/api/v1/integrations/webhooks", "/api/v1/integrations/health", "/healthz"} <= set(paths)  # fmt: skip


@pytest.fixture
def signed_gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_GATEWAY_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_MLFLOW_SECRET", "mlflow-secret")
    monkeypatch.setenv("TEST_GITHUB_SECRET", "It's a Secret to Everybody")
    tokens = [{"name": "ci", "token": {"env": "TEST_GATEWAY_TOKEN"}}]
    document = {"integrations": [{
        "name": "api", "type": "gateway", "spool": "spool", "tokens": tokens,
        "mlflow_webhook_secret": {"env": "TEST_MLFLOW_SECRET"}, "github_webhook_secret": {"env": "TEST_GITHUB_SECRET"},
    }]}  # fmt: skip
    config = parse_config(document, tmp_path).integrations[0]
    writer = SpoolWriter(config.spool)
    client = TestClient(create_app(config, writer, wall_clock=lambda: 1_795_824_000.0))
    client.writer, client.spool = writer, tmp_path / "spool"
    return client


def mlflow_headers(body: bytes, delivery_id: str, timestamp: int, secret: bytes = b"mlflow-secret") -> dict:
    mac = hmac.new(secret, f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": str(timestamp),
        "X-MLflow-Signature": "v1," + base64.b64encode(mac).decode(),
        "Content-Type": "application/json",
    }


def test_mlflow_webhooks_are_verified_deduplicated_and_spooled_as_events(signed_gateway):
    body = (TESTDATA / "mlflow_model_version_alias_created.json").read_bytes()
    now = 1_795_824_000
    ok = signed_gateway.post("/mlflow/webhook", content=body, headers=mlflow_headers(body, "d-1", now))
    assert ok.status_code == 200, ok.text
    again = signed_gateway.post("/mlflow/webhook", content=body, headers=mlflow_headers(body, "d-1", now))
    assert again.status_code == 200 and again.json()["duplicate"] is True  # stored once (below)
    assert again.json()["id"] == ok.json()["id"]
    stale = signed_gateway.post("/mlflow/webhook", content=body, headers=mlflow_headers(body, "d-2", now - 3600))
    assert stale.status_code == 401
    forged = signed_gateway.post("/mlflow/webhook", content=body, headers=mlflow_headers(body, "d-3", now, b"guess"))
    assert forged.status_code == 403
    (event,) = spooled(signed_gateway)
    assert (event["event_type"], event["source"]) == ("model_version_status", "mlflow")
    assert event["data"]["change"] == "model_version_alias.created"


def test_github_webhooks_need_a_valid_signature(signed_gateway):
    body = (TESTDATA / "github_workflow_run_completed_failure.json").read_bytes()
    signature = "sha256=" + hmac.new(b"It's a Secret to Everybody", body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "workflow_run", "Content-Type": "application/json"}
    assert signed_gateway.post("/github/webhook", content=body, headers=headers).status_code == 403
    wrong = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    assert signed_gateway.post("/github/webhook", content=body, headers=wrong).status_code == 403
    ok = signed_gateway.post("/github/webhook", content=body, headers={**headers, "X-Hub-Signature-256": signature})
    assert ok.status_code == 200 and ok.json()["events"] == 2  # the run event and its duration metric
    kinds = sorted("metrics" if "metrics" in p else p["event_type"] for p in spooled(signed_gateway))
    assert kinds == ["metrics", "workflow_run"]


def test_the_webhook_sink_sends_to_endpoints_registered_through_the_api(gateway, tmp_path):
    from sinks.webhooks import WebhooksConfig, WebhooksEncoder
    from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
    from transforms.rules.engine import evaluate

    hook = {"name": "bot", "url": "https://hooks.example.com/in", "events": ["alert.resolved"],
            "secret": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="}  # fmt: skip
    assert gateway.post("/api/v1/integrations/webhooks", json=hook, headers=AUTH).status_code == 201
    registrations = tmp_path / "spool" / "config" / "webhooks.json"
    config = WebhooksConfig(name="hooks", registrations=str(registrations))
    assert [e.name for e in config.all_endpoints()] == ["bot"]
    trigger, resolve = evaluate(threshold_rule(), GROUP, series(11, 1))[0]
    requests = WebhooksEncoder(config).encode([trigger, resolve])
    assert [(r.url, carried[0].notification) for r, carried in requests] == [(hook["url"], "resolve")]


def test_the_openapi_document_describes_every_body_and_its_references_resolve(gateway):
    document = gateway.get("/openapi.json").json()
    body = document["paths"]["/api/v1/metrics/ingest"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"timestamp", "source", "metrics"}
    assert body["properties"]["metrics"]["items"]["$ref"] == "#/components/schemas/MetricPointIn"
    event = document["paths"]["/api/v1/events/ingest"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert event["properties"]["severity"]["enum"] == ["info", "warning", "error", "critical"]
    text = json.dumps(document)
    for reference in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert reference in document["components"]["schemas"], reference
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    responses = document["paths"]["/api/v1/metrics/ingest"]["post"]["responses"]
    assert {"400", "401", "413", "415", "429", "503"} <= set(responses)


# --------------------------------------------------------------------------- one bad record never blocks (issue 13)

EVENT = '"event_type": "deploy", "source": "ci", "severity": "info"'
METRICS = "/api/v1/metrics/ingest"
EVENTS = "/api/v1/events/ingest"
JSON = {**AUTH, "Content-Type": "application/json"}


def _point(point: str = '{"name": "x", "value": 1}', timestamp: str = str(DAY_MS)) -> str:
    return f'{{"timestamp": {timestamp}, "source": "ci", "metrics": [{point}]}}'


def _event(timestamp: str = str(DAY_MS), data: str = "{}") -> str:
    return f'{{"timestamp": {timestamp}, {EVENT}, "data": {data}}}'


# (route, body as sent, the field named, the start of its message, text the answer must not contain)
REFUSED = {
    "metrics timestamp 1e30": (METRICS, _point(timestamp="1e30"), "timestamp", "Value error, more than 86400 s", "e30"),
    "metrics timestamp 10**25": (METRICS, _point(timestamp=str(10**25)), "timestamp", "Value error, more", "10000"),
    "metrics timestamp false": (METRICS, _point(timestamp="false"), "timestamp", "Value error, not a", "false"),
    "event timestamp true": (EVENTS, _event("true"), "timestamp", "Value error, not a timestamp: a boolean", "true"),
    "event timestamp 1e266": (EVENTS, _event("1e266"), "timestamp", "Value error, more than 86400 s ahead", "e266"),
    "event timestamp -1e266": (EVENTS, _event("-1e266"), "timestamp", "Value error, before 1970-01-01", "e266"),
    "before the range": (EVENTS, _event('"1969-07-20T20:17:00Z"'), "timestamp", "Value error, before 1970", "1969"),
    "far future": (METRICS, _point(timestamp='"2999-01-01T00:00:00Z"'), "timestamp", "Value error, more than", "2999"),
    "1e400 in event data": (EVENTS, _event(data='{"latency": 1e400}'), "data.latency", "must be a finite", "e400"),
    "NaN in event data": (EVENTS, _event(data='{"a": [NaN]}'), "data.a[0]", "must be a finite number", "NaN"),
    "-Infinity in event data": (EVENTS, _event(data='{"b": -Infinity}'), "data.b", "must be a finite", "Infinity"),
    "NaN metric value": (METRICS, _point('{"name": "x", "value": NaN}'), "metrics[0].value", "must be a finite", "NaN"),
    "1e400 metric value": (METRICS, _point('{"name": "x", "value": 1e400}'), "metrics[0].value", "must be a", "e400"),
    '"1e400" metric value': (METRICS, _point('{"name": "x", "value": "1e400"}'), "metrics[0].value", "must be", "e400"),
    "Infinity in a tag": (
        METRICS, _point('{"name": "x", "value": 1, "tags": {"k": Infinity}}'), "metrics[0].tags.k", "must be", "Inf",
    ),
    "lone surrogate": (EVENTS, _event(data='{"k": "\\ud800"}'), "data.k", "must be valid Unicode text", "ud800"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED)
def test_what_the_pipeline_cannot_process_is_a_400_naming_the_field_and_echoing_nothing(gateway, case):
    route, body, field, message, value = REFUSED[case]
    response = gateway.post(route, content=body.encode(), headers=JSON)
    assert response.status_code == 400, response.text  # 1e400 in event data was a 503 "retry later"
    assert response.json()["error"] == "validation failed"
    assert [(d["field"], d["message"][: len(message)]) for d in response.json()["details"]] == [(field, message)]
    assert value not in response.text
    assert spooled(gateway) == []


def test_a_boolean_user_sync_timestamp_is_a_400(gateway):
    users = '{"source": "okta", "timestamp": false, "users": [{"user_id": "u1", "username": "ana"}]}'
    response = gateway.post("/api/v1/integrations/user-sync", content=users.encode(), headers=JSON)
    assert response.status_code == 400 and response.json()["details"][0]["field"] == "timestamp"
    assert spooled(gateway) == []


@pytest.fixture
def ranged_gateway(tmp_path, monkeypatch):
    """A gateway with a configured timestamp range, its clock at DAY_MS, no tight limits."""
    monkeypatch.setenv("TEST_GATEWAY_TOKEN", TOKEN)
    tokens = [{"name": "ci", "token": {"env": "TEST_GATEWAY_TOKEN"}}]
    document = {"integrations": [{
        "name": "api", "type": "gateway", "spool": "spool", "tokens": tokens, "rate_limit_burst": 1000,
        "timestamps": {"not_before": "2026-11-28T00:00:00Z", "max_future_s": 60},
    }]}  # fmt: skip
    config = parse_config(document, tmp_path).integrations[0]
    writer = SpoolWriter(config.spool)
    client = TestClient(create_app(config, writer, wall_clock=lambda: DAY_MS / 1000))
    client.writer, client.spool = writer, tmp_path / "spool"
    return client


def test_the_accepted_range_is_the_configured_one(ranged_gateway):
    def status(timestamp: int) -> tuple[int, str]:
        response = ranged_gateway.post(METRICS, content=_point(timestamp=str(timestamp)).encode(), headers=JSON)
        return response.status_code, response.text

    assert status(DAY_MS)[0] == 202
    assert status(DAY_MS + 60_000)[0] == 202  # the edge: 60 s ahead
    early, text = status(DAY_MS - 1)
    assert early == 400 and "before 2026-11-28T00:00:00.000Z, the earliest accepted time" in text
    late, text = status(DAY_MS + 60_001)
    assert late == 400 and "more than 60 s ahead of the clock" in text
    assert [body["timestamp"] for body in spooled(ranged_gateway)] == [DAY_MS, DAY_MS + 60_000]


def test_json_nested_too_deeply_is_a_400_not_a_crash(ranged_gateway):
    deeper_than_json_decodes = _event(data=f'{{"a": {"[" * 100_000 + "]" * 100_000}}}')
    response = ranged_gateway.post(EVENTS, content=deeper_than_json_decodes.encode(), headers=JSON)
    assert response.status_code == 400
    assert response.json()["details"] == [{"field": "(body)", "message": "nested too deeply to decode"}]
    deeper_than_allowed = _event(data=f'{{"a": {"[" * 100 + "]" * 100}}}')
    response = ranged_gateway.post(EVENTS, content=deeper_than_allowed.encode(), headers=JSON)
    assert response.status_code == 400
    assert response.json()["details"][0]["message"] == "nested more than 64 levels deep"
    assert spooled(ranged_gateway) == []


def test_signed_webhooks_with_values_the_pipeline_cannot_process_are_a_400(signed_gateway):
    now = 1_795_824_000
    mlflow = (TESTDATA / "mlflow_model_version_created.json").read_bytes()
    infinite = mlflow.replace(b'"version": "12"', b'"version": "12", "score": 1e400')
    response = signed_gateway.post("/mlflow/webhook", content=infinite, headers=mlflow_headers(infinite, "d-1", now))
    assert response.status_code == 400 and response.json()["details"][0]["field"] == "data.score"
    future = mlflow.replace(b"2026-11-28T00:05:00.123456+00:00", b"2090-01-01T00:00:00+00:00")
    response = signed_gateway.post("/mlflow/webhook", content=future, headers=mlflow_headers(future, "d-2", now))
    assert response.status_code == 400 and response.json()["details"][0]["field"] == "timestamp"
    github = (TESTDATA / "github_push.json").read_bytes().replace(b'"ref":', b'"size": NaN, "ref":', 1)
    signature = "sha256=" + hmac.new(b"It's a Secret to Everybody", github, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json", "X-Hub-Signature-256": signature}
    response = signed_gateway.post("/github/webhook", content=github, headers=headers)
    assert response.status_code == 400 and response.json()["details"][0]["field"] == "size"
    not_json = b"{"
    response = signed_gateway.post("/mlflow/webhook", content=not_json, headers=mlflow_headers(not_json, "d-3", now))
    assert response.status_code == 400 and response.json()["details"][0]["field"] == "(body)"
    assert spooled(signed_gateway) == []
