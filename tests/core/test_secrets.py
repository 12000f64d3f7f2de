"""Secret references, Secret Manager included, against an in-process gRPC Secret Manager on 127.0.0.1.

The fake serves ``google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion`` with the
official request/response messages; the code under test reaches it through the real
``SecretManagerServiceClient`` over the endpoint override.
"""

from __future__ import annotations

import socket
import time

import google_crc32c
import grpc
import pytest
from google.cloud import secretmanager
from pydantic import SecretStr, ValidationError

from airis_mon import secrets
from airis_mon.config import load_config
from airis_mon.errors import ConfigError
from airis_mon.models import StrictModel
from airis_mon.secrets import ENDPOINT_ENV, Secret, resolve_secret
from tests.grpc_peer import GrpcPeer, serialize_message

VALUE = "xoxb-s3cr3t-value-42"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/s3cr3tpath"
LATEST = "projects/my-project/secrets/api-token/versions/latest"
NUMBERED = "projects/123456789/secrets/slack_webhook/versions/3"
MISSING = "projects/my-project/secrets/gone/versions/1"
FORBIDDEN = "projects/my-project/secrets/not-mine/versions/latest"


class SecretManagerFake(GrpcPeer):
    """AccessSecretVersion on 127.0.0.1: ``versions`` by exact name (``latest`` is just another key);
    names in ``aborts`` fail with their status; ``bad_crc`` sends a wrong checksum."""

    def __init__(self):
        self.versions: dict[str, bytes] = {}
        self.aborts: dict[str, grpc.StatusCode] = {}
        self.requests: list[str] = []
        self.bad_crc = False
        super().__init__("google.cloud.secretmanager.v1.SecretManagerService", {
            "AccessSecretVersion": (self._access, secretmanager.AccessSecretVersionRequest.pb().FromString,
                                    serialize_message),
        }, workers=2)  # fmt: skip
        self.start()

    def _access(self, request, context):
        self.requests.append(request.name)
        if request.name in self.aborts:
            status = self.aborts[request.name]
            context.abort(status, f"fake says {status.name} for {request.name}")
        if request.name not in self.versions:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{request.name}] not found.")
        data = self.versions[request.name]
        crc = google_crc32c.value(data) + (1 if self.bad_crc else 0)
        return secretmanager.AccessSecretVersionResponse.pb()(
            name=request.name.replace("/latest", "/7"), payload={"data": data, "data_crc32c": crc}
        )


@pytest.fixture(scope="module")
def server():
    fake = SecretManagerFake()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server, monkeypatch):
    server.versions = {LATEST: f"{VALUE}\n".encode(), NUMBERED: WEBHOOK.encode()}
    server.aborts = {MISSING: grpc.StatusCode.NOT_FOUND, FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED}
    server.requests = []
    server.bad_crc = False
    monkeypatch.setenv(ENDPOINT_ENV, server.address)
    return server


class _NeedsToken(StrictModel):
    token: Secret
    retries: int = 1


def error_of(reference) -> str:
    with pytest.raises(ValueError) as caught:
        resolve_secret(reference)
    return str(caught.value)


def test_a_secret_manager_reference_resolves_to_the_stripped_value(fake):
    assert resolve_secret({"secret_manager": LATEST}) == SecretStr(VALUE)  # the trailing newline is stripped
    assert resolve_secret({"secret_manager": NUMBERED}).get_secret_value() == WEBHOOK
    assert fake.requests == [LATEST, NUMBERED]  # the exact resource names reached the server


def test_not_found_and_permission_denied_name_the_secret_and_why(fake):
    missing = error_of({"secret_manager": MISSING})
    assert missing.startswith(f"secret {MISSING}: not found (no such project, secret or version) [NOT_FOUND: ")
    forbidden = error_of({"secret_manager": FORBIDDEN})
    assert forbidden.startswith(f"secret {FORBIDDEN}: permission denied (the caller needs roles/secretmanager")
    assert "PERMISSION_DENIED" in forbidden
    assert fake.requests == [MISSING, FORBIDDEN]  # not retried: neither can pass


def test_a_disabled_version_is_reported_by_its_status(fake):
    fake.aborts[LATEST] = grpc.StatusCode.FAILED_PRECONDITION
    message = error_of({"secret_manager": LATEST})
    assert message.startswith(f"secret {LATEST}: the version cannot be read (disabled or destroyed)")
    assert VALUE not in message


