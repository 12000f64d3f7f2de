"""The webhooks sink against loopback receivers that verify Standard Webhooks signatures.

The verifier below is written from the specification (spec/standard-webhooks.md in
github.com/standard-webhooks/standard-webhooks), independently of ``sinks.webhooks.signing``,
and is itself checked against the test vector the reference libraries publish.
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import pickle
import socket
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from pydantic import SecretStr, ValidationError

from airis_mon.schema import Alert
from sinks.delivery import DeliveryConfig, HttpDeliverer, RetryConfig, idempotency_key
from sinks.webhooks import WebhooksConfig, WebhooksEncoder, WriteToWebhooks, check_url, payload, secret_key, sign
from sinks.webhooks.destination import PinnedAdapter
from sinks.webhooks.encoder import MAX_BODY_BYTES
from tests.sinks.receivers import Receiver, Recorded, scripted
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate

TESTDATA = Path(__file__).parent / "testdata"
OK = (200, {}, b"ok")
SECRET_A = "whsec_" + base64.b64encode(b"endpoint-a-signing-key-32-bytes!").decode()
SECRET_B = "whsec_" + base64.b64encode(b"endpoint-b-signing-key-32-bytes!").decode()
TOLERANCE_S = 300

# The test vector of the Standard Webhooks reference libraries (libraries/python/tests/test_webhooks.py
# test_sign_function; the same values appear in the other languages' tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


# --- an independent Standard Webhooks verifier -------------------------------------------------------------------


def spec_key(secret: str) -> bytes:
    """Spec: symmetric secrets are serialized base64 with a ``whsec_`` prefix."""
    assert secret.startswith("whsec_")
    return base64.b64decode(secret.removeprefix("whsec_"))


def verify(key: bytes, headers: dict[str, str], body: bytes, now_s: float) -> str | None:
    """None if the delivery is authentic, else why not."""
    headers = {k.lower(): v for k, v in headers.items()}
    msg_id, timestamp, signatures = (headers.get(f"webhook-{h}") for h in ("id", "timestamp", "signature"))
    if not (msg_id and timestamp and signatures):
        return "missing headers"
    if not timestamp.isdigit():
        return "timestamp is not integer unix seconds"
    if abs(now_s - int(timestamp)) > TOLERANCE_S:
        return "timestamp outside tolerance"
    expected = hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256).digest()
    for versioned in signatures.split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(signature), expected):
            return None
    return "no matching signature"


def test_the_verifier_accepts_the_published_vector_and_rejects_tampering():
    key = spec_key(VECTOR_SECRET)
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    assert verify(key, headers, VECTOR_BODY, VECTOR_TIMESTAMP) is None
    assert verify(key, headers, b'{"test": 2432232315}', VECTOR_TIMESTAMP) == "no matching signature"
    assert verify(key, headers, VECTOR_BODY, VECTOR_TIMESTAMP + 301) == "timestamp outside tolerance"
    rotated = {**headers, "webhook-signature": "v1,AAAA v1a,AAAA " + VECTOR_SIGNATURE}  # space-delimited list
    assert verify(key, rotated, VECTOR_BODY, VECTOR_TIMESTAMP) is None


def test_signing_reproduces_the_published_vector():
    assert sign(secret_key(VECTOR_SECRET), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    unpadded = "whsec_" + base64.b64encode(b"k" * 31).decode().rstrip("=")
    assert secret_key(unpadded) == b"k" * 31
    assert secret_key("plain-shared-secret") == b"plain-shared-secret"  # no prefix: UTF-8 bytes


def standard_webhooks_receiver(key: bytes, *responses):
    """A receiver that rejects what a Standard Webhooks consumer rejects (401 bad signature, 400 bad body),
    then answers ``responses`` in order (the last one repeats)."""
    after = scripted(*(responses or (OK,)))

    def respond(request: Recorded):
        problem = verify(key, request.headers, request.body, time.time())
        if problem:
            return 401, {}, problem.encode()
        if request.method != "POST" or request.headers.get("content-type") != "application/json":
            return 400, {}, b"expected a JSON POST"
        document = json.loads(request.body)
        if set(document) != {"type", "timestamp", "data"} or not document["type"].startswith("alert."):
            return 400, {}, b"not an alert event"
        return after(request)

    return respond


# --- helpers -----------------------------------------------------------------------------------------------------


def episode(*values, **rule) -> list[Alert]:
    return evaluate(threshold_rule(**rule), GROUP, series(*values))[0]


def endpoint(name: str, url: str, events, secret: str = SECRET_A, **extra) -> dict:
    return {"name": name, "url": url, "events": list(events), "secret": SecretStr(secret), **extra}


def config(*endpoints, **extra) -> WebhooksConfig:
    return WebhooksConfig(name="hooks", endpoints=list(endpoints), allow_private_addresses=True, **extra)


def fast_delivery(**retry) -> DeliveryConfig:
    return DeliveryConfig(retry=RetryConfig(**{"initial_backoff_s": 0.01, "max_backoff_s": 0.05, **retry}), timeout_s=5)


# --- config ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data",
     "http://[::1]/hook", "http://localhost:9000/hook", "http://LOCALHOST./hook", "http://api.localhost/hook",
     "http://192.168.1.10/", "http://172.16.0.1/", "http://0.0.0.0/", "http://[::]/", "http://224.0.0.1/",
     "http://240.0.0.1/", "http://100.64.0.1/", "http://[fe80::1]/", "http://[fc00::1]/", "http://[ff02::1]/",
     "http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://0x7f.0.0.1/", "http://127.1/"],
)  # fmt: skip
def test_private_and_special_addresses_are_refused_unless_allowed(url):
    with pytest.raises(ValueError, match="allow_private_addresses: true"):
        check_url(url)
    check_url(url, allow_private_addresses=True)
    with pytest.raises(ValidationError) as error:
        WebhooksConfig(name="hooks", endpoints=[endpoint("ops", url, ["*"])])
    assert "endpoints[0].url (ops)" in str(error.value)
    assert config(endpoint("ops", url, ["*"])).endpoints[0].url == url


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/airis", "http://8.8.8.8/in", "https://[2001:4860:4860::8888]:8443/in",
            "https://internal-looking-name.corp/in"],
)  # fmt: skip
def test_public_addresses_and_host_names_are_accepted(url):
    check_url(url)  # host names are not resolved: no DNS-rebinding protection here


@pytest.mark.parametrize("url", ["ftp://example.com/in", "file:///etc/passwd", "gopher://example.com/", "example.com",
                                 "http:///path-only", "http://example.com:99999/"])  # fmt: skip
def test_only_http_and_https_urls_with_a_host_are_accepted_even_when_private_is_allowed(url):
    with pytest.raises(ValueError):
        check_url(url, allow_private_addresses=True)


def test_unknown_events_are_errors_naming_the_field():
    with pytest.raises(ValidationError) as error:
        config(endpoint("ops", "http://127.0.0.1/", ["alert.triggered", "alert.fired"]))
    (problem,) = error.value.errors()
    assert problem["loc"] == ("endpoints", 0, "events")
    assert "unknown event 'alert.fired'" in problem["msg"]


@pytest.mark.parametrize("name", ["webhook-id", "Webhook-Signature", "WEBHOOK-TIMESTAMP", "webhook-anything",
                                  "Content-Type", "content-length", "Host"])  # fmt: skip
def test_config_headers_may_not_override_what_the_sink_sets(name):
    with pytest.raises(ValidationError, match="set by the sink"):
        config(endpoint("ops", "http://127.0.0.1/", ["*"], headers={name: "x"}))


def test_config_headers_are_checked_for_injection():
    with pytest.raises(ValidationError, match="CR, LF or NUL"):
        config(endpoint("ops", "http://127.0.0.1/", ["*"], headers={"X-Team": "a\r\nX-Evil: 1"}))
    with pytest.raises(ValidationError, match="not a valid HTTP header name"):
        config(endpoint("ops", "http://127.0.0.1/", ["*"], headers={"X Team": "a"}))


def test_secrets_come_from_env_and_never_appear_in_errors(monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET_A)
    loaded = WebhooksConfig.model_validate(
        {"name": "hooks", "allow_private_addresses": True,
         "endpoints": [{"name": "ops", "url": "http://127.0.0.1/", "events": ["*"], "secret": {"env": "HOOK_SECRET"}}]}
    )  # fmt: skip
    assert loaded.endpoints[0].secret.get_secret_value() == SECRET_A and SECRET_A not in repr(loaded)
    with pytest.raises(ValidationError, match="secret must be"):
        config({**endpoint("ops", "http://127.0.0.1/", ["*"]), "secret": "literal-secret"})
    bad = "whsec_not*base64!"
    with pytest.raises(ValidationError) as error:
        config(endpoint("ops", "http://127.0.0.1/", ["*"], secret=bad))
    assert "whsec_ followed by base64" in str(error.value) and bad not in str(error.value)


def test_endpoint_names_are_unique_and_retries_stay_within_the_signature_tolerance():
    with pytest.raises(ValidationError, match="used twice"):
        config(endpoint("ops", "http://127.0.0.1/a", ["*"]), endpoint("ops", "http://127.0.0.1/b", ["*"]))
    with pytest.raises(ValidationError, match="receivers reject after 300 s"):
        config(endpoint("ops", "http://127.0.0.1/", ["*"]), delivery=DeliveryConfig(retry=RetryConfig(max_total_s=295)))


# --- encoding ----------------------------------------------------------------------------------------------------


def test_golden_payload_and_signed_headers():
    trigger, _ = episode(11.5, 12.25, 1.0)
    encoder = WebhooksEncoder(
        config(endpoint("ops", "https://hooks.example.com/in", ["*"], headers={"X-Team": "ml-platform"})),
        clock=lambda: 1_795_824_061.7,
    )
    ((request, carried),) = encoder.encode([trigger])
    assert request.body == (TESTDATA / "alert_triggered.json").read_bytes().rstrip(b"\n")
    assert carried == [trigger] and (request.method, request.url, request.label) == (
        "POST", "https://hooks.example.com/in", "ops")  # fmt: skip
    assert request.headers["webhook-id"] == idempotency_key("hooks", trigger)
    assert request.headers["webhook-timestamp"] == "1795824061"
    assert request.headers["Content-Type"] == "application/json" and request.headers["X-Team"] == "ml-platform"
    assert verify(spec_key(SECRET_A), request.headers, request.body, 1_795_824_061) is None
    assert verify(spec_key(SECRET_B), request.headers, request.body, 1_795_824_061) == "no matching signature"


def test_a_secret_without_prefix_signs_with_its_utf8_bytes():
    trigger, _ = episode(11, 11, 1)
    encoder = WebhooksEncoder(config(endpoint("ops", "http://127.0.0.1/", ["*"], secret="plain")), clock=lambda: 100)
    ((request, _),) = encoder.encode([trigger])
    assert verify(b"plain", request.headers, request.body, 100) is None


def test_subscriptions_filter_events_per_endpoint():
    alerts = episode(11, 11, 11, 1, repeat_interval=60)
    assert [a.notification for a in alerts] == ["trigger", "repeat", "repeat", "resolve"]
    encoder = WebhooksEncoder(
        config(endpoint("all", "http://127.0.0.1/all", ["*"]),
               endpoint("resolves", "http://127.0.0.1/resolves", ["alert.resolved"]),
               endpoint("pages", "http://127.0.0.1/pages", ["alert.triggered", "alert.repeated"]),
               endpoint("none-yet", "http://127.0.0.1/none", ["alert.resolved"])),
    )  # fmt: skip
    sent = [(r.label, json.loads(r.body)["type"]) for r, _ in encoder.encode(alerts[:3])]
    assert sent == [("all", "alert.triggered"), ("pages", "alert.triggered"),
                    ("all", "alert.repeated"), ("pages", "alert.repeated"),
                    ("all", "alert.repeated"), ("pages", "alert.repeated")]  # fmt: skip
    sent = [(r.label, json.loads(r.body)["type"]) for r, _ in encoder.encode(alerts[3:])]
    assert sent == [("all", "alert.resolved"), ("resolves", "alert.resolved"), ("none-yet", "alert.resolved")]


def test_every_endpoint_gets_the_same_id_and_body_signed_with_its_own_secret():
    trigger, _ = episode(11, 11, 1)
    encoder = WebhooksEncoder(
        config(
            endpoint("a", "http://127.0.0.1/a", ["*"], SECRET_A), endpoint("b", "http://127.0.0.1/b", ["*"], SECRET_B)
        ),
        clock=lambda: 500,
    )
    (a, _), (b, _) = encoder.encode([trigger])
    assert a.body == b.body and a.headers["webhook-id"] == b.headers["webhook-id"]
    assert a.headers["webhook-signature"] != b.headers["webhook-signature"]
    assert verify(spec_key(SECRET_A), a.headers, a.body, 500) is None
    assert verify(spec_key(SECRET_B), b.headers, b.body, 500) is None


def test_non_finite_values_are_sent_as_null():
    _, resolve = episode(11, 11, float("nan"))
    document = json.loads(payload(resolve))
    assert document["type"] == "alert.resolved" and document["data"]["current_value"] is None
    assert document["data"]["group"] == {"environment": "prod", "model_name": "fraud"}


def test_long_texts_are_shortened_to_keep_bodies_under_the_recommended_size():
    trigger, _ = episode(11, 11, 1)
    body = payload(trigger._replace(description="é" * 30_000, summary="s" * 15_000))
    data = json.loads(body)["data"]
    assert MAX_BODY_BYTES - 100 < len(body) <= MAX_BODY_BYTES
    assert (
        data["description"].startswith("éé") and data["description"].endswith("é…") and data["summary"] == "s" * 15_000
    )
    body = payload(trigger._replace(description="é" * 30_000, summary="s" * 25_000))  # the summary must give too
    data = json.loads(body)["data"]
    assert MAX_BODY_BYTES - 100 < len(body) <= MAX_BODY_BYTES
    assert data["description"] == "…" and data["summary"].startswith("ss") and data["summary"].endswith("s…")
    small = trigger._replace(description="d" * 10_000)
    assert json.loads(payload(small))["data"]["description"] == "d" * 10_000  # under the limit: untouched


# --- delivery ----------------------------------------------------------------------------------------------------


def test_two_receivers_end_to_end_through_a_pipeline():
    trigger, resolve = episode(11, 11, 1)
    with (
        Receiver(standard_webhooks_receiver(spec_key(SECRET_A))) as everything,
        Receiver(standard_webhooks_receiver(spec_key(SECRET_B), (202, {}, b""))) as resolves,
    ):
        sink = config(
            endpoint("everything", everything.url + "/hooks/airis", ["*"], SECRET_A, headers={"X-Team": "ml"}),
            endpoint("resolves", resolves.url + "/in", ["alert.resolved"], SECRET_B),
            delivery=fast_delivery(),
        )
        with beam.Pipeline() as pipeline:
            outputs = pipeline | beam.Create([trigger, resolve]) | WriteToWebhooks(sink)
            assert_that(
                outputs["delivered"],
                equal_to([("hooks", trigger.id, "trigger", 200, 1), ("hooks", resolve.id, "resolve", 200, 1),
                          ("hooks", resolve.id, "resolve", 202, 1)]),
            )  # fmt: skip
            assert_that(outputs["dead_letters"], equal_to([]), label="none dead")
    got = sorted((json.loads(r.body)["type"], r.path, r.headers["x-team"]) for r in everything.requests)
    assert got == [("alert.resolved", "/hooks/airis", "ml"), ("alert.triggered", "/hooks/airis", "ml")]
    assert [(json.loads(r.body)["type"], r.path, "x-team" in r.headers) for r in resolves.requests] == [
        ("alert.resolved", "/in", False)
    ]
    ids = {r.headers["webhook-id"] for r in everything.requests + resolves.requests}
    assert ids == {idempotency_key("hooks", trigger), idempotency_key("hooks", resolve)}


def test_a_receiver_rejecting_the_signature_would_show_as_a_dead_letter():
    """The receivers above really check: a wrong secret is refused (401, permanent)."""
    trigger, _ = episode(11, 11, 1)
    with Receiver(standard_webhooks_receiver(spec_key(SECRET_B))) as receiver:
        sink = config(endpoint("ops", receiver.url, ["*"], SECRET_A), delivery=fast_delivery())
        ((request, _),) = WebhooksEncoder(sink).encode([trigger])
        result = HttpDeliverer(sink.delivery).deliver(request)
    assert (result.delivered, result.status, result.reason) == (
        False,
        401,
        "permanent failure: HTTP 401 no matching signature",
    )


@pytest.mark.parametrize("status", [410, 400])
def test_permanent_failures_are_dead_lettered_without_retrying(status):
    trigger, _ = episode(11, 11, 1)
    with Receiver(standard_webhooks_receiver(spec_key(SECRET_A), (status, {}, b"gone away"))) as receiver:
        sink = config(endpoint("ops", receiver.url + "/in?token=T0KEN", ["*"]), delivery=fast_delivery())
        with beam.Pipeline() as pipeline:
            outputs = pipeline | beam.Create([trigger]) | WriteToWebhooks(sink)
            assert_that(outputs["delivered"], equal_to([]), label="none delivered")
            assert_that(
                outputs["dead_letters"] | beam.Map(lambda d: (d.component, d.reason, json.loads(d.original)["id"])),
                equal_to(
                    [("sink:hooks", f"ops: permanent failure: HTTP {status} gone away (attempts: 1)", trigger.id)]
                ),
            )
    assert len(receiver.requests) == 1


def test_503_then_200_is_retried_with_the_same_signed_request():
    trigger, _ = episode(11, 11, 1)
    key = spec_key(SECRET_A)
    with Receiver(standard_webhooks_receiver(key, (503, {"Retry-After": "0"}, b"busy"), OK)) as receiver:
        sink = config(endpoint("ops", receiver.url, ["*"]), delivery=fast_delivery())
        with beam.Pipeline() as pipeline:
            outputs = pipeline | beam.Create([trigger]) | WriteToWebhooks(sink)
            assert_that(outputs["delivered"], equal_to([("hooks", trigger.id, "trigger", 200, 2)]))
    first, second = receiver.requests
    assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["webhook-signature"] == second.headers["webhook-signature"]
    assert verify(key, second.headers, second.body, time.time()) is None


def test_a_dead_letter_names_the_endpoint_that_failed():
    trigger, _ = episode(11, 11, 1)
    with (
        Receiver(standard_webhooks_receiver(spec_key(SECRET_A))) as fine,
        Receiver(standard_webhooks_receiver(spec_key(SECRET_A), (410, {}, b""))) as gone,
    ):
        sink = config(endpoint("alpha", fine.url, ["*"]), endpoint("bravo", gone.url, ["*"]), delivery=fast_delivery())
        with beam.Pipeline() as pipeline:
            outputs = pipeline | beam.Create([trigger]) | WriteToWebhooks(sink)
            assert_that(
                outputs["dead_letters"] | beam.Map(lambda d: "bravo" in d.reason and "alpha" not in d.reason),
                equal_to([True]),
            )


# --- destinations checked at delivery (sinks.webhooks.destination) -------------------------------------------


class MappedResolver:
    """``socket.getaddrinfo``-compatible: each name answers its mapped IPv4 addresses (picklable)."""

    def __init__(self, **names: str):
        self.names = {name.replace("_", "."): addresses.split(",") for name, addresses in names.items()}

    def __call__(self, host, port, *args):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in self.names[host]]


def test_a_refused_destination_is_a_dead_letter_and_the_other_endpoints_still_get_theirs():
    trigger, _ = episode(11, 11, 1)
    resolver = MappedResolver(good_example_test="127.0.0.1", rebound_example_test="127.0.0.1,127.0.0.2")
    with Receiver(standard_webhooks_receiver(spec_key(SECRET_A))) as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        good = endpoint("good", f"http://good.example.test:{port}/in", ["*"])
        rebound = endpoint(
            "rebound", f"http://rebound.example.test:{port}/in?token=T0KEN", ["*"], headers={"Authorization": "s3cr3t"}
        )
        sink = WebhooksConfig(
            name="hooks", allowed_networks=["127.0.0.1/32"], endpoints=[good, rebound], delivery=fast_delivery()
        )
        with beam.Pipeline() as pipeline:
            outputs = pipeline | beam.Create([trigger]) | WriteToWebhooks(sink, resolver=resolver)
            assert_that(outputs["delivered"], equal_to([("hooks", trigger.id, "trigger", 200, 1)]))
            assert_that(
                outputs["dead_letters"] | beam.Map(lambda d: (d.component, d.reason, json.loads(d.original)["id"])),
                equal_to([("sink:hooks", "rebound: permanent failure: destination refused: the host resolves to "
                           "127.0.0.2, a loopback address (attempts: 1)", trigger.id)]),
                label="refused",
            )  # fmt: skip
    assert [r.headers["host"] for r in receiver.requests] == [f"good.example.test:{port}"]


def test_the_sink_config_opens_networks_by_cidr():
    with pytest.raises(ValidationError) as error:
        WebhooksConfig(name="hooks", endpoints=[endpoint("ops", "http://127.0.0.1:9/in", ["*"])])
    assert "the host is a loopback address" in str(error.value) and "allowed_networks" in str(error.value)
    opened = WebhooksConfig(name="hooks", allowed_networks=["127.0.0.0/8"],
                            endpoints=[endpoint("ops", "http://127.0.0.1:9/in", ["*"])])  # fmt: skip
    assert opened.destination_policy().allowed_networks == (ipaddress.ip_network("127.0.0.0/8"),)
    with pytest.raises(ValidationError, match="is not a CIDR network"):
        WebhooksConfig(name="hooks", allowed_networks=["127.0.0.1/8"], endpoints=[endpoint("o", "https://a.b/", ["*"])])
    with pytest.raises(ValidationError, match="the URL must be https://"):
        WebhooksConfig(name="hooks", allow_http=False, endpoints=[endpoint("ops", "http://hooks.example.com/", ["*"])])
    with pytest.raises(ValidationError, match="a cloud metadata name"):
        WebhooksConfig(name="hooks", endpoints=[endpoint("ops", "http://metadata.google.internal/", ["*"])])
    with pytest.raises(ValidationError, match="hop-by-hop"):
        config(endpoint("ops", "http://127.0.0.1/", ["*"], headers={"Connection": "close"}))


def test_registrations_breaking_the_rules_are_skipped(tmp_path):
    registrations = tmp_path / "webhooks.json"
    secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
    registrations.write_text(json.dumps({
        "fine": {"name": "fine", "url": "https://hooks.example.com/in", "events": ["*"], "headers": {},
                 "secret": secret},
        "meta": {"name": "meta", "url": "http://metadata.google.internal/", "events": ["*"], "headers": {},
                 "secret": secret},
        "crlf": {"name": "crlf", "url": "https://hooks.example.com/in", "events": ["*"],
                 "headers": {"X-A": "1\r\nX-Evil: 1"}, "secret": secret},
        "local": {"name": "local", "url": "https://localhost/in", "events": ["*"], "headers": {}, "secret": secret},
    }))  # fmt: skip
    sink = WebhooksConfig(name="hooks", registrations=str(registrations))
    assert [e.name for e in sink.all_endpoints()] == ["fine"]


def test_the_encoder_pickles_without_its_connection_pools():
    trigger, _ = episode(11, 11, 1)
    encoder = WebhooksEncoder(config(endpoint("ops", "https://hooks.example.com/in", ["*"])))
    ((request, _),) = encoder.encode([trigger])
    assert isinstance(request.transport, PinnedAdapter)
    copy = pickle.loads(pickle.dumps(encoder))
    ((again, _),) = copy.encode([trigger])
    assert isinstance(again.transport, PinnedAdapter) and again.transport is not request.transport
