"""The Microsoft Teams sink against a loopback webhook that enforces the Adaptive Card message rules."""

import json
import pickle
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from pydantic import ValidationError

from sinks.delivery import DeliveryConfig, HttpDeliverer, HttpRequest, RetryConfig, idempotency_key
from sinks.teams import TeamsConfig, TeamsEncoder, WriteToTeams, encode_message
from tests.sinks.receivers import Receiver, scripted
from tests.sinks.teams.teams_receiver import MAX_BYTES, card_errors, teams_webhook
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate

TESTDATA = Path(__file__).parent / "testdata"
SECRET_PATH = "/workflows/abc/triggers/manual/paths/invoke?sig=XXXXSECRETXXXX"
DASHBOARD = "https://grafana.example/d/x?var-model={model_id}"
TRIGGER, RESOLVE = evaluate(threshold_rule(severity="critical"), GROUP, series(11, 11, 1))[0]


def config(monkeypatch, url: str, **fields) -> TeamsConfig:
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", url)
    return TeamsConfig.model_validate({"name": "ml-teams", "webhook_url": {"env": "TEAMS_WEBHOOK_URL"}, **fields})


def card(body: bytes) -> dict:
    return json.loads(body)["attachments"][0]["content"]


def deliver(url: str, body: bytes, content_type: str = "application/json"):
    deliverer = HttpDeliverer(DeliveryConfig(retry=RetryConfig(max_attempts=1)))
    return deliverer.deliver(HttpRequest("POST", url, body, {"Content-Type": content_type}))


# --- golden payloads ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alert, golden", [(TRIGGER, "trigger.json"), (RESOLVE, "resolve.json")])
def test_payload_matches_the_golden_file(monkeypatch, alert, golden):
    cfg = config(monkeypatch, "https://example.webhook.office.com" + SECRET_PATH, dashboard_url=DASHBOARD)
    [(request, carried)] = TeamsEncoder(cfg).encode([alert])
    assert carried == [alert]
    assert json.loads(request.body) == json.loads((TESTDATA / golden).read_text(encoding="utf-8"))
    assert (request.method, request.url) == ("POST", "https://example.webhook.office.com" + SECRET_PATH)
    assert request.headers == {"Content-Type": "application/json",
                               "X-Airis-Idempotency-Key": idempotency_key("ml-teams", alert)}  # fmt: skip


def test_repeat_and_no_dashboard(monkeypatch):
    repeat = TRIGGER._replace(notification="repeat", timestamp_ms=TRIGGER.starts_at_ms + 600_000, duration_s=600)
    content = card(encode_message(repeat))
    assert content["body"][0]["text"] == "[CRITICAL] latency (still firing)" and "actions" not in content
    assert content["body"][1]["facts"][-2:] == [{"title": "Firing since", "value": "2026-11-28 00:00:00 UTC"},
                                                {"title": "Duration", "value": "10m 0s"}]  # fmt: skip


# --- the 28 KB limit ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{"description": "d" * 100_000},
     {"description": '"\\\x01é😀' * 30_000, "name": "N" * 10_000, "model_id": "\x02" * 10_000},
     {"description": "d" * 100_000, "environment": "e" * 30_000}],
)  # fmt: skip
def test_huge_alerts_are_cut_under_28_kb_and_accepted(monkeypatch, changes):
    with Receiver(teams_webhook) as receiver:
        cfg = config(monkeypatch, receiver.url + SECRET_PATH, dashboard_url=DASHBOARD)
        [(request, _)] = TeamsEncoder(cfg).encode([TRIGGER._replace(**changes)])
        result = deliver(request.url, request.body)
    assert (result.delivered, result.status) == (True, 202)
    assert MAX_BYTES - 16 <= len(request.body) <= MAX_BYTES  # cut to fit, not far below
    content = card(request.body)
    assert content["body"][2]["text"].endswith("…") and len(content["body"][0]["text"]) <= 256


def test_a_dashboard_url_too_big_for_the_message_drops_the_action_not_the_alert(monkeypatch):
    cfg = config(monkeypatch, "https://example.webhook.office.com" + SECRET_PATH, dashboard_url=DASHBOARD)
    body = TeamsEncoder(cfg).encode([TRIGGER._replace(model_id="/" * 12_000)])[0][0].body
    assert len(body) <= MAX_BYTES and "actions" not in card(body) and card_errors(json.loads(body)) == []


def test_a_smaller_max_message_bytes_is_honoured(monkeypatch):
    cfg = config(monkeypatch, "https://example.webhook.office.com/x", max_message_bytes=20_000)
    body = TeamsEncoder(cfg).encode([TRIGGER._replace(description="d" * 50_000)])[0][0].body
    assert 19_990 <= len(body) <= 20_000


