"""The PagerDuty sink against a loopback Events API v2 endpoint that enforces PagerDuty's rules."""

import json
import math
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from pydantic import SecretStr, ValidationError

from sinks.delivery import DeliveryConfig, HttpDeliverer, RetryConfig
from sinks.pagerduty import PagerDutyConfig, PagerDutyEncoder, WriteToPagerDuty
from sinks.pagerduty.encoder import MAX_SUMMARY_CHARS, dedup_key
from tests.sinks.pagerduty.receiver import PagerDutyEvents
from tests.sinks.receivers import Receiver, Recorded, then
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate

TESTDATA = Path(__file__).parent / "testdata"
KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32"  # a fake 32-character integration key
DASHBOARD = "https://grafana.example.com/d/models?var-model={model_id}&var-env={environment}&team={labels[team]}"
DEAD_REASON = (
    'permanent failure: HTTP 400 {"status": "invalid event", "message": "Event object is invalid", "errors": '
    "[\"'routing_key' is missing or not 32 characters\"]} (attempts: 1)"
)
FAST = DeliveryConfig(retry=RetryConfig(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05), timeout_s=5)


def episode(**rule):
    """trigger, repeat, repeat, resolve of one episode (high severity, labels team=fraud)."""
    alerts, _ = evaluate(
        threshold_rule(repeat_interval=120, labels={"team": "fraud"}, **rule), GROUP, series(11, 11, 11, 11, 11, 1)
    )
    assert [a.notification for a in alerts] == ["trigger", "repeat", "repeat", "resolve"]
    return alerts


def config(url: str | None = None, key: str = KEY, **fields) -> PagerDutyConfig:
    extra = {"url": f"{url}/v2/enqueue"} if url else {}
    return PagerDutyConfig(name="pager", routing_key=SecretStr(key), **extra, **fields)


def sent(alert, **fields) -> dict:
    (request, carried), *_ = PagerDutyEncoder(config(**fields)).encode([alert])
    assert carried == [alert]
    return json.loads(request.body)


def post(alert, respond=None, **fields):
    """Encode ``alert`` and deliver it over HTTP to a fresh receiver; returns (result, receiver)."""
    with Receiver(respond or PagerDutyEvents()) as receiver:
        (request, _), *_ = PagerDutyEncoder(config(receiver.url, **fields)).encode([alert])
        return HttpDeliverer(FAST).deliver(request), receiver


def raw(event: dict) -> Recorded:
    return Recorded("POST", "/v2/enqueue", {"content-type": "application/json"}, json.dumps(event).encode())


def golden(name: str) -> dict:
    return json.loads((TESTDATA / name).read_text(encoding="utf-8"))


# --- payloads -------------------------------------------------------------------------------------------------------


def test_golden_trigger_payload():
    trigger = episode()[0]
    assert sent(trigger, dashboard_url=DASHBOARD) == golden("trigger.json")


def test_golden_resolve_payload_has_no_payload_and_the_triggers_dedup_key():
    alerts = episode()
    assert sent(alerts[-1], dashboard_url=DASHBOARD) == golden("resolve.json")
    keys = {sent(alert)["dedup_key"] for alert in alerts}
    assert keys == {f"airis-mon-{alerts[0].id}"} and len(keys.pop()) <= 255


def test_a_repeat_re_sends_the_trigger_with_the_same_dedup_key():
    trigger, repeat = episode()[:2]
    first, again = sent(trigger), sent(repeat)
    assert again["event_action"] == "trigger" and again["dedup_key"] == first["dedup_key"]
    assert again["payload"]["timestamp"] > first["payload"]["timestamp"]


def test_an_acknowledge_is_the_acknowledge_event_with_the_triggers_dedup_key_and_no_payload():
    trigger = episode()[0]
    ack = trigger._replace(notification="acknowledge", timestamp_ms=trigger.timestamp_ms + 60_000)
    assert sent(ack, dashboard_url=DASHBOARD) == {
        "routing_key": KEY, "event_action": "acknowledge", "dedup_key": sent(trigger)["dedup_key"]}  # fmt: skip
    respond = PagerDutyEvents()
    with Receiver(respond) as receiver:
        encoder = PagerDutyEncoder(config(receiver.url))
        results = [HttpDeliverer(FAST).deliver(request) for request, _ in encoder.encode([trigger, ack])]
    assert [r.status for r in results] == [202, 202]
    assert respond.incidents == {dedup_key(trigger): "acknowledged"}


def test_an_unknown_notification_kind_is_refused():
    with pytest.raises(ValueError, match="not 'escalate'"):
        sent(episode()[0]._replace(notification="escalate"))


def test_no_links_without_a_dashboard_url_and_no_invented_headers():
    trigger = episode()[0]
    (request, _), *_ = PagerDutyEncoder(config()).encode([trigger])
    assert "links" not in json.loads(request.body)
    assert request.headers == {"Content-Type": "application/json"}
    assert request.url == "https://events.pagerduty.com/v2/enqueue"


def test_dashboard_values_are_percent_encoded():
    trigger = episode()[0]._replace(model_id="fraud v2&x=1", labels='{"team":"a/b"}')
    href = sent(trigger, dashboard_url=DASHBOARD)["links"][0]["href"]
    assert href == "https://grafana.example.com/d/models?var-model=fraud%20v2%26x%3D1&var-env=prod&team=a%2Fb"


@pytest.mark.parametrize(
    "severity, expected",
    [("critical", "critical"), ("high", "error"), ("error", "error"), ("warning", "warning"), ("info", "info")],
)
def test_severity_mapping_is_accepted_by_pagerduty(severity, expected):
    trigger = episode()[0]._replace(severity=severity)
    assert sent(trigger)["payload"]["severity"] == expected
    result, _ = post(trigger)
    assert (result.delivered, result.status) == (True, 202), result.reason


