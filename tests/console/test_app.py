"""The console over HTTP: every page and query needs auth, sessions and CSRF done right, nothing secret in
any answer, Slack's signed Acknowledge, GraphQL with read and admin tokens. A real console on a loopback port
over a store written by ``benchmarks.console_data``; requests is the client."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from urllib.parse import urlencode

import pytest
import requests

from benchmarks.console_data import store_document, write_store
from tests.console.console_server import ConsoleServer

ADMIN = "admin-token-for-app-tests-0001"
VIEWER = "viewer-token-for-app-tests-0002"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_WEBHOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
PD_KEY = "P" * 32


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console-app")
    output = folder / "out"
    shape = write_store(output, series=12, windows=90, alerts=120, seed=5)
    os.environ.update({"APP_ADMIN": ADMIN, "APP_VIEWER": VIEWER, "APP_SLACK_SECRET": SIGNING_SECRET,
                       "APP_SLACK_WEBHOOK": SLACK_WEBHOOK, "APP_PD_KEY": PD_KEY})  # fmt: skip
    document = {
        **store_document(shape.models, shape.window_s),
        "integrations": [
            {
                "name": "api",
                "type": "gateway",
                "spool": str(folder / "spool"),
                "tokens": [{"name": "ci", "token": {"env": "APP_ADMIN"}}],
            }
        ],
        "sinks": [
            {"name": "team-slack", "type": "slack", "webhook_url": {"env": "APP_SLACK_WEBHOOK"}},
            {"name": "team-pager", "type": "pagerduty", "routing_key": {"env": "APP_PD_KEY"}},
        ],
        "console": {
            "tokens": [
                {"name": "alice", "token": {"env": "APP_ADMIN"}, "role": "admin"},
                {"name": "bob", "token": {"env": "APP_VIEWER"}},
            ],
            "slack": {"signing_secret": {"env": "APP_SLACK_SECRET"}},
        },
    }
    console = ConsoleServer(document, output, folder)
    console.shape = shape
    yield console
    console.close()


def _firing(server) -> str:
    return next(a for a, s in server.shape.states.items() if s == "firing" and a not in server.shape.acknowledged)


SECRETS = (ADMIN, VIEWER, SIGNING_SECRET, SLACK_WEBHOOK, "XXXXSECRETXXXX", PD_KEY)


def _no_secret_in(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize("path", ["/alerts", "/dashboard?alert=x", "/integrations", "/silences"])
def test_every_page_needs_a_session(server, path):
    answer = requests.get(server.url + path, allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?" + urlencode({"next": path})
    wrong = requests.get(server.url + path, headers={"Cookie": "airis_session=forged"}, allow_redirects=False,
                         timeout=10)  # fmt: skip
    assert wrong.status_code == 303


def test_the_api_needs_a_token(server):
    query = {"query": "{ alerts { total } }"}
    assert requests.post(f"{server.url}/graphql", json=query, timeout=10).status_code == 401
    bad = requests.post(f"{server.url}/graphql", json=query, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["field"] == "Authorization"
    good = requests.post(f"{server.url}/graphql", json=query, headers={"Authorization": f"Bearer {VIEWER}"},
                         timeout=10)  # fmt: skip
    assert good.status_code == 200, good.text
    assert good.json()["data"]["alerts"]["total"] > 0
    assert requests.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok"}


def test_sign_in_sets_an_httponly_strict_cookie_and_never_echoes_the_token(server):
    refused = requests.post(f"{server.url}/login", data={"token": "wrong", "next": "/alerts"}, allow_redirects=False,
                            timeout=10)  # fmt: skip
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    assert "not valid" in refused.text
    answer = requests.post(f"{server.url}/login", data={"token": ADMIN, "next": "/integrations"},
                           allow_redirects=False, timeout=10)  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/integrations"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("airis_session=")
    for flag in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=43200"):
        assert flag.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # http public_url here; https sets Secure (next test)
    _no_secret_in(answer.text + json.dumps(dict(answer.headers)))


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "alerts"])
def test_sign_in_never_redirects_off_site(server, target):
    answer = requests.post(f"{server.url}/login", data={"token": ADMIN, "next": target}, allow_redirects=False,
                           timeout=10)  # fmt: skip
    assert answer.headers["location"] == "/alerts"


def test_a_cross_site_sign_in_is_refused(server):
    answer = requests.post(f"{server.url}/login", data={"token": ADMIN}, headers={"Origin": "https://evil.example"},
                           allow_redirects=False, timeout=10)  # fmt: skip
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_pages_carry_a_strict_policy_and_no_secret(server):
    session = server.sign_in(ADMIN)
    alert_id = _firing(server)
    for path in ("/alerts", f"/dashboard?alert={alert_id}", "/integrations", "/silences"):
        answer = session.get(server.url + path, timeout=10)
        assert answer.status_code == 200, path
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script" not in policy  # no script may run at all
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"
        assert "<script" not in answer.text
        _no_secret_in(answer.text)
        assert session.cookies["airis_session"] not in answer.text


def test_state_changes_need_the_csrf_token_and_our_origin(server):
    session = server.sign_in(ADMIN)
    alert_id = _firing(server)
    url = f"{server.url}/alerts/{alert_id}/acknowledge"
    no_token = session.post(url, data={}, allow_redirects=False, timeout=10)
    assert no_token.status_code == 403 and no_token.json()["field"] == "csrf_token"
    wrong = session.post(url, data={"csrf_token": session.csrf[:-1] + "x"}, allow_redirects=False, timeout=10)
    assert wrong.status_code == 403
    cross = session.post(url, data={"csrf_token": session.csrf}, headers={"Origin": "https://evil.example"},
                         allow_redirects=False, timeout=10)  # fmt: skip
    assert cross.status_code == 403 and cross.json()["field"] == "Origin"
    assert server.services.acknowledger.store.get(alert_id) is None  # nothing was recorded
    done = session.post(url, data={"csrf_token": session.csrf}, headers={"Origin": server.url}, allow_redirects=False,
                        timeout=10)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == f"/dashboard?alert={alert_id}"
    ack = server.services.acknowledger.store.get(alert_id)
    assert ack.by == "alice" and ack.via == "console"


def test_a_read_token_cannot_change_anything(server):
    session = server.sign_in(VIEWER)
    alert_id = _firing(server)
    answer = session.post(f"{server.url}/alerts/{alert_id}/acknowledge", data={"csrf_token": session.csrf},
                          allow_redirects=False, timeout=10)  # fmt: skip
    assert answer.status_code == 403 and answer.json()["field"] == "role"
    silence = session.post(f"{server.url}/silences", data={"csrf_token": session.csrf, "matchers": 'rule="x"',
                           "duration": "1h", "comment": "c"}, allow_redirects=False, timeout=10)  # fmt: skip
    assert silence.status_code == 403
    mutation = {"query": f'mutation {{ acknowledge(alertId: "{alert_id}") {{ first }} }}'}
    api = requests.post(f"{server.url}/graphql", json=mutation, headers={"Authorization": f"Bearer {VIEWER}"},
                        timeout=10)  # fmt: skip
    assert api.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_graphql_with_the_session_needs_the_csrf_header(server):
    session = server.sign_in(ADMIN)
    query = {"query": "{ alerts { total } }"}
    assert session.post(f"{server.url}/graphql", json=query, timeout=10).status_code == 403
    answer = session.post(f"{server.url}/graphql", json=query, headers={"X-CSRF-Token": session.csrf}, timeout=10)
    assert answer.status_code == 200 and answer.json()["data"]["alerts"]["total"] > 0


def test_bad_filters_and_forms_name_the_field(server):
    session = server.sign_in(ADMIN)
    answer = session.get(f"{server.url}/alerts?state=exploded", headers={"Accept": "text/html"}, timeout=10)
    assert answer.status_code == 400 and "(state)" in answer.text
    offset = session.get(f"{server.url}/alerts?offset=-1", timeout=10)
    assert offset.status_code == 400 and offset.json()["field"] == "offset"
    missing = session.get(f"{server.url}/dashboard?alert=no-such-alert", timeout=10)
    assert missing.status_code == 404
    form = {"csrf_token": session.csrf, "matchers": "not a matcher", "duration": "1h", "comment": "x"}
    bad = session.post(f"{server.url}/silences", data=form, allow_redirects=False, timeout=10)
    assert bad.status_code == 400 and bad.json()["field"] == "matchers"
    bad_duration = session.post(f"{server.url}/silences", data={**form, "matchers": 'rule="r"', "duration": "soon"},
                                allow_redirects=False, timeout=10)  # fmt: skip
    assert bad_duration.status_code == 400 and bad_duration.json()["field"] == "duration"


def _slack_request(alert_id: str, user: str = "U0G9QF9C6", at: float | None = None, secret: str = SIGNING_SECRET):
    payload = {"type": "block_actions", "user": {"id": user, "username": "carol", "name": "carol"},
               "team": {"id": "T0CAG", "domain": "acme"}, "channel": {"id": "C0CH", "name": "risk-ml"},
               "response_url": "https://hooks.slack.com/actions/T0CAG/1/abc",
               "actions": [{"type": "button", "action_id": f"ack_alert_{alert_id}", "value": alert_id,
                            "block_id": "b1", "action_ts": "1"}]}  # fmt: skip
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(at if at is not None else time.time()))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature,
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    return body, headers


def test_slack_acknowledge_over_http(server):
    acks = server.services.acknowledger.store
    alert_id = next(
        a
        for a, s in server.shape.states.items()
        if s == "firing" and acks.get(a) is None and a not in server.shape.acknowledged
    )
    body, headers = _slack_request(alert_id, secret="not-the-secret")
    refused = requests.post(f"{server.url}/slack/interactivity", data=body, headers=headers, timeout=10)
    assert refused.status_code == 401
    stale_body, stale_headers = _slack_request(alert_id, at=time.time() - 301)
    assert requests.post(f"{server.url}/slack/interactivity", data=stale_body, headers=stale_headers,
                         timeout=10).status_code in (401, 403)  # fmt: skip
    assert server.services.acknowledger.store.get(alert_id) is None
    body, headers = _slack_request(alert_id)
    answer = requests.post(f"{server.url}/slack/interactivity", data=body, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    ack = server.services.acknowledger.store.get(alert_id)
    assert ack is not None and ack.via == "slack" and "carol" in ack.by
    _no_secret_in(answer.text)


def test_the_packaged_templates_and_stylesheet_are_served(server):
    css = requests.get(f"{server.url}/static/console.css", timeout=10)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert requests.get(f"{server.url}/static/../app.py", timeout=10).status_code == 404
