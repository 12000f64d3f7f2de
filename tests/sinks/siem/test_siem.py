"""The SIEM sink against loopback endpoints: a signature-verifying collector and Splunk HEC."""

import hashlib
import hmac
import json
import math
from pathlib import Path

import apache_beam as beam
import pytest
import requests
from apache_beam.testing.util import assert_that, equal_to
from pydantic import SecretStr, ValidationError

from sinks.delivery import DeliveryConfig, RetryConfig, idempotency_key
from sinks.siem import SiemConfig, SiemEncoder, WriteToSiem
from sinks.siem.encoder import MAX_HEC_BODY_BYTES
from tests.sinks.receivers import Receiver, Recorded, then
from tests.sinks.siem.receiver import SERVER_BUSY, SignedCollector, SplunkHec, parse_concatenated
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate

TESTDATA = Path(__file__).parent / "testdata"
TOKEN = "siem-T0KEN-do-not-leak"
SECRET = "whsec-S1GNING-do-not-leak"
HEC_TOKEN = "8c4f2b1e-5a6d-4e3f-9b2a-1c0d7e6f5a4b"
NOW = 1_795_824_100  # a fixed X-Timestamp for golden tests, unix s
FAST = DeliveryConfig(retry=RetryConfig(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05), timeout_s=5)


def episode():
    """trigger, repeat, resolve of one episode (labels team=fraud)."""
    rule = threshold_rule(repeat_interval=60, labels={"team": "fraud"})
    alerts, _ = evaluate(rule, GROUP, series(11, 11, 1))
    assert [a.notification for a in alerts] == ["trigger", "repeat", "resolve"]
    return alerts


def five_alerts():
    alerts, _ = evaluate(threshold_rule(), GROUP, series(11, 1, 11, 1, 11))
    assert [a.notification for a in alerts] == ["trigger", "resolve", "trigger", "resolve", "trigger"]
    return alerts


def http_config(url: str = "https://siem.example.com/ingest/airis", token: str = TOKEN, **fields) -> SiemConfig:
    return SiemConfig(name="soc", url=url, token=SecretStr(token), signing_secret=SecretStr(SECRET), **fields)


def hec_config(url: str = "https://splunk.example.com:8088", token: str = HEC_TOKEN, **fields) -> SiemConfig:
    return SiemConfig(name="splunk", mode="splunk_hec", url=url, token=SecretStr(token), **fields)


def golden(name: str):
    return json.loads((TESTDATA / name).read_text(encoding="utf-8"))


def independent_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The receiver's side of the documented contract, written from the docstring."""
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


# --- mode http ------------------------------------------------------------------------------------------------------


def test_golden_http_event_and_headers():
    trigger = episode()[0]
    (request, carried), *_ = SiemEncoder(http_config(), clock=lambda: NOW + 0.9).encode([trigger])
    assert carried == [trigger] and request.method == "POST" and request.url == "https://siem.example.com/ingest/airis"
    assert json.loads(request.body) == golden("http_event.json")
    assert request.headers == {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {TOKEN}",
        "Idempotency-Key": idempotency_key("soc", trigger),
        "X-Timestamp": str(NOW),
        "X-Signature": independent_signature(SECRET, str(NOW), request.body),
    }


def test_the_signature_verifies_independently_and_a_tampered_body_fails():
    trigger = episode()[0]
    (request, _), *_ = SiemEncoder(http_config(), clock=lambda: NOW).encode([trigger])
    timestamp, signature = request.headers["X-Timestamp"], request.headers["X-Signature"]
    assert signature == independent_signature(SECRET, timestamp, request.body)
    assert signature != independent_signature(SECRET, str(NOW + 1), request.body)
    assert signature != independent_signature("other", timestamp, request.body)
    collector = SignedCollector(TOKEN, SECRET, clock=lambda: NOW)
    with Receiver(collector) as receiver:
        ok = requests.post(receiver.url, data=request.body, headers=request.headers, timeout=5)
        tampered = requests.post(receiver.url, data=request.body.replace(b"high", b"info"), headers=request.headers,
                                 timeout=5)  # fmt: skip
    assert (ok.status_code, tampered.status_code) == (200, 401)
    assert tampered.json() == {"error": "invalid signature"}


def test_episode_notifications_share_the_correlation_id_and_have_distinct_event_ids():
    alerts = episode()
    events = [json.loads(request.body) for request, _ in SiemEncoder(http_config()).encode(alerts)]
    assert {e["correlation_id"] for e in events} == {alerts[0].id}
    assert len({e["event_id"] for e in events}) == 3
    assert [(e["status"], e["notification"]) for e in events] == [
        ("firing", "trigger"), ("firing", "repeat"), ("resolved", "resolve")
    ]  # fmt: skip
    again = [json.loads(request.body)["event_id"] for request, _ in SiemEncoder(http_config()).encode(alerts)]
    assert again == [e["event_id"] for e in events]  # replays keep their idempotency key


