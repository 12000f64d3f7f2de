"""schemathesis against a real gateway process and its own OpenAPI document, ``--checks all``: 0 failures.

The gateway serves every route (a token, the MLflow and GitHub webhook secrets, a health report). Its
timestamp range reaches 9999-12-31 (``max_future_s`` 1e12): the latest accepted time is otherwise
``now + max_future_s``, which moves while the run lasts, and schemathesis, which reads the document once,
would see its "maximum + 1" cases accepted a second later. With the range reaching the end of what can be
printed, every bound the document states is fixed. (``test_corpus.py`` checks the moving bound with a
fixed clock.)

The signed webhooks get valid signatures: a schemathesis auth provider marks their signature header, and a
``before_call`` hook (:data:`HOOKS`) replaces the mark with the HMAC of the exact bytes sent (a current
``X-MLflow-Timestamp`` for a valid one, a known ``X-GitHub-Event`` for any), so their bodies reach the
normalizers; a signature a check removes or replaces (``ignored_auth``) is sent as it is.

Beyond schemathesis's defaults, documented per route:

- 413 (body larger than ``max_body_bytes``), for valid and invalid data alike: JSON Schema cannot bound a
  body's size in bytes, and a body over the limit is refused as such whatever else it holds;
- 400 for valid data on ``POST /api/v2/silences``: ``endsAt`` must be after ``startsAt`` and in the future
  (the route's description says so; JSON Schema cannot compare two fields or a field with the clock);
- ``use_after_free`` is off (only the silences have a GET on a DELETE's path): expiring a silence keeps it,
  ``expired``, as Alertmanager does (``amtool silence query --expired`` lists them), so a GET after the
  DELETE is a 200 by design;
- 422 for valid data on the routes taking ``Idempotency-Key`` or a delivery id: schemathesis draws keys
  such as ``"0"`` repeatedly with different bodies, which the IETF Idempotency-Key draft answers 422.

``AIRIS_SCHEMATHESIS_EXAMPLES`` / ``AIRIS_SCHEMATHESIS_SEED`` change the run's size and seed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.sources.gateway.live import REPO, LiveGateway

TOKEN = "schemathesis-t0ken"
EXAMPLES = int(os.environ.get("AIRIS_SCHEMATHESIS_EXAMPLES", "100"))
SEED = os.environ.get("AIRIS_SCHEMATHESIS_SEED", "14")
NEGATIVE = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
POSITIVE = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
CONFIG = f"""\
[checks.negative_data_rejection]
expected-statuses = {json.dumps(NEGATIVE)}

[checks.positive_data_acceptance]
expected-statuses = {json.dumps(POSITIVE)}

[[operations]]
include-path-regex = "/(ingest|user-sync|webhook)$"
checks.positive_data_acceptance.expected-statuses = {json.dumps([*POSITIVE, "422"])}

[[operations]]
include-path-regex = "/api/v2/silences$"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = {json.dumps([*POSITIVE, "400"])}
"""
MLFLOW_SECRET, GITHUB_SECRET = "mlflow-webhook-secret", "github-webhook-secret"
HOOKS = f"""\
import base64, hashlib, hmac, json, re, time, zlib

import schemathesis

MLFLOW, GITHUB, MARK = {MLFLOW_SECRET.encode()!r}, {GITHUB_SECRET.encode()!r}, "sign-me"
SIGNATURES = {{"/mlflow/webhook": "X-MLflow-Signature", "/github/webhook": "X-Hub-Signature-256"}}
EVENTS = ["workflow_run", "workflow_job", "push", "ping", "pull_request", "release", "unknown"]
SECONDS = re.compile(r"[\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0]*[0-9]{{1,12}}[\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0]*")


@schemathesis.auth().apply_to(path_regex="webhook$")
class Signature:
    def get(self, case, context):
        return MARK

    def set(self, case, data, context):
        case.headers = {{**(case.headers or {{}}), SIGNATURES[case.operation.path]: data}}


