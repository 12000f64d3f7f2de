"""The Slack sink against a loopback webhook that enforces Slack's Block Kit rules."""

import json
import pickle
import random
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from pydantic import ValidationError

from sinks.delivery import DeliveryConfig, HttpDeliverer, RetryConfig, idempotency_key
from sinks.delivery.links import format_duration, format_value, render_link
from sinks.slack import SlackConfig, SlackEncoder, WriteToSlack, build_message
from sinks.slack.encoder import fit
from tests.sinks.receivers import FakeTime, Receiver, scripted
from tests.sinks.slack.slack_receiver import block_kit_errors, slack_webhook
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate

TESTDATA = Path(__file__).parent / "testdata"
SECRET_PATH = "/services/T0000/B0000/XXXXSECRETXXXX"
DASHBOARD = "https://grafana.example/d/x?var-model={model_id}&from={starts_at_ms}&to={timestamp_ms}"
ACK = "https://oncall.example/ack?alert={alert_id}"
TRIGGER, RESOLVE = evaluate(threshold_rule(severity="critical"), GROUP, series(11, 11, 1))[0]


def config(monkeypatch, url: str, **fields) -> SlackConfig:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
    return SlackConfig.model_validate({"name": "ml-alerts", "webhook_url": {"env": "SLACK_WEBHOOK_URL"}, **fields})


def sent(cfg: SlackConfig, alert) -> dict:
    [(request, carried)] = SlackEncoder(cfg).encode([alert])
    assert carried == [alert]
    return json.loads(request.body)


def post_all(receiver_url: str, monkeypatch, alerts, **fields):
    """Encode ``alerts`` and POST each through the real delivery layer (no pipeline)."""
    cfg = config(monkeypatch, receiver_url + SECRET_PATH, **fields)
    deliverer = HttpDeliverer(DeliveryConfig(retry=RetryConfig(max_attempts=1)))
    return [deliverer.deliver(request) for request, _ in SlackEncoder(cfg).encode(alerts)]


# --- golden payloads ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alert, golden", [(TRIGGER, "trigger.json"), (RESOLVE, "resolve.json")])
def test_payload_matches_the_golden_file(monkeypatch, alert, golden):
    cfg = config(monkeypatch, "https://hooks.slack.com" + SECRET_PATH, dashboard_url=DASHBOARD, acknowledge_url=ACK)
    assert sent(cfg, alert) == json.loads((TESTDATA / golden).read_text(encoding="utf-8"))


def test_request_method_url_and_headers(monkeypatch):
    cfg = config(monkeypatch, "https://hooks.slack.com" + SECRET_PATH)
    [(request, _)] = SlackEncoder(cfg).encode([TRIGGER])
    assert (request.method, request.url) == ("POST", "https://hooks.slack.com" + SECRET_PATH)
    assert request.headers == {
        "Content-Type": "application/json; charset=utf-8",
        "X-Airis-Idempotency-Key": idempotency_key("ml-alerts", TRIGGER),
    }


def test_without_templates_acknowledge_has_only_action_id_and_value_and_resolve_has_no_buttons(monkeypatch):
    cfg = config(monkeypatch, "https://hooks.slack.com" + SECRET_PATH)
    actions = sent(cfg, TRIGGER)["blocks"][-1]
    assert actions == {"type": "actions", "elements": [
        {"type": "button", "action_id": f"ack_alert_{TRIGGER.id}",
         "text": {"type": "plain_text", "text": "Acknowledge", "emoji": True}, "value": TRIGGER.id}]}  # fmt: skip
    assert [b["type"] for b in sent(cfg, RESOLVE)["blocks"]] == ["header", "section", "section", "context"]


def test_repeat_says_still_firing_since_the_start(monkeypatch):
    cfg = config(monkeypatch, "https://hooks.slack.com" + SECRET_PATH)
    repeat = TRIGGER._replace(notification="repeat", timestamp_ms=TRIGGER.starts_at_ms + 3_900_000, duration_s=3900)
    [context] = [b for b in sent(cfg, repeat)["blocks"] if b["type"] == "context"]
    assert context["elements"][0]["text"] == (
        "Still firing at 2026-11-28 01:05:00 UTC · since 2026-11-28 00:00:00 UTC (1h 5m)"
    )


def test_plain_formatting_helpers():
    assert [format_duration(s) for s in (0, 45, 120, 3900, 90_000, float("nan"))] == [
        "0s", "45s", "2m 0s", "1h 5m", "1d 1h", "n/a"]  # fmt: skip
    assert [format_value(v) for v in (11, 0.123456789, float("nan"), 1e12)] == ["11", "0.123457", "n/a", "1e+12"]


# --- Slack's limits ----------------------------------------------------------------------------------------------