def test_non_finite_values_are_sent_as_null():
    trigger = episode()[0]._replace(current_value=math.nan, peak_value=-math.inf)
    (request, _), *_ = SiemEncoder(http_config()).encode([trigger])
    event = json.loads(request.body)
    assert event["alert"]["current_value"] is None and event["monitoring_context"]["peak_value"] is None


@pytest.mark.slow
def test_http_end_to_end_signed_and_accepted():
    alerts = episode()
    collector = SignedCollector(TOKEN, SECRET)
    with Receiver(collector) as receiver, beam.Pipeline() as pipeline:
        outputs = pipeline | beam.Create(alerts) | WriteToSiem(http_config(receiver.url + "/ingest", delivery=FAST))
        assert_that(outputs["delivered"], equal_to([("soc", a.id, a.notification, 200, 1) for a in alerts]))
    assert len(receiver.requests) == 3 and {r.path for r in receiver.requests} == {"/ingest"}
    assert sorted(e["notification"] for e in collector.events.values()) == ["repeat", "resolve", "trigger"]


@pytest.mark.slow
def test_a_wrong_token_is_a_permanent_401_in_dead_letters_without_secrets():
    trigger = episode()[0]
    wrong = "wrong-T0KEN-do-not-leak"
    with Receiver(SignedCollector(TOKEN, SECRET)) as receiver, beam.Pipeline() as pipeline:
        outputs = pipeline | beam.Create([trigger]) | WriteToSiem(http_config(receiver.url, token=wrong, delivery=FAST))
        assert_that(outputs["delivered"], equal_to([]), label="delivered")
        assert_that(
            outputs["dead_letters"] | beam.Map(lambda d: (d.component, d.reason)),
            equal_to([("sink:soc", 'permanent failure: HTTP 401 {"error": "invalid token"} (attempts: 1)')]),
            label="dead",
        )
    assert len(receiver.requests) == 1  # never retried


@pytest.mark.slow
def test_http_server_error_then_success_is_retried_with_the_same_signed_request():
    trigger = episode()[0]
    collector = SignedCollector(TOKEN, SECRET)
    with Receiver(then([(500, {}, b"oops")], collector)) as receiver, beam.Pipeline() as pipeline:
        outputs = pipeline | beam.Create([trigger]) | WriteToSiem(http_config(receiver.url, delivery=FAST))
        assert_that(outputs["delivered"], equal_to([("soc", trigger.id, "trigger", 200, 2)]))
    first, second = receiver.requests
    assert (first.body, first.headers["x-signature"]) == (second.body, second.headers["x-signature"])
    assert len(collector.events) == 1


# --- mode splunk_hec ------------------------------------------------------------------------------------------------


def test_golden_hec_batch_is_concatenated_json_objects():
    alerts = episode()
    encoder = SiemEncoder(hec_config(index="main"))
    ((request, carried),) = encoder.encode(alerts)
    assert carried == alerts and request.url == "https://splunk.example.com:8088/services/collector/event"
    assert request.headers == {"Content-Type": "application/json", "Authorization": f"Splunk {HEC_TOKEN}"}
    events = parse_concatenated(request.body)
    assert events == golden("hec_events.json")
    compact = [json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode() for e in events]
    assert request.body == b"".join(compact)  # no array, no commas, no separators
    assert [e["time"] for e in events] == [a.timestamp_ms / 1000 for a in alerts]


def test_hec_endpoint_index_and_sourcetype_options():
    trigger = episode()[0]
    for url in ("https://s:8088", "https://s:8088/", "https://s:8088/services/collector/event"):
        ((request, _),) = SiemEncoder(hec_config(url)).encode([trigger])
        assert request.url == "https://s:8088/services/collector/event"
    ((request, _),) = SiemEncoder(hec_config(sourcetype="ai:sec", host="beam-1")).encode([trigger])
    (event,) = parse_concatenated(request.body)
    assert "index" not in event
    assert (event["sourcetype"], event["host"], event["source"]) == ("ai:sec", "beam-1", "airis-mon")


def test_hec_batches_split_by_batch_size_and_body_size():
    alerts = five_alerts()
    encoder = SiemEncoder(hec_config(batch_size=2))
    assert encoder.batch_size == 2
    assert [len(carried) for _, carried in encoder.encode(alerts)] == [2, 2, 1]
    big = [a._replace(summary="x" * 300_000, description="y" * 300_000) for a in alerts[:3]]
    batches = SiemEncoder(hec_config()).encode(big)
    assert [len(carried) for _, carried in batches] == [1, 1, 1]
    assert all(len(request.body) <= MAX_HEC_BODY_BYTES for request, _ in batches)


@pytest.mark.slow
def test_hec_batching_end_to_end_through_deliver_alerts():
    alerts = five_alerts()
    hec = SplunkHec(HEC_TOKEN)
    with Receiver(hec) as receiver, beam.Pipeline() as pipeline:
        outputs = pipeline | beam.Create(alerts) | WriteToSiem(hec_config(receiver.url, batch_size=2, delivery=FAST))
        assert_that(outputs["delivered"], equal_to([("splunk", a.id, a.notification, 200, 1) for a in alerts]))
    assert sum(hec.batches) == 5 and max(hec.batches) == 2  # a bundle may split, a batch never passes batch_size
    assert len(receiver.requests) == len(hec.batches) >= 3
    assert sorted(e["event"]["event_id"] for e in hec.events) == sorted(idempotency_key("splunk", a) for a in alerts)