def test_summary_is_truncated_to_1024_characters():
    trigger = episode()[0]
    exact = sent(trigger._replace(summary="s" * MAX_SUMMARY_CHARS))["payload"]["summary"]
    assert exact == "s" * MAX_SUMMARY_CHARS
    long = sent(trigger._replace(summary="é" * 5000))["payload"]["summary"]
    assert len(long) == MAX_SUMMARY_CHARS and long.endswith("…") and long.startswith("é" * 1000)
    result, _ = post(trigger._replace(summary="s" * 5000))
    assert result.status == 202, result.reason
    event = sent(trigger)
    untruncated = {**event, "payload": {**event["payload"], "summary": "s" * 1025}}
    assert PagerDutyEvents()(raw(untruncated))[0] == 400  # the receiver does enforce the limit


def test_empty_source_falls_back_and_non_finite_values_are_null():
    trigger = episode()[0]._replace(source="", current_value=math.nan, peak_value=math.inf, model_id="")
    event = sent(trigger)
    assert event["payload"]["source"] == "airis-mon" and "component" not in event["payload"]
    assert event["payload"]["custom_details"]["current_value"] is None
    assert event["payload"]["custom_details"]["peak_value"] is None
    result, _ = post(trigger)
    assert result.status == 202, result.reason


# --- config ---------------------------------------------------------------------------------------------------------


def test_config_from_env_secret_and_validation(monkeypatch):
    monkeypatch.setenv("PD_KEY", KEY)
    cfg = PagerDutyConfig.model_validate({"name": "pager", "type": "pagerduty", "routing_key": {"env": "PD_KEY"}})
    assert cfg.routing_key.get_secret_value() == KEY and KEY not in repr(cfg)
    monkeypatch.setenv("PD_EMPTY", "  ")
    with pytest.raises(ValidationError, match="routing_key is empty"):
        PagerDutyConfig.model_validate({"name": "pager", "routing_key": {"env": "PD_EMPTY"}})
    with pytest.raises(ValidationError, match="not a literal value") as error:
        PagerDutyConfig.model_validate({"name": "pager", "routing_key": KEY})
    assert KEY not in str(error.value)
    with pytest.raises(ValidationError, match="unknown dashboard_url field 'modle'"):
        config(dashboard_url="https://g.example.com/{modle}")
    with pytest.raises(ValidationError, match="must be an absolute http:// or https:// URL"):
        config(dashboard_url="g.example.com/{model_id}")
    with pytest.raises(ValidationError, match="Extra inputs"):
        PagerDutyConfig.model_validate({"name": "pager", "routing_key": {"env": "PD_KEY"}, "service_key": "x"})


# --- delivery against the receiver ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_episode_end_to_end_opens_and_resolves_one_incident():
    alerts = episode()
    respond = PagerDutyEvents()
    with Receiver(respond) as receiver, beam.Pipeline() as pipeline:
        outputs = (
            pipeline
            | beam.Create(alerts)
            | WriteToPagerDuty(config(receiver.url, dashboard_url=DASHBOARD, delivery=FAST))
        )
        expected = [("pager", a.id, a.notification, 202, 1) for a in alerts]
        assert_that(outputs["delivered"], equal_to(expected), label="delivered")
        assert_that(outputs["dead_letters"], equal_to([]), label="dead")
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert sorted(b["event_action"] for b in bodies) == ["resolve", "trigger", "trigger", "trigger"]
    assert {b["dedup_key"] for b in bodies} == {dedup_key(alerts[0])}
    assert respond.incidents == {dedup_key(alerts[0]): "resolved"}
    assert {r.path for r in receiver.requests} == {"/v2/enqueue"}


@pytest.mark.slow
def test_a_400_goes_to_dead_letters_without_retry_and_without_the_key():
    trigger = episode()[0]
    short_key = KEY[:31]  # PagerDuty rejects a routing key that is not 32 characters
    with Receiver(PagerDutyEvents()) as receiver, beam.Pipeline() as pipeline:
        outputs = (
            pipeline | beam.Create([trigger]) | WriteToPagerDuty(config(receiver.url, key=short_key, delivery=FAST))
        )
        assert_that(outputs["delivered"], equal_to([]), label="delivered")
        assert_that(
            outputs["dead_letters"] | beam.Map(lambda d: (d.component, d.reason, json.loads(d.original)["id"])),
            equal_to([("sink:pager", DEAD_REASON, trigger.id)]),
            label="dead",
        )
    assert len(receiver.requests) == 1  # never retried
    assert short_key not in DEAD_REASON


@pytest.mark.slow
def test_429_then_202_is_retried():
    trigger = episode()[0]
    respond = PagerDutyEvents()
    limited = (429, {"Content-Type": "application/json"}, b'{"status":"throttle event","message":"Rate limited"}')
    with Receiver(then([limited], respond)) as receiver, beam.Pipeline() as pipeline:
        outputs = pipeline | beam.Create([trigger]) | WriteToPagerDuty(config(receiver.url, delivery=FAST))
        assert_that(outputs["delivered"], equal_to([("pager", trigger.id, "trigger", 202, 2)]), label="delivered")
        assert_that(outputs["dead_letters"], equal_to([]), label="dead")
    assert len(receiver.requests) == 2 and receiver.requests[0].body == receiver.requests[1].body
    assert respond.incidents == {dedup_key(trigger): "triggered"}