@schemathesis.hook
def before_call(context, case, kwargs):
    name, headers = SIGNATURES.get(case.operation.path), case.headers or {{}}
    if name is None or headers.get(name) != MARK:
        return  # not a signed route, or a signature a check chose: sent as it is
    serialized = case.as_transport_kwargs()
    data = serialized.get("data", b"")
    raw = json.dumps(serialized["json"], allow_nan=False).encode() if "json" in serialized else data
    raw = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else b""
    kwargs["data"] = raw  # these exact bytes are sent, and signed
    if name == "X-MLflow-Signature":
        stamp = headers.get("X-MLflow-Timestamp", "")
        if SECONDS.fullmatch(stamp):  # a valid timestamp stays valid, and becomes current
            stamp = headers["X-MLflow-Timestamp"] = str(int(time.time()))
        signed = f"{{headers.get('X-MLflow-Delivery-Id', '').strip()}}.{{stamp.strip()}}.".encode("latin-1") + raw
        headers[name] = "v1," + base64.b64encode(hmac.new(MLFLOW, signed, hashlib.sha256).digest()).decode()
    else:
        if "X-GitHub-Event" in headers:  # any name is valid; most of them the normalizer knows
            headers["X-GitHub-Event"] = EVENTS[zlib.crc32(raw) % len(EVENTS)]
        headers[name] = "sha256=" + hmac.new(GITHUB, raw, hashlib.sha256).hexdigest()
    case.headers = headers
"""


@pytest.fixture
def gateway(tmp_path):
    (tmp_path / "health_report.json").write_text('{"overall_status": "healthy", "integrations": {}}')
    settings = {
        "tokens": [{"name": "st", "token": {"env": "ST_TOKEN"}, "scopes": ["ingest", "silences:write"]}],
        "mlflow_webhook_secret": {"env": "ST_MLFLOW_SECRET"},
        "github_webhook_secret": {"env": "ST_GITHUB_SECRET"},
        "health_report": "health_report.json",
        "timestamps": {"max_future_s": 1e12},
    }
    env = {"ST_TOKEN": TOKEN, "ST_MLFLOW_SECRET": MLFLOW_SECRET, "ST_GITHUB_SECRET": GITHUB_SECRET}
    live = LiveGateway(tmp_path, settings, env)
    yield live
    live.stop()


@pytest.mark.timeout(600)
def test_schemathesis_checks_all_finds_no_failure(gateway, tmp_path):
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    (tmp_path / "signed_webhooks.py").write_text(HOOKS)
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(tmp_path / "schemathesis.toml"),
        "run", f"{gateway.url}/openapi.json",
        "--checks", "all", "--exclude-checks", "use_after_free",
        "-H", f"Authorization: Bearer {TOKEN}",
        "--max-examples", str(EXAMPLES), "--seed", SEED,
        "--request-timeout", "30", "--generation-database", "none",
        "--report", "json", "--report-json-path", str(report),
        "--no-color", "--output-truncate", "true",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}", "SCHEMATHESIS_HOOKS": "signed_webhooks"}
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=540, env=env)
    output = run.stdout + run.stderr
    print(command[5:], output[-3000:], sep="\n")  # shown by pytest on failure and with -s
    assert run.returncode == 0, output[-6000:]
    summary = json.loads(report.read_text())
    assert summary["complete"] and summary["exit_code"] == 0
    assert summary["operations"]["tested"] == summary["operations"]["total"] == 15
    cases = summary["test_cases"]
    assert cases["with_failures"] == cases["unique_failures"] == cases["errored"] == 0, summary["failures"]
    assert summary["failures"] == [] and summary["errors"] == []
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", output).groups())
    assert generated == passed == cases["generated"] >= 15 * EXAMPLES // 2
    # Valid data got through: every operation taking a body accepted some of it (2xx), signed webhooks too.
    rates = summary["valid_rates"]
    for operation in ("POST /api/v1/metrics/ingest", "POST /api/v1/events/ingest",
                      "POST /api/v1/integrations/user-sync", "POST /api/v1/integrations/webhooks",
                      "POST /mlflow/webhook", "POST /github/webhook", "POST /api/v2/silences"):  # fmt: skip
        assert sum(phase["accepted"] for phase in rates[operation].values()) > 0, operation
    assert not gateway.errors_logged()