def test_the_receiver_rejects_what_teams_rejects():
    """Proof that the receiver checks: too big is 413, a wrong shape 400."""
    too_big = json.loads(encode_message(TRIGGER))
    too_big["attachments"][0]["content"]["body"][2]["text"] = "d" * MAX_BYTES
    connector_card = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.hero",
                                                          "content": {}}]}  # fmt: skip
    no_version = json.loads(encode_message(TRIGGER))
    del no_version["attachments"][0]["content"]["version"]
    with Receiver(teams_webhook) as receiver:
        results = [deliver(receiver.url, json.dumps(m).encode()) for m in (too_big, connector_card, no_version)]
        results.append(deliver(receiver.url, encode_message(TRIGGER), content_type="text/plain"))
    assert [r.status for r in results] == [413, 400, 400, 400]
    assert results[2].response_body == b"attachments[0].content.version is missing"


# --- config ------------------------------------------------------------------------------------------------------


def test_config_defaults(monkeypatch):
    cfg = config(monkeypatch, "https://example.webhook.office.com/x")
    assert (cfg.max_message_bytes, cfg.delivery.rate_limit_per_s, cfg.dashboard_url) == (28_000, 2.0, None)
    assert config(monkeypatch, "https://x.example/", delivery={"timeout_s": 3}).delivery.rate_limit_per_s == 2.0


@pytest.mark.parametrize(
    "fields, message",
    [({"webhook_url": "https://example.webhook.office.com/SECRETVALUE"}, "not a literal value"),
     ({"webhook_url": {"env": "BAD_URL"}}, "absolute http:// or https:// URL"),
     ({"dashboard_url": "https://g.example/{nope}"}, "unknown dashboard_url field 'nope'"),
     ({"max_message_bytes": 30_000}, "less than or equal to 28672"),
     ({"acknowledge_url": "https://x.example/"}, "Extra inputs are not permitted")],
)  # fmt: skip
def test_config_errors_never_show_the_webhook_url(monkeypatch, fields, message):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", "https://example.webhook.office.com/SECRETVALUE")
    monkeypatch.setenv("BAD_URL", "example.webhook.office.com/SECRETVALUE")
    with pytest.raises(ValidationError) as error:
        TeamsConfig.model_validate({"name": "t", "webhook_url": {"env": "TEAMS_WEBHOOK_URL"}, **fields})
    assert message in str(error.value) and "SECRETVALUE" not in str(error.value)


def test_encoder_is_picklable_and_rejects_other_configs(monkeypatch):
    encoder = pickle.loads(pickle.dumps(TeamsEncoder(config(monkeypatch, "https://example.webhook.office.com/x"))))
    assert encoder.encode([TRIGGER])[0][0].url == "https://example.webhook.office.com/x"
    with pytest.raises(ValueError, match="needs a TeamsConfig"):
        TeamsEncoder(DeliveryConfig())


# --- delivery ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_end_to_end_through_a_pipeline_with_a_throttled_first_attempt(monkeypatch):
    calls = []

    def respond(request):  # throttled once (no Retry-After), then the real checks
        calls.append(request)
        return (429, {}, b"throttled") if len(calls) == 1 else teams_webhook(request)

    with Receiver(respond) as receiver:
        cfg = config(monkeypatch, receiver.url + SECRET_PATH, dashboard_url=DASHBOARD,
                     delivery={"rate_limit_per_s": None, "retry": {"initial_backoff_s": 0.01}})  # fmt: skip
        with beam.Pipeline() as pipeline:
            outputs = pipeline | beam.Create([TRIGGER]) | WriteToTeams(cfg)
            assert_that(outputs["delivered"], equal_to([("ml-teams", TRIGGER.id, "trigger", 202, 2)]))
            assert_that(outputs["dead_letters"], equal_to([]), label="no dead letters")
    assert [r.path for r in receiver.requests] == [SECRET_PATH] * 2
    assert receiver.requests[0].body == receiver.requests[1].body


@pytest.mark.slow
def test_a_rejected_message_is_a_dead_letter_whose_reason_hides_the_url(monkeypatch):
    with Receiver(scripted((403, {}, b"Forbidden"))) as receiver:
        cfg = config(monkeypatch, receiver.url + SECRET_PATH)
        with beam.Pipeline() as pipeline:
            outputs = pipeline | beam.Create([TRIGGER, RESOLVE]) | WriteToTeams(cfg)
            assert_that(outputs["delivered"], equal_to([]), label="nothing delivered")
            assert_that(
                outputs["dead_letters"]
                | beam.Map(lambda d: (d.component, d.reason, json.loads(d.original)["notification"])),
                equal_to([("sink:ml-teams", "permanent failure: HTTP 403 Forbidden (attempts: 1)", n)
                          for n in ("trigger", "resolve")]),
            )  # fmt: skip
    assert len(receiver.requests) == 2
