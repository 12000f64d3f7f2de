"""Slack's interactivity requests: the documented signature example, stale and tampered requests refused, the
block_actions payload (testdata/block_actions.json, shaped like Slack's documented example, carrying the
message our encoder builds), and a click end to end: the acknowledgement recorded, PagerDuty's acknowledge
queued, and the message replaced through a loopback response_url receiver."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from airis_mon.console_config import SlackInteractivityConfig
from console.acknowledgements import AcknowledgementStore, Acknowledger, ack_outbox_path
from console.slack_interactivity import (
    MAX_BODY_BYTES,
    SlackInteractivity,
    SlackRequestError,
    acknowledged_message,
    allowed_response_url,
    parse_acknowledge,
    sign,
    verify_slack_signature,
)
from sinks.delivery import DeliveryConfig, HttpDeliverer, RetryConfig
from tests.console.ack_peers import TRIGGER, make_config, outbox_for, slack_sign, store_alerts, write_cycle
from tests.sinks.pagerduty.receiver import PagerDutyEvents
from tests.sinks.receivers import Receiver, scripted

TESTDATA = Path(__file__).parent / "testdata"

# Slack's example from "Verifying requests from Slack" (api.slack.com/authentication/verifying-requests-from-slack).
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

SECRET = "0123456789abcdef0123456789abcdef"  # this test app's signing secret
NOW_S = TRIGGER.timestamp_ms / 1000 + 120
RESPONSE_PATH = "/actions/T1DC2JH3J/1795824070123/96rGlfmibIGlgcZRskXaIFfN"
QUICK = HttpDeliverer(DeliveryConfig(retry=RetryConfig(max_attempts=2, initial_backoff_s=0.01, max_backoff_s=0.02)))


def payload(**changes) -> dict:
    data = json.loads((TESTDATA / "block_actions.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def form(data: dict) -> bytes:
    return urlencode({"payload": json.dumps(data)}).encode()


def signed(body: bytes, timestamp: float = NOW_S, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(timestamp))
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack_sign(secret, ts, body),
            "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip


# --- signatures -----------------------------------------------------------------------------------------------------


def test_slacks_documented_example_verifies():
    assert sign(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY) == DOC_SIGNATURE
    verify_slack_signature(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY, DOC_SIGNATURE, now_s=1531420618 + 299)


@pytest.mark.parametrize(
    "secret, timestamp, body, signature, now, reason",
    [
        (DOC_SECRET, DOC_TIMESTAMP, DOC_BODY + b"&x=1", DOC_SIGNATURE, 1531420618, "does not match"),
        (DOC_SECRET, DOC_TIMESTAMP, DOC_BODY.replace(b"roadrunner", b"coyote"), DOC_SIGNATURE, 1531420618,
         "does not match"),
        ("another-secret", DOC_TIMESTAMP, DOC_BODY, DOC_SIGNATURE, 1531420618, "does not match"),
        (DOC_SECRET, "1531420619", DOC_BODY, DOC_SIGNATURE, 1531420618, "does not match"),
        (DOC_SECRET, DOC_TIMESTAMP, DOC_BODY, DOC_SIGNATURE.upper(), 1531420618, "does not match"),
        (DOC_SECRET, DOC_TIMESTAMP, DOC_BODY, DOC_SIGNATURE, 1531420618 + 301, "stale or replayed"),
        (DOC_SECRET, DOC_TIMESTAMP, DOC_BODY, DOC_SIGNATURE, 1531420618 - 301, "stale or replayed"),
        (DOC_SECRET, None, DOC_BODY, DOC_SIGNATURE, 1531420618, "Timestamp is missing"),
        (DOC_SECRET, "1531420618.5", DOC_BODY, DOC_SIGNATURE, 1531420618, "not a Unix time"),
        (DOC_SECRET, DOC_TIMESTAMP, DOC_BODY, None, 1531420618, "Signature is missing"),
        (DOC_SECRET, DOC_TIMESTAMP, DOC_BODY, "v1=" + DOC_SIGNATURE[3:], 1531420618, "does not match"),
    ],
)  # fmt: skip
def test_tampered_stale_and_unsigned_requests_are_401(secret, timestamp, body, signature, now, reason):
    with pytest.raises(SlackRequestError, match=reason) as refused:
        verify_slack_signature(secret, timestamp, body, signature, now_s=now)
    assert refused.value.status == 401


# --- parsing --------------------------------------------------------------------------------------------------------


def test_the_acknowledge_click_is_parsed_from_slacks_payload():
    click = parse_acknowledge(form(payload()))
    assert (click.alert_id, click.user_id, click.user_name, click.team_id, click.channel_id) == (
        TRIGGER.id, "U2CERLKJA", "roadrunner", "T1DC2JH3J", "C0ML4LERTS")  # fmt: skip
    assert click.response_url.startswith("https://hooks.slack.com/actions/")
    assert click.message["blocks"][-1]["type"] == "actions"


def test_the_view_dashboard_action_is_ignored():
    data = payload()
    data["actions"] = [{"action_id": "view_dashboard", "block_id": "aCt9z", "type": "button", "action_ts": "1.2",
                        "text": {"type": "plain_text", "text": "View Dashboard"}}]  # fmt: skip
    assert parse_acknowledge(form(data)) is None


def _without(data: dict, *path: str) -> dict:
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


@pytest.mark.parametrize(
    "body, field",
    [
        (b"not a form at all", "form field payload is missing"),
        (urlencode({"payload": "{nope"}).encode(), "payload is not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (form(payload(type="view_submission")), "payload field type must be block_actions"),
        (form(payload(actions=[])), "payload field actions"),
        (form(_without(payload(), "user", "id")), "user.id"),
        (form(_without(payload(), "response_url")), "response_url"),
        (form(payload(message="text")), "payload field message"),
    ],
)
def test_malformed_payloads_are_400_naming_the_field(body, field):
    with pytest.raises(SlackRequestError, match=field) as refused:
        parse_acknowledge(body)
    assert refused.value.status == 400


def test_an_action_value_that_differs_from_its_action_id_is_400():
    data = payload()
    data["actions"][0]["value"] = "another-alert"
    with pytest.raises(SlackRequestError, match="value differs"):
        parse_acknowledge(form(data))


# --- the message update ---------------------------------------------------------------------------------------------


def test_the_updated_message_loses_only_the_acknowledge_button_and_names_the_user():
    original = payload()["message"]
    update = acknowledged_message(original, "Acknowledged by <@U2CERLKJA> at 2026-11-28 00:03:00 UTC")
    assert update["replace_original"] is True and update["text"] == original["text"]
    actions = [b for b in update["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == ["view_dashboard"]
    assert update["blocks"][-1] == {"type": "context", "elements": [
        {"type": "mrkdwn", "text": "Acknowledged by <@U2CERLKJA> at 2026-11-28 00:03:00 UTC"}]}  # fmt: skip
    assert all("block_id" not in b for b in update["blocks"])
    assert len(update["blocks"]) == len(original["blocks"]) + 1
    only_ack = {**original, "blocks": [b for b in original["blocks"] if b["type"] != "actions"]
                + [{"type": "actions", "elements": [{"type": "button", "action_id": "ack_alert_x"}]}]}  # fmt: skip
    assert [b["type"] for b in acknowledged_message(only_ack, "n")["blocks"]].count("actions") == 0


@pytest.mark.parametrize(
    "url, hosts, allowed",
    [
        ("https://hooks.slack.com/actions/T/1/x", ["hooks.slack.com"], True),
        ("https://HOOKS.slack.com/actions/T/1/x", ["hooks.slack.com"], True),
        ("http://hooks.slack.com/actions/T/1/x", ["hooks.slack.com"], False),
        ("https://hooks.slack.com:8443/actions/T/1/x", ["hooks.slack.com"], False),
        ("https://hooks.slack.com.evil.example/actions", ["hooks.slack.com"], False),
        ("https://user:pw@hooks.slack.com/actions", ["hooks.slack.com"], False),
        ("https://evil.example/actions", ["hooks.slack.com"], False),
        ("http://127.0.0.1:8123/actions", ["127.0.0.1"], True),
        ("http://127.0.0.1:8123/actions", ["hooks.slack.com"], False),
        ("http://localhost:8123/actions", ["localhost"], False),
        ("http://10.0.0.1/actions", ["10.0.0.1"], False),
        ("ftp://hooks.slack.com/x", ["hooks.slack.com"], False),
        ("https://[::1/x", ["::1"], False),
    ],
)
def test_only_listed_https_hosts_or_listed_loopback_http_get_message_updates(url, hosts, allowed):
    assert allowed_response_url(url, hosts) is allowed


# --- a click end to end ---------------------------------------------------------------------------------------------


@pytest.fixture
def console(tmp_path, monkeypatch):
    """A firing episode whose trigger PagerDuty sink ``pager`` received, and a response_url receiver."""
    output, state = tmp_path / "out", tmp_path / "out" / "state"
    output.mkdir()
    events = PagerDutyEvents()
    with Receiver(events) as pd, Receiver(scripted(*[(200, {"Content-Type": "text/html"}, b"ok")] * 10)) as slack:
        config = make_config(tmp_path, monkeypatch, {"pager": pd.url})
        store_alerts(output, [TRIGGER])
        write_cycle(state, 1, [("pager", TRIGGER)])
        outbox = outbox_for(config, output, state)
        outbox.deliver_pending()
        store = AcknowledgementStore(output)
        acks = Acknowledger(config, output, state, store, clock=lambda: NOW_S)
        settings = SlackInteractivityConfig(signing_secret=SecretStr(SECRET), response_url_hosts=["127.0.0.1"])
        app = SlackInteractivity(settings, acks, clock=lambda: NOW_S, deliverer=QUICK)
        yield {"app": app, "store": store, "slack": slack, "pd": pd, "events": events, "outbox": outbox,
               "state": state, "response_url": slack.url + RESPONSE_PATH}  # fmt: skip


def test_a_click_acknowledges_queues_pagerduty_and_replaces_the_message(console, caplog):
    caplog.set_level(logging.INFO)  # (urllib3 logs request paths at DEBUG, for every sink: keep DEBUG off)
    body = form(payload(response_url=console["response_url"]))
    assert console["app"].handle(body, signed(body)) == (200, {})
    assert console["app"].wait(10)

    ack = console["store"].get(TRIGGER.id)
    assert (ack.by, ack.via, ack.at_ms) == ("slack:roadrunner", "slack", int(NOW_S * 1000))
    [request] = console["slack"].requests
    assert request.path == RESPONSE_PATH and request.headers["content-type"].startswith("application/json")
    update = json.loads(request.body)
    assert update["replace_original"] is True
    buttons = [e["action_id"] for b in update["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["view_dashboard"]
    assert update["blocks"][-1]["elements"][0]["text"] == "Acknowledged by <@U2CERLKJA> at 2026-11-28 00:03:00 UTC"
    [delivery] = console["store"].deliveries(TRIGGER.id)
    assert (delivery.notification, delivery.outcome, delivery.status, delivery.sink) == (
        "slack_update", "delivered", 200, "slack")  # fmt: skip

    assert ack_outbox_path(console["state"], TRIGGER.id).exists()
    assert console["outbox"].deliver_pending() == 1
    assert [json.loads(r.body)["event_action"] for r in console["pd"].requests] == ["trigger", "acknowledge"]
    assert console["events"].incidents == {f"airis-mon-{TRIGGER.id}": "acknowledged"}

    # A second click (another user): nothing new recorded or sent to PagerDuty; the message names the first.
    again = payload(response_url=console["response_url"], user={"id": "U999", "username": "coyote"})
    body = form(again)
    assert console["app"].handle(body, signed(body)) == (200, {})
    assert console["app"].wait(10)
    assert console["store"].get(TRIGGER.id) == ack and console["outbox"].deliver_pending() == 0
    second = json.loads(console["slack"].requests[-1].body)
    assert second["blocks"][-1]["elements"][0]["text"] == "Acknowledged by slack:roadrunner at 2026-11-28 00:03:00 UTC"
    assert len(console["pd"].requests) == 2
    logged = caplog.text
    assert console["response_url"] not in logged and RESPONSE_PATH not in logged and SECRET not in logged


def test_refused_requests_record_nothing_and_send_nothing(console):
    body = form(payload(response_url=console["response_url"]))
    app = console["app"]
    stale = signed(body, timestamp=NOW_S - 301)
    assert app.handle(body, stale)[0] == 401
    wrong = signed(body, secret="not-the-signing-secret")
    assert app.handle(body, wrong) == (401, {"error": "X-Slack-Signature does not match the request"})
    tampered = body.replace(b"roadrunner", b"coyote")
    assert app.handle(tampered, signed(body))[0] == 401
    assert app.handle(body, {})[0] == 401
    huge = b"payload=" + b"x" * MAX_BODY_BYTES
    assert app.handle(huge, signed(huge))[0] == 413
    bad = form(payload(type="view_closed"))
    assert app.handle(bad, signed(bad))[0] == 400
    assert app.wait(5)
    assert console["store"].get(TRIGGER.id) is None and console["slack"].requests == []
    assert not ack_outbox_path(console["state"], TRIGGER.id).exists()


def test_headers_are_matched_case_insensitively_and_view_dashboard_is_answered_200(console):
    data = payload(response_url=console["response_url"])
    data["actions"] = [{"action_id": "view_dashboard", "type": "button", "action_ts": "1"}]
    body = form(data)
    headers = {k.lower(): v for k, v in signed(body).items()}
    assert console["app"].handle(body, headers) == (200, {})
    assert console["app"].wait(5) and console["store"].get(TRIGGER.id) is None and console["slack"].requests == []


def test_a_response_url_off_the_allowed_hosts_is_refused_and_never_logged(console, caplog):
    caplog.set_level(logging.INFO)
    elsewhere = "https://hooks.slack.com.evil.example/actions/T1/1/SECRETPATH"
    body = form(payload(response_url=elsewhere))
    assert console["app"].handle(body, signed(body)) == (200, {})
    assert console["app"].wait(5)
    assert console["store"].get(TRIGGER.id).by == "slack:roadrunner"  # acknowledged all the same
    [delivery] = console["store"].deliveries(TRIGGER.id)
    assert delivery.outcome == "dead_lettered" and delivery.attempts == 0 and "response_url refused" in delivery.reason
    assert "SECRETPATH" not in caplog.text and "evil" not in caplog.text and "SECRETPATH" not in delivery.reason


def test_an_unknown_alert_is_answered_with_a_note_and_not_recorded(console):
    data = payload(response_url=console["response_url"])
    data["actions"][0].update(action_id="ack_alert_0123456789abcdef01234567", value="0123456789abcdef01234567")
    body = form(data)
    assert console["app"].handle(body, signed(body)) == (200, {})
    assert console["app"].wait(5)
    note = json.loads(console["slack"].requests[0].body)
    text = "AIRIS-MON does not know alert 0123456789abcdef01234567; nothing was acknowledged."
    assert note == {"replace_original": False, "text": text}
    assert console["store"].all() == [] and console["store"].deliveries() == []


def test_the_answer_does_not_wait_for_a_slow_response_url(tmp_path, console):
    def slow(_request):
        time.sleep(1.5)
        return 200, {}, b"ok"

    with Receiver(slow) as receiver:
        body = form(payload(response_url=receiver.url + RESPONSE_PATH))
        started = time.perf_counter()
        assert console["app"].handle(body, signed(body)) == (200, {})
        answered_s = time.perf_counter() - started
        assert console["app"].wait(10)
    assert answered_s < 1.0 and len(receiver.requests) == 1  # Slack wants the 200 within 3 s
    assert console["store"].deliveries(TRIGGER.id)[0].outcome == "delivered"