def test_a_huge_description_and_name_are_cut_to_slack_limits_and_accepted(monkeypatch):
    huge = TRIGGER._replace(name="N" * 300, description="d" * 10_000, summary="s" * 10_000, model_id="m" * 5000)
    with Receiver(slack_webhook) as receiver:
        [result] = post_all(receiver.url, monkeypatch, [huge], dashboard_url=DASHBOARD)
    assert (result.delivered, result.status, result.response_body) == (True, 200, b"ok")
    message = json.loads(receiver.requests[0].body)
    header, fields, description = message["blocks"][:3]
    assert len(header["text"]["text"]) == 150 and header["text"]["text"].endswith("N…")
    assert len(description["text"]["text"]) == 3000 and description["text"]["text"].endswith("d…")
    assert all(len(f["text"]) <= 2000 for f in fields["fields"]) and len(fields["fields"][2]["text"]) == 2000
    assert len(message["text"]) == 3000 and message["text"].endswith("s…")  # the notification fallback


def test_the_receiver_rejects_what_slack_rejects(monkeypatch):
    """The same message, uncut, breaks the limits: proof that the receiver checks and the cut matters."""
    message = build_message(TRIGGER._replace(name="N" * 300))
    message["blocks"][0]["text"]["text"] = "N" * 151
    message["blocks"].extend([{"type": "divider"}] * 50)
    assert block_kit_errors(message) == ["55 blocks > 50", "blocks[0]: text length 151 not in 1..150"]
    with Receiver(slack_webhook) as receiver:
        deliverer = HttpDeliverer(DeliveryConfig(retry=RetryConfig(max_attempts=1)))
        [(request, _)] = SlackEncoder(config(monkeypatch, receiver.url + SECRET_PATH)).encode([TRIGGER])
        oversize = request.__class__(request.method, request.url, json.dumps(message).encode(), request.headers)
        wrong_type = request.__class__(request.method, request.url, request.body, {"Content-Type": "text/plain"})
        results = [deliverer.deliver(r) for r in (oversize, wrong_type)]
    assert [(r.status, r.response_body) for r in results] == [(400, b"invalid_blocks"), (400, b"invalid_payload")]


def test_mrkdwn_is_escaped_before_it_is_measured_and_never_cut_inside_an_escape():
    assert fit("a<b>&c", 100, mrkdwn=True) == "a&lt;b&gt;&amp;c"
    cut = fit("<" * 5000, 3000, mrkdwn=True)
    assert len(cut) <= 3000 and cut.endswith("&lt;…") and cut.count("&lt;") == 749


def test_lengths_are_counted_in_utf16_units_so_emoji_never_overflow():
    cut = fit("😀" * 200, 150)
    assert len(cut.encode("utf-16-le")) // 2 <= 150 and cut == "😀" * 74 + "…"
    assert fit("short", 150) == "short"


def test_an_overlong_button_url_is_dropped_not_cut(monkeypatch):
    cfg = config(monkeypatch, "https://hooks.slack.com" + SECRET_PATH,
                 dashboard_url="https://grafana.example/d/x?m={model_id}", acknowledge_url=ACK)  # fmt: skip
    buttons = sent(cfg, TRIGGER._replace(model_id="m" * 3000))["blocks"][-1]["elements"]
    assert [b["action_id"] for b in buttons] == [f"ack_alert_{TRIGGER.id}"] and "url" in buttons[0]


def test_the_acknowledge_action_id_is_the_specs_and_an_id_too_long_for_it_gets_no_button(monkeypatch):
    cfg = config(monkeypatch, "https://hooks.slack.com" + SECRET_PATH)
    [button] = sent(cfg, TRIGGER)["blocks"][-1]["elements"]
    assert button["action_id"] == "ack_alert_" + TRIGGER.id and len(button["action_id"]) == 34
    assert button["value"] == TRIGGER.id
    fits, too_long = TRIGGER._replace(id="a" * 245), TRIGGER._replace(id="a" * 246)
    assert sent(cfg, fits)["blocks"][-1]["elements"][0]["action_id"] == "ack_alert_" + "a" * 245
    assert block_kit_errors(sent(cfg, fits)) == []
    assert sent(cfg, too_long)["blocks"][-1]["type"] == "context"  # no actions block: no cut id


def test_an_acknowledge_notification_is_refused_not_posted(monkeypatch):
    cfg = config(monkeypatch, "https://hooks.slack.com" + SECRET_PATH)
    with pytest.raises(ValueError, match="not notification 'acknowledge'"):
        SlackEncoder(cfg).encode([TRIGGER._replace(notification="acknowledge")])


# --- config ------------------------------------------------------------------------------------------------------


def test_config_defaults_to_one_message_a_second(monkeypatch):
    assert config(monkeypatch, "https://hooks.slack.com/x").delivery.rate_limit_per_s == 1.0
    tuned = config(monkeypatch, "https://hooks.slack.com/x", delivery={"timeout_s": 3})
    assert (tuned.delivery.rate_limit_per_s, tuned.delivery.timeout_s) == (1.0, 3)
    unlimited = config(monkeypatch, "https://x.example/x", delivery={"rate_limit_per_s": None})
    assert unlimited.delivery.rate_limit_per_s is None


