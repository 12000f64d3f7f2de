"""No error message echoes an input value (issue 15): a value may be a secret pasted in the wrong field.

Sentinels (a text that looks like a timestamp, and numbers) go into every kind of field: config durations,
timestamps (silences, ``timestamps`` ranges), tags, names, types and references; payloads read by the
pipeline (dead-letter reasons) and posted to a real gateway (400 bodies). Messages name the field and the
rule; only a dead letter's ``original`` (the replayable payload) holds the value.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from airis_mon.config import parse_config
from airis_mon.errors import ConfigError
from airis_mon.payloads import TimestampRange, parse_payload
from airis_mon.timeutil import to_epoch_ms
from tests.sources.gateway.live import LiveGateway

REPO = Path(__file__).resolve().parents[2]
TEXT = "2999-01-01T00:00:00Z-SENTINEL-7f3a"
#: Numbers whose digits would show in a message that echoed them.
NUMBERS = (987654321, 98765.4321, 987654321987654321987)
NUMBER_TEXTS = ("987654321", "98765.4321", "987654321987654321987")
SENTINELS = (TEXT, "SENTINEL-7f3a", *NUMBER_TEXTS)
#: Valid RFC 3339 in form, out of range in its fields: must be refused without being shown.
BAD_DATE = "2026-13-45T00:00:00Z"


def assert_no_sentinel(text: str) -> None:
    for sentinel in (*SENTINELS, BAD_DATE):
        assert sentinel not in text, (sentinel, text)


def rule(**fields) -> dict:
    return {"name": "r", "metric": "m", "aggregation": "sum", "comparator": ">", "threshold": 1,
            "severity": "high", **fields}  # fmt: skip


CONFIG = {
    "aggregation": {"window_seconds": NUMBERS[0], "allowed_lateness": TEXT},
    "live": {"allowed_lateness": TEXT, "cycle_interval_s": TEXT, "metrics_port": NUMBERS[0]},
    "integrations": [
        {"name": "files", "type": "payload_files", "paths": ["*.py"],
         "timestamps": {"not_before": TEXT, "max_future_s": TEXT}},
        {"name": "files2", "type": "payload_files", "paths": ["*.py"], "timestamps": {"not_before": BAD_DATE}},
        {"name": "files3", "type": "payload_files", "paths": ["*.py"], "timestamps": {"not_before": NUMBERS[2]}},
        {"name": TEXT, "type": "payload_files", "paths": ["*.py"]},
        {"name": "typo", "type": TEXT},
        {"name": "api", "type": "gateway", "spool": "spool", "port": NUMBERS[0], "handoff": TEXT,
         "max_body_bytes": NUMBERS[1], "dedup_window_s": TEXT},
    ],
    "rules": [
        rule(name="r1", threshold=TEXT, severity=TEXT, comparator=TEXT, aggregation=TEXT),
        rule(name="r2", **{"for": TEXT}, keep_firing_for=TEXT, repeat_interval=TEXT, window=TEXT),
        rule(name="r3", window=NUMBERS[0]),
        rule(name="r4", tags={"model_name": {"regex": TEXT + "(("}, "host": NUMBERS[1]}, labels={"team": NUMBERS[1]}),
        rule(name="r5", type="no_data", absent_for=TEXT),
        {"name": "r6", "type": TEXT},
    ],
    "sinks": [
        {"name": "feed", "type": "notification_log"},
        {"name": "chat", "type": "slack", "webhook_url": TEXT},
        {"name": "chat2", "type": "slack", "webhook_url": {"secret_manager": TEXT}},
    ],
    "silences": [
        {"name": "s1", "matchers": {"a": "b"}, "starts_at": TEXT, "ends_at": BAD_DATE},
        {"name": "s2", "matchers": {"a": {"regex": TEXT + "(("}}, "starts_at": NUMBERS[2], "ends_at": NUMBERS[1]},
        {"name": TEXT, "matchers": {"a": "b"}, "starts_at": NUMBERS[0], "ends_at": NUMBERS[1]},
    ],
    "routes": [{"name": "r", "sinks": [TEXT], "match": {"severity": [TEXT]}}],
    "default_route": {"sinks": [TEXT, "SENTINEL-7f3a"]},
    "enrichment": {"lookback": TEXT, "ownership": [
        {"model": "SENTINEL-7f3a", "slack": TEXT, "pagerduty": "SENTINEL-7f3a", "repository": TEXT},
        {"model": "m2", "aliases": ["SENTINEL-7f3a"]},
    ]},
}  # fmt: skip


def test_config_problems_name_fields_never_values(tmp_path):
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG, REPO)
    problems = caught.value.problems
    assert len(problems) >= 30, problems
    for problem in problems:
        assert_no_sentinel(problem)
    paths = {problem.partition(": ")[0] for problem in problems}
    for path in ("aggregation.window_seconds", "aggregation.allowed_lateness", "live.allowed_lateness",
                 "integrations[0].timestamps.not_before", "integrations[1].timestamps.not_before",
                 "integrations[2].timestamps.not_before", "integrations[3].name", "integrations[4].type",
                 "rules[0].threshold", "rules[1].for", "rules[1].keep_firing_for", "rules[1].window",
                 "rules[3].tags.model_name.regex", "rules[3].tags.host", "rules[5].type",
                 "sinks[1].webhook_url", "sinks[2].webhook_url", "silences[0].starts_at", "silences[0].ends_at",
                 "silences[1].matchers.a.regex", "silences[1]", "silences[2]", "routes[0].match.severity[0]",
                 "default_route.sinks[0]", "default_route.sinks[1]", "enrichment.lookback",
                 "enrichment.ownership[0].repository"):  # fmt: skip
        assert path in paths, (path, problems)


def test_validate_output_names_fields_never_values(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps(CONFIG))  # JSON is YAML
    result = subprocess.run([sys.executable, "-m", "pipelines.main", "--config", str(config), "--validate"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "configuration error(s)" in result.stderr
    assert_no_sentinel(result.stdout + result.stderr)


def test_an_out_of_range_rfc3339_date_is_refused_without_echo():
    with pytest.raises(ValueError) as caught:
        to_epoch_ms(BAD_DATE)
    assert_no_sentinel(str(caught.value))
    with pytest.raises(ValueError) as caught:
        TimestampRange().exact_epoch_ms(BAD_DATE)
    assert_no_sentinel(str(caught.value))


PAYLOADS = [
    {"timestamp": TEXT, "source": "s", "metrics": [{"name": "m", "value": 1}]},
    {"timestamp": BAD_DATE, "source": "s", "metrics": [{"name": "m", "value": 1}]},
    {"timestamp": NUMBERS[2], "source": "s", "metrics": [{"name": "m", "value": 1}]},
    {"timestamp": -NUMBERS[0], "source": "s", "metrics": [{"name": "m", "value": 1}]},
    {"timestamp": 1.7e9, "source": "s", "metrics": [{"name": "m", "value": TEXT, "unit": TEXT * 3}]},
    {"timestamp": 1.7e9, "source": "s", "metrics": [{"name": TEXT * 10, "value": NUMBERS[1], "tags": {"a": TEXT}}]},
    {"timestamp": 1.7e9, "source": "s", "metrics": [{"name": "m", "value": NUMBERS[2], "tags": [TEXT]}]},
    {"timestamp": 1.7e9, "source": TEXT * 10, "event_type": TEXT, "severity": TEXT},
    {"timestamp": 1.7e9, "source": "s", "event_type": "e", "severity": "info", "data": TEXT},
    {"timestamp": True, "source": "s", "metrics": TEXT},
    {"timestamp": 1.7e9, "source": "s", "metrics": [{"name": "m", "value": True, "extra": TEXT}]},
    {"timestamp": NUMBERS[1], "source": NUMBERS[0], "event_type": NUMBERS[0], "severity": NUMBERS[0]},
]


def test_dead_letter_reasons_name_fields_never_values():
    reasons = []
    for payload in PAYLOADS:
        _, _, dead = parse_payload(payload, "payload_files:x", TimestampRange())
        assert dead, payload
        for letter in dead:
            reasons.append(letter.reason)
            assert_no_sentinel(letter.reason)
    assert any(TEXT in letter.original for payload in PAYLOADS[:1]
               for letter in parse_payload(payload, "c", TimestampRange())[2])  # fmt: skip
    assert len(reasons) >= len(PAYLOADS)


def test_file_lines_dead_letter_reasons_name_fields_never_values(tmp_path):
    """A real run of the main job over a payload file of bad lines: the stored dead letters' reasons."""
    data = tmp_path / "bad.jsonl.gz"
    lines = [json.dumps(payload) for payload in PAYLOADS] + [f"{{not json {TEXT}", f'["{TEXT}"]', TEXT]
    with gzip.open(data, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"integrations": [{"name": "bad", "type": "payload_files", "paths": [data.name]}]}))
    output = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "pipelines.main", "--config", str(config), "--output", str(output)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = sorted((output / "dead_letters").rglob("*.jsonl"))
    assert files, sorted(output.rglob("*"))
    rows = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert len(rows) >= len(lines)
    for row in rows:
        assert_no_sentinel(row["reason"])
    assert any(TEXT in row["original"] for row in rows)


