"""schemathesis against a real gateway process and its own OpenAPI document, ``--checks all``: 0 failures.

The gateway serves every route (a token, the MLflow and GitHub webhook secrets, a health report). Its
timestamp range reaches 9999-12-31 (``max_future_s`` 1e12): the latest accepted time is otherwise
``now + max_future_s``, which moves while the run lasts, and schemathesis, which reads the document once,
would see its "maximum + 1" cases accepted a second later. With the range reaching the end of what can be
printed, every bound the document states is fixed. (``test_corpus.py`` checks the moving bound with a
fixed clock.)

Two statuses are configured as expected beyond schemathesis's defaults, both documented per route:

- 413 (body larger than ``max_body_bytes``), for valid and invalid data alike: JSON Schema cannot bound a
  body's size in bytes, and a body over the limit is refused as such whatever else it holds;
- 422 for valid data on the routes taking ``Idempotency-Key``: schemathesis draws keys such as ``"0"``
  repeatedly with different bodies, which the IETF Idempotency-Key draft answers 422.

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
include-path-regex = "/(ingest|user-sync)$"
checks.positive_data_acceptance.expected-statuses = {json.dumps([*POSITIVE, "422"])}
"""


@pytest.fixture
def gateway(tmp_path):
    (tmp_path / "health_report.json").write_text('{"overall_status": "healthy", "integrations": {}}')
    settings = {
        "tokens": [{"name": "st", "token": {"env": "ST_TOKEN"}}],
        "mlflow_webhook_secret": {"env": "ST_MLFLOW_SECRET"},
        "github_webhook_secret": {"env": "ST_GITHUB_SECRET"},
        "health_report": "health_report.json",
        "timestamps": {"max_future_s": 1e12},
    }
    env = {"ST_TOKEN": TOKEN, "ST_MLFLOW_SECRET": "mlflow-webhook-secret", "ST_GITHUB_SECRET": "github-secret"}
    live = LiveGateway(tmp_path, settings, env)
    yield live
    live.stop()


@pytest.mark.timeout(600)
def test_schemathesis_checks_all_finds_no_failure(gateway, tmp_path):
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(tmp_path / "schemathesis.toml"),
        "run", f"{gateway.url}/openapi.json",
        "--checks", "all",
        "-H", f"Authorization: Bearer {TOKEN}",
        "--max-examples", str(EXAMPLES), "--seed", SEED,
        "--request-timeout", "30", "--generation-database", "none",
        "--report", "json", "--report-json-path", str(report),
        "--no-color", "--output-truncate", "true",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=540,
                         env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    output = run.stdout + run.stderr
    print(command[5:], output[-3000:], sep="\n")  # shown by pytest on failure and with -s
    assert run.returncode == 0, output[-6000:]
    summary = json.loads(report.read_text())
    assert summary["complete"] and summary["exit_code"] == 0
    assert summary["operations"]["tested"] == summary["operations"]["total"] == 11
    cases = summary["test_cases"]
    assert cases["with_failures"] == cases["unique_failures"] == cases["errored"] == 0, summary["failures"]
    assert summary["failures"] == [] and summary["errors"] == []
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", output).groups())
    assert generated == passed == cases["generated"] >= 11 * EXAMPLES // 2
    # Valid data got through: every Bearer operation taking a body accepted some of it (2xx).
    rates = summary["valid_rates"]
    for operation in ("POST /api/v1/metrics/ingest", "POST /api/v1/events/ingest",
                      "POST /api/v1/integrations/user-sync", "POST /api/v1/integrations/webhooks"):  # fmt: skip
        assert sum(phase["accepted"] for phase in rates[operation].values()) > 0, operation
    assert not gateway.errors_logged()