@pytest.mark.slow
def test_hec_wrong_token_is_a_permanent_403_for_every_alert_of_the_batch():
    alerts = five_alerts()[:2]
    wrong = "00000000-dead-beef-0000-do-not-leak"
    with Receiver(SplunkHec(HEC_TOKEN)) as receiver, beam.Pipeline() as pipeline:
        outputs = pipeline | beam.Create(alerts) | WriteToSiem(hec_config(receiver.url, token=wrong, delivery=FAST))
        assert_that(outputs["delivered"], equal_to([]), label="delivered")
        reason = 'permanent failure: HTTP 403 {"text": "Invalid token", "code": 4} (attempts: 1)'
        assert_that(
            outputs["dead_letters"] | beam.Map(lambda d: (d.component, d.reason, json.loads(d.original)["id"])),
            equal_to([("sink:splunk", reason, a.id) for a in alerts]),
            label="dead",
        )
    assert len(receiver.requests) == 1


@pytest.mark.slow
def test_hec_server_busy_503_then_success_is_retried():
    alerts = five_alerts()[:2]
    hec = SplunkHec(HEC_TOKEN)
    with Receiver(then([SERVER_BUSY], hec)) as receiver, beam.Pipeline() as pipeline:
        outputs = pipeline | beam.Create(alerts) | WriteToSiem(hec_config(receiver.url, delivery=FAST))
        assert_that(outputs["delivered"], equal_to([("splunk", a.id, a.notification, 200, 2) for a in alerts]))
    assert len(receiver.requests) == 2 and receiver.requests[0].body == receiver.requests[1].body
    assert hec.batches == [2]


def test_the_hec_receiver_rejects_what_splunk_rejects():
    hec = SplunkHec(HEC_TOKEN, indexes=("main",))

    def post(body: bytes, authorization: str | None = f"Splunk {HEC_TOKEN}"):
        headers = {"authorization": authorization} if authorization else {}
        status, _, answer = hec(Recorded("POST", "/services/collector/event", headers, body))
        return status, json.loads(answer)["code"]

    assert post(b'{"event":{"a":1},"time":1.5}{"event":"b"}') == (200, 0)
    assert post(b'{"event":"a"}', None) == (401, 2)
    assert post(b'{"event":"a"}', f"Bearer {HEC_TOKEN}") == (401, 3)
    assert post(b'{"event":"a"}', "Splunk nope") == (403, 4)
    assert post(b"") == (400, 5)
    assert post(b'[{"event":"a"}]') == (400, 6)
    assert post(b'{"event":"a"},{"event":"b"}') == (400, 6)
    assert post(b'{"event":"a","time":"soon"}') == (400, 6)
    assert post(b'{"time":1}') == (400, 12)
    assert post(b'{"event":""}') == (400, 13)
    assert post(b'{"event":"a","index":"secret"}') == (400, 7)


# --- config ---------------------------------------------------------------------------------------------------------


def test_config_validation_never_echoes_secrets(monkeypatch):
    monkeypatch.setenv("SIEM_TOKEN", TOKEN)
    monkeypatch.setenv("SIEM_SECRET", SECRET)
    monkeypatch.setenv("EMPTY", " ")
    base = {"name": "soc", "type": "siem", "url": "https://siem.example.com/in", "token": {"env": "SIEM_TOKEN"}}
    cfg = SiemConfig.model_validate({**base, "signing_secret": {"env": "SIEM_SECRET"}})
    assert cfg.mode == "http" and TOKEN not in repr(cfg) and SECRET not in repr(cfg)
    failures = [
        (base, "mode http needs signing_secret"),
        ({**base, "mode": "splunk_hec", "signing_secret": {"env": "SIEM_SECRET"}}, "applies to mode http only"),
        ({**base, "token": {"env": "EMPTY"}, "signing_secret": {"env": "SIEM_SECRET"}}, "token is empty"),
        ({**base, "signing_secret": TOKEN}, "not a literal value"),
        ({**base, "mode": "splunk_hec", "batch_size": 0}, "greater than or equal to 1"),
        ({**base, "mode": "syslog"}, "Input should be 'http' or 'splunk_hec'"),
        ({**base, "mode": "splunk_hec", "url": "splunk:8088"}, "String should match pattern"),
    ]
    for fields, message in failures:
        with pytest.raises(ValidationError, match=message) as error:
            SiemConfig.model_validate(fields)
        assert TOKEN not in str(error.value) and SECRET not in str(error.value)
    hec = SiemConfig.model_validate({**base, "mode": "splunk_hec"})
    assert (hec.batch_size, hec.sourcetype, hec.index, SiemEncoder(hec).batch_size) == (50, "airis:alert", None, 50)
    assert SiemEncoder(cfg).batch_size == 1
