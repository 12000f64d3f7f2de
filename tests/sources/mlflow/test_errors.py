"""Error mapping and client settings, with the real ``MlflowClient`` against a loopback HTTP peer.

The peer answers the MLflow REST paths the way an MLflow server (or the proxy /
auth app in front of it) does when things go wrong: 401 / 403 from the basic
auth app, 429 / 5xx, ``{"error_code", "message"}`` JSON bodies, slow answers.
A real server for these would need an auth app, a proxy and a failing
database; the happy paths run against a real server in ``test_registry.py``.
"""

from __future__ import annotations

import base64
import json
import os
import time
from http.server import BaseHTTPRequestHandler

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.errors import PermanentError, TransientError
from airis_mon.retry import RetryConfig
from sources.mlflow import MlflowConfig, MlflowRegistryPoller, ReadFromMlflow
from sources.polling import PollSettings
from tests.sinks.receivers import LoopbackServer
from tests.sources.mlflow.conftest import free_port

FAST = RetryConfig(max_attempts=2, initial_backoff_s=0.01, max_backoff_s=0.02, max_total_s=5)
AUTH_BODY = (
    b"You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html"
    b"#authenticating-to-mlflow on how to authenticate."
)


class Peer(LoopbackServer):
    """Replies with ``routes[path_prefix] = (status, headers, body, delay_s)``; records requests."""

    def __init__(self):
        self.routes: dict[str, tuple[int, dict, bytes, float]] = {}
        self.requests: list[tuple[str, str | None]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                peer.requests.append((self.path, self.headers.get("Authorization")))
                path = self.path.split("?")[0]
                status, headers, body, delay = next(
                    (reply for prefix, reply in peer.routes.items() if path.startswith(prefix)),
                    (404, {"Content-Type": "application/json"}, b'{"error_code": "ENDPOINT_NOT_FOUND"}', 0.0),
                )
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in {"Content-Length": str(len(body)), **headers}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def reply(self, status: int, body: bytes | dict, prefix: str = "/", delay_s: float = 0.0, **headers) -> None:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        self.routes[prefix] = (status, headers, body, delay_s)


@pytest.fixture
def peer():
    with Peer() as server:
        yield server


def poller_for(url: str, **fields) -> MlflowRegistryPoller:
    config = MlflowConfig(name="registry", tracking_uri=url, poll=PollSettings(retry=FAST), **fields)
    poller = MlflowRegistryPoller(config)
    poller.setup()
    return poller


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (401, AUTH_BODY, {"WWW-Authenticate": 'Basic realm="mlflow"'}),
        (403, b"Permission denied", {}),
        (403, {"error_code": "PERMISSION_DENIED", "message": "no READ on model"}, {}),
    ],
)
def test_authentication_failures_are_permanent_and_not_retried(peer, status, body, headers):
    peer.reply(status, body, **headers)
    with pytest.raises(PermanentError, match="authentication/authorization failed") as raised:
        poller_for(peer.url).poll(0)
    assert not isinstance(raised.value, TransientError)
    assert len(peer.requests) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, b"<html>Service Unavailable</html>"),
        (502, b"Bad Gateway"),
        (429, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}),
        (500, {"error_code": "INTERNAL_ERROR", "message": "database is locked"}),
    ],
)
def test_throttling_and_server_errors_are_transient(peer, status, body):
    peer.reply(status, body)
    with pytest.raises(TransientError):
        poller_for(peer.url).poll(0)
    assert len(peer.requests) == 1  # http_max_retries: 0, poll.retry does the retrying


def test_http_max_retries_is_applied_to_the_mlflow_client(peer):
    peer.reply(503, b"busy")
    with pytest.raises(TransientError):
        poller_for(peer.url, http_max_retries=1).poll(0)
    assert len(peer.requests) == 2


def test_a_bad_request_is_permanent(peer):
    peer.reply(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "bad max_results"})
    with pytest.raises(PermanentError, match="INVALID_PARAMETER_VALUE") as raised:
        poller_for(peer.url).poll(0)
    assert "authentication" not in str(raised.value)


def test_a_slow_server_times_out_as_a_transient_error(peer):
    peer.reply(200, {"registered_models": []}, delay_s=3)
    began = time.monotonic()
    with pytest.raises(TransientError, match=r"timeout|timed out"):
        poller_for(peer.url, request_timeout_s=1).poll(0)
    assert time.monotonic() - began < 2.5


def test_nothing_listening_is_a_transient_error_quickly():
    began = time.monotonic()
    with pytest.raises(TransientError, match=r"Connection refused|Failed to establish"):
        poller_for(f"http://127.0.0.1:{free_port()}").poll(0)
    assert time.monotonic() - began < 5


def test_credentials_are_sent_and_the_environment_is_restored(peer, monkeypatch):
    monkeypatch.setenv("AIRIS_TEST_MLFLOW_PASSWORD", "s3cret")
    monkeypatch.setenv("AIRIS_TEST_MLFLOW_TOKEN", "tok")
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    peer.reply(200, {"registered_models": []})

    assert poller_for(peer.url, username="ops", password={"env": "AIRIS_TEST_MLFLOW_PASSWORD"}).poll(0) == []
    assert poller_for(peer.url, token={"env": "AIRIS_TEST_MLFLOW_TOKEN"}).poll(0) == []
    assert [auth for _, auth in peer.requests] == [
        "Basic " + base64.b64encode(b"ops:s3cret").decode(),
        "Bearer tok",
    ]
    assert peer.requests[0][0].startswith("/api/2.0/mlflow/registered-models/search")
    assert "MLFLOW_TRACKING_USERNAME" not in os.environ and "MLFLOW_TRACKING_TOKEN" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "7"


def test_an_auth_failure_in_a_pipeline_is_an_unhealthy_record_not_a_crash(peer):
    peer.reply(401, AUTH_BODY)
    config = MlflowConfig(name="registry", tracking_uri=peer.url, poll=PollSettings(retry=FAST))
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromMlflow(config)
        assert_that(out["health"] | beam.Map(lambda h: (h.ok, h.message.split(":")[0])),
                    equal_to([(False, "poll failed after 1 attempt(s)")]), label="health")  # fmt: skip
        assert_that(out["events"], equal_to([]), label="events")
