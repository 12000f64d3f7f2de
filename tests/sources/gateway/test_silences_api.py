"""``/api/v2/silences`` on a real gateway process: Alertmanager API v2 shapes, scopes, 4xx naming the field,
persistence across a restart; driven by ``python -m pipelines.silence`` and by the real ``amtool``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import requests

from airis_mon.silence_store import SilenceStore, StoredSilence, config_matchers, parse_matcher
from tests.sources.gateway.live import REPO, LiveGateway

WRITER, INGEST = "silence-writer-t0ken-abcdef", "ingest-only-t0ken-abcdef"
SETTINGS = {
    "tokens": [
        {"name": "oncall", "token": {"env": "SW_TOKEN"}, "scopes": ["ingest", "silences:write"]},
        {"name": "ci", "token": {"env": "SI_TOKEN"}},
    ]
}
ENV = {"SW_TOKEN": WRITER, "SI_TOKEN": INGEST}
BODY = {
    "matchers": [{"name": "model_name", "value": "fraud", "isRegex": False}],
    "startsAt": "2026-01-01T00:00:00Z",
    "endsAt": "2099-01-01T00:00:00Z",
    "createdBy": "jdoe",
    "comment": "deploy",
}


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def gateway(tmp_path):
    live = LiveGateway(tmp_path, SETTINGS, ENV)
    yield live
    live.stop()


def _cli(gateway: LiveGateway, *args: str, token: str = WRITER) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.silence", "--url", gateway.url, *args], cwd=REPO,
                          env={**os.environ, "AIRIS_TOKEN": token, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_matchers_follow_alertmanager():
    labels = {"model_name": "fraud", "severity": "high"}
    assert parse_matcher("model_name=fraud").holds(labels)
    assert not parse_matcher("model_name!=fraud").holds(labels)
    assert parse_matcher('severity=~"high|critical"').holds(labels)
    assert not parse_matcher("severity!~high|critical").holds(labels)
    assert parse_matcher("team!=risk").holds(labels)  # a missing label is ""
    assert not parse_matcher("team=~.+").holds(labels)
    assert parse_matcher("model_name=~fra").holds(labels) is False  # whole-value match
    with pytest.raises(ValueError):
        parse_matcher("model_name~fraud")
    config_form = config_matchers({"model_name": "fraud", "severity": {"regex": "high|critical"}})
    assert [m.api() for m in config_form] == [
        {"name": "model_name", "value": "fraud", "isRegex": False, "isEqual": True},
        {"name": "severity", "value": "high|critical", "isRegex": True, "isEqual": True},
    ]


def test_store_expires_in_place_and_survives_a_new_reader(tmp_path):
    t = 1_796_000_000_000  # epoch ms (2026-12)
    store = SilenceStore(tmp_path / "silences.json")
    body = {**BODY, "startsAt": t + 1_000, "endsAt": t + 10_000}
    silence = store.put(StoredSilence.model_validate(body), now_ms=t + 2_000)
    assert silence.silences({"model_name": "fraud"}, t + 5_000)
    assert not silence.silences({"model_name": "x"}, t + 5_000) and not silence.silences({"model_name": "fraud"}, t)
    expired = store.expire(silence.id, now_ms=t + 3_000)
    assert (expired.ends_at, expired.updated_at) == (t + 3_000, t + 3_000)
    again = SilenceStore(tmp_path / "silences.json").all()
    assert [(s.id, s.ends_at) for s in again] == [(silence.id, t + 3_000)]
    assert not again[0].silences({"model_name": "fraud"}, t + 3_000) and again[0].api(t + 4_000)["status"] == {
        "state": "expired"
    }


def test_create_list_get_expire_and_4xx(gateway, tmp_path):
    api = f"{gateway.url}/api/v2"
    assert requests.post(f"{api}/silences", json=BODY, headers=_auth(INGEST), timeout=10).status_code == 403
    assert requests.post(f"{api}/silences", json=BODY, timeout=10).status_code == 401
    created = requests.post(f"{api}/silences", json=BODY, headers=_auth(WRITER), timeout=10)
    assert created.status_code == 200, created.text
    silence_id = created.json()["silenceID"]
    listed = requests.get(f"{api}/silences", headers=_auth(INGEST), timeout=10).json()  # any token reads
    assert [(s["id"], s["status"]["state"], s["createdBy"]) for s in listed] == [(silence_id, "active", "jdoe")]
    assert listed[0]["matchers"] == [{"name": "model_name", "value": "fraud", "isRegex": False, "isEqual": True}]
    filtered = requests.get(f"{api}/silences", params={"filter": "model_name=churn"}, headers=_auth(INGEST),
                            timeout=10).json()  # fmt: skip
    assert filtered == []

    def refused(change: dict) -> list[str]:
        answer = requests.post(f"{api}/silences", json={**BODY, **change}, headers=_auth(WRITER), timeout=10)
        assert answer.status_code == 400, answer.text
        return [d["field"] for d in answer.json()["details"]]

    assert refused({"endsAt": "2025-01-01T00:00:00Z"}) == ["endsAt", "endsAt"]  # before start, in the past
    assert refused({"matchers": [{"name": "a", "value": "(", "isRegex": True}]}) == ["matchers[0]"]
    assert refused({"matchers": [{"name": "1a", "value": "x", "isRegex": False}]}) == ["matchers[0].name"]
    assert refused({"matchers": []}) == ["matchers"]
    assert refused({"startsAt": "yesterday"}) == ["startsAt"]

    assert requests.delete(f"{api}/silence/{silence_id}", headers=_auth(INGEST), timeout=10).status_code == 403
    assert requests.delete(f"{api}/silence/{silence_id}", headers=_auth(WRITER), timeout=10).status_code == 200
    assert requests.delete(f"{api}/silence/nope", headers=_auth(WRITER), timeout=10).status_code == 404
    gateway.stop()
    log = (tmp_path / "gateway.log").read_text()
    assert WRITER not in log and INGEST not in log and f"silence {silence_id} expired by token oncall" in log
    restarted = LiveGateway(tmp_path, SETTINGS, ENV)  # the same spool: the store persisted
    try:
        got = requests.get(f"{restarted.url}/api/v2/silence/{silence_id}", headers=_auth(INGEST), timeout=10)
        assert got.json()["status"]["state"] == "expired"
    finally:
        restarted.stop()


def test_the_cli_adds_queries_and_expires(gateway):
    added = _cli(gateway, "add", "model_name=fraud", "severity=~high|critical", "team!=risk", "--duration", "2h",
                 "--author", "jdoe", "--comment", "deploy")  # fmt: skip
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    shown = _cli(gateway, "query", token=INGEST)
    assert shown.returncode == 0 and silence_id in shown.stdout
    assert 'model_name="fraud" severity=~"high|critical" team!="risk"' in shown.stdout
    assert _cli(gateway, "query", "-q", "model_name=churn").stdout == ""
    assert _cli(gateway, "expire", silence_id, token=INGEST).returncode == 1  # lacks silences:write
    assert _cli(gateway, "expire", silence_id).returncode == 0
    assert _cli(gateway, "query", "-q").stdout == ""
    assert _cli(gateway, "query", "-q", "--expired").stdout.split() == [silence_id]
    bad = _cli(gateway, "add", "a=~(", "--author", "x", "--comment", "y")
    assert bad.returncode == 2 and "invalid regular expression" in bad.stderr  # refused before sending
    assert WRITER not in bad.stderr + added.stdout + shown.stdout


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool (prometheus-alertmanager) not installed")
def test_amtool_talks_to_it(gateway, tmp_path):
    http_config = tmp_path / "http.yml"
    http_config.write_text(f"authorization:\n  type: Bearer\n  credentials_file: {tmp_path / 'token'}\n")
    (tmp_path / "token").write_text(WRITER)

    def amtool(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["amtool", f"--alertmanager.url={gateway.url}", f"--http.config.file={http_config}",
                               "silence", *args], capture_output=True, text=True, timeout=60)  # fmt: skip

    added = amtool("add", "model_name=fraud", 'severity=~"high|critical"', "--duration=1h", "--author=jdoe",
                   "--comment=load test")  # fmt: skip
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    ours = requests.get(f"{gateway.url}/api/v2/silence/{silence_id}", headers=_auth(INGEST), timeout=10).json()
    assert ours["matchers"][1] == {"name": "severity", "value": "high|critical", "isRegex": True, "isEqual": True}
    queried = amtool("query")
    assert queried.returncode == 0 and silence_id in queried.stdout and "load test" in queried.stdout
    assert amtool("expire", silence_id).returncode == 0
    assert amtool("query", "-q").stdout.strip() == ""
    assert amtool("query", "-q", "--expired").stdout.split() == [silence_id]