@pytest.mark.parametrize(
    "fields, message",
    [({"webhook_url": "https://hooks.slack.com/services/T/B/SECRETVALUE"}, "not a literal value"),
     ({"webhook_url": {"env": "BAD_URL"}}, "absolute http:// or https:// URL"),
     ({"dashboard_url": "https://g.example/{model}"}, "unknown dashboard_url field 'model'"),
     ({"acknowledge_url": "ftp://g.example/{alert_id}"}, "acknowledge_url must be an absolute http"),
     ({"channel": "#alerts"}, "Extra inputs are not permitted")],
)  # fmt: skip
def test_config_errors_never_show_the_webhook_url(monkeypatch, fields, message):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/SECRETVALUE")
    monkeypatch.setenv("BAD_URL", "hooks.slack.com/services/T/B/SECRETVALUE")
    with pytest.raises(ValidationError) as error:
        SlackConfig.model_validate({"name": "s", "webhook_url": {"env": "SLACK_WEBHOOK_URL"}, **fields})
    assert message in str(error.value) and "SECRETVALUE" not in str(error.value)


def test_encoder_is_picklable_and_rejects_other_configs(monkeypatch):
    encoder = pickle.loads(pickle.dumps(SlackEncoder(config(monkeypatch, "https://hooks.slack.com" + SECRET_PATH))))
    assert encoder.encode([TRIGGER])[0][0].url.endswith(SECRET_PATH)
    with pytest.raises(ValueError, match="needs a SlackConfig"):
        SlackEncoder(DeliveryConfig())


# --- delivery ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_end_to_end_through_a_pipeline(monkeypatch):
    with Receiver(slack_webhook) as receiver:
        cfg = config(monkeypatch, receiver.url + SECRET_PATH, dashboard_url=DASHBOARD, acknowledge_url=ACK,
                     delivery={"rate_limit_per_s": None})  # fmt: skip
        with beam.Pipeline() as pipeline:
            outputs = pipeline | beam.Create([TRIGGER, RESOLVE]) | WriteToSlack(cfg)
            assert_that(outputs["delivered"], equal_to([("ml-alerts", TRIGGER.id, "trigger", 200, 1),
                                                        ("ml-alerts", RESOLVE.id, "resolve", 200, 1)]))  # fmt: skip
            assert_that(outputs["dead_letters"], equal_to([]), label="no dead letters")
    assert {r.path for r in receiver.requests} == {SECRET_PATH}
    assert {r.headers["x-airis-idempotency-key"] for r in receiver.requests} == {
        idempotency_key("ml-alerts", TRIGGER), idempotency_key("ml-alerts", RESOLVE)}  # fmt: skip
    headers = sorted(json.loads(r.body)["blocks"][0]["text"]["text"] for r in receiver.requests)
    assert headers == [":rotating_light: [CRITICAL] latency", ":white_check_mark: Resolved: latency"]


@pytest.mark.slow
def test_a_revoked_webhook_is_a_dead_letter_whose_reason_hides_the_url(monkeypatch):
    with Receiver(scripted((404, {}, b"no_service"))) as receiver:
        cfg = config(monkeypatch, receiver.url + SECRET_PATH, delivery={"retry": {"max_attempts": 3}})
        with beam.Pipeline() as pipeline:
            outputs = pipeline | beam.Create([TRIGGER]) | WriteToSlack(cfg)
            assert_that(outputs["delivered"], equal_to([]), label="nothing delivered")
            assert_that(
                outputs["dead_letters"] | beam.Map(lambda d: (d.component, d.reason, json.loads(d.original)["id"])),
                equal_to([("sink:ml-alerts", "permanent failure: HTTP 404 no_service (attempts: 1)", TRIGGER.id)]),
            )
    assert len(receiver.requests) == 1  # a 4xx is never retried


def test_429_with_retry_after_is_waited_out_and_retried(monkeypatch):
    fake = FakeTime()
    calls = []

    def respond(request):  # Slack's rate limit once, then the real checks
        calls.append(request)
        return (429, {"Retry-After": "1"}, b"rate_limited") if len(calls) == 1 else slack_webhook(request)

    with Receiver(respond) as receiver:
        cfg = config(monkeypatch, receiver.url + SECRET_PATH, delivery={"retry": {"initial_backoff_s": 0.01}})
        deliverer = HttpDeliverer(cfg.delivery, clock=fake.clock, sleep=fake.sleep, rng=random.Random(1))
        [(request, _)] = SlackEncoder(cfg).encode([TRIGGER])
        result = deliverer.deliver(request)
    assert (result.delivered, result.attempts, result.status) == (True, 2, 200)
    assert fake.sleeps == [1.0]  # Retry-After, not the 0.01 s backoff; the 1/s rate limit needed no extra wait
    assert receiver.requests[0].body == receiver.requests[1].body


def test_link_templates_percent_encode_values_and_labels():
    alert = TRIGGER._replace(model_id="fraud v2/&x", labels='{"team":"risk ops"}')
    template = "https://g.example/d/{model_id}?team={labels[team]}&missing={labels[nope]}&from={starts_at_ms}"
    assert (
        render_link(template, alert)
        == "https://g.example/d/fraud%20v2%2F%26x?team=risk%20ops&missing=&from=1795824000000"
    )