@pytest.mark.parametrize(
    "name",
    [
        "projects/my-project/secrets/api-token",  # no version
        "projects/my-project/secrets/api-token/versions/",
        "projects/my-project/secrets/api-token/versions/0",
        "projects/my-project/secrets/a/b/versions/1",
        "projects/P/secrets/api-token/versions/1",  # project ids are lower case
        "projects/my-project/locations/eu/secrets/s/versions/1",  # regional secrets need another endpoint
        "https://secretmanager.googleapis.com/v1/projects/my-project/secrets/s/versions/1",
        f"projects/my-project/secrets/{VALUE}/versions/1 ",
        VALUE,  # a value pasted where the name belongs
        "",
        42,
        None,
    ],
)
def test_malformed_references_are_refused_before_any_call_without_echoing_them(fake, name):
    message = error_of({"secret_manager": name})
    assert message.startswith("secret_manager must be a version name projects/PROJECT/secrets/SECRET/versions/")
    assert VALUE not in message
    assert fake.requests == []


def test_a_reference_must_have_exactly_one_kind(fake):
    for reference in ({"secret_manager": LATEST, "env": "X"}, {"gcp": LATEST}, VALUE):
        message = error_of(reference)
        assert "{secret_manager: projects/P/secrets/S/versions/V}" in message
        assert VALUE not in message
    assert fake.requests == []


def test_the_value_never_appears_in_repr_str_dumps_or_validation_errors(fake):
    model = _NeedsToken.model_validate({"token": {"secret_manager": LATEST}})
    assert model.token.get_secret_value() == VALUE
    for text in (repr(model), str(model), str(model.model_dump()), model.model_dump_json(), str(model.token)):
        assert VALUE not in text and "s3cr3t" not in text
    with pytest.raises(ValidationError) as caught:
        _NeedsToken.model_validate({"token": {"secret_manager": LATEST}, "retries": "many"})
    assert "retries" in str(caught.value) and VALUE not in str(caught.value)


def test_a_corrupted_payload_is_refused(fake):
    fake.bad_crc = True
    message = error_of({"secret_manager": LATEST})
    assert message == f"secret {LATEST}: the payload's CRC32C does not match (corrupted in transit)"


def test_a_payload_that_is_not_text_is_refused(fake):
    fake.versions[LATEST] = b"\xff\xfe" + VALUE.encode()
    message = error_of({"secret_manager": LATEST})
    assert message == f"secret {LATEST}: the payload is not UTF-8 text"


def test_an_unreachable_secret_manager_fails_clearly_within_the_deadline(monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv(ENDPOINT_ENV, f"127.0.0.1:{closed}")
    monkeypatch.setattr(secrets, "ACCESS_DEADLINE_S", 1.0)
    started = time.monotonic()
    message = error_of({"secret_manager": LATEST})
    assert time.monotonic() - started < 5
    assert message == f"secret {LATEST}: Secret Manager unavailable for 1 s (UNAVAILABLE)"


@pytest.mark.parametrize("endpoint", ["10.0.0.8:443", "secretmanager.googleapis.com:443", "127.0.0.1"])
def test_the_endpoint_override_is_loopback_only(monkeypatch, endpoint):
    monkeypatch.setenv(ENDPOINT_ENV, endpoint)
    message = error_of({"secret_manager": LATEST})
    assert message.startswith(f"{ENDPOINT_ENV} must be a loopback HOST:PORT")


def test_a_config_file_using_secret_manager_loads(fake, tmp_path):
    path = tmp_path / "airis.yaml"
    path.write_text(f"sinks:\n  - {{name: team, type: slack, webhook_url: {{secret_manager: {NUMBERED}}}}}\n")
    config = load_config(path)
    assert config.sinks[0].webhook_url.get_secret_value() == WEBHOOK
    assert fake.requests == [NUMBERED]
    assert "s3cr3t" not in repr(config)


def test_config_errors_name_the_field_and_secret_but_not_the_value(fake, tmp_path):
    fake.versions[LATEST] = b"not-a-url-s3cr3t"  # resolves, then fails the sink's own URL check
    path = tmp_path / "airis.yaml"
    path.write_text(
        "sinks:\n"
        f"  - {{name: a, type: slack, webhook_url: {{secret_manager: {LATEST}}}}}\n"
        f"  - {{name: b, type: slack, webhook_url: {{secret_manager: {FORBIDDEN}}}}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == ["sinks[0].webhook_url", "sinks[1].webhook_url"]
    assert f"secret {FORBIDDEN}: permission denied" in problems[1]
    assert "s3cr3t" not in str(caught.value)


def test_env_and_file_references_still_work(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRIS_TEST_SECRET", VALUE)
    assert resolve_secret({"env": "AIRIS_TEST_SECRET"}) == SecretStr(VALUE)
    secret_file = tmp_path / "token"
    secret_file.write_text(f"  {VALUE}\n")
    assert resolve_secret({"file": str(secret_file)}) == SecretStr(VALUE)


def test_without_google_credentials_the_error_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)  # the production client, with Application Default Credentials
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))  # fails before any call
    message = error_of({"secret_manager": LATEST})
    assert message.startswith(f"secret {LATEST}: no Google credentials found (Application Default Credentials")