TOKEN = "no-echo-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    settings = {"tokens": [{"name": "ci", "token": {"env": "NO_ECHO_TOKEN"}}]}
    live = LiveGateway(tmp_path_factory.mktemp("gateway"), settings, {"NO_ECHO_TOKEN": TOKEN})
    yield live
    live.stop()


def test_gateway_400s_name_fields_never_values(gateway):
    answers = []
    for payload in PAYLOADS:
        path = "/api/v1/events/ingest" if "event_type" in payload else "/api/v1/metrics/ingest"
        answers.append(requests.post(gateway.url + path, json=payload, headers=AUTH, timeout=10))
    raw = {**AUTH, "Content-Type": "application/json"}
    for body in (f"{{not json {TEXT}".encode(), json.dumps(TEXT).encode(), f'{{"timestamp": {NUMBERS[2]}e5}}'.encode()):
        answers.append(requests.post(gateway.url + "/api/v1/metrics/ingest", data=body, headers=raw, timeout=10))
    sync = {"source": "okta", "timestamp": TEXT, "users": [{"id": TEXT, "active": TEXT}]}
    answers.append(requests.post(gateway.url + "/api/v1/integrations/user-sync", json=sync, headers=AUTH, timeout=10))
    hook = {"name": TEXT, "url": TEXT, "events": [TEXT], "headers": {"X": 1}}
    answers.append(requests.post(gateway.url + "/api/v1/integrations/webhooks", json=hook, headers=AUTH, timeout=10))
    keyed = {**AUTH, "Idempotency-Key": TEXT + "\u00e9"}
    answers.append(requests.post(gateway.url + "/api/v1/metrics/ingest", json=PAYLOADS[0], headers=keyed, timeout=10))
    answers.append(requests.delete(gateway.url + "/api/v1/integrations/webhooks", params={"name": TEXT + "!"},
                                   headers=AUTH, timeout=10))  # fmt: skip
    for answer in answers:
        assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
        assert_no_sentinel(answer.text)
        assert answer.json().get("details"), answer.text
    assert gateway.errors_logged() == ""
