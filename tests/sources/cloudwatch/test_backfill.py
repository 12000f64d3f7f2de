"""``python -m pipelines.backfill`` against moto: chunks, rules, idempotent storage, resume."""

import hashlib
import json
import time
import urllib.request

import pytest

from pipelines.backfill import run
from tests.sources.cloudwatch.test_cloudwatch import _credentials, create_endpoints, moto_url, put, url  # noqa: F401

MIN = 60


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "health_report.json"}  # fmt: skip


@pytest.mark.slow
def test_backfill_evaluates_rules_stores_idempotently_and_resumes_without_refetching(url, tmp_path):  # noqa: F811
    create_endpoints(url, ["ep-a"])
    start = (int(time.time()) // 3600 - 3) * 3600  # three hours ago, on an hour boundary
    for minute in range(30):
        put(url, "ep-a", "Invocation5XXErrors", start + minute * MIN, [50.0 if 10 <= minute < 13 else 1.0])
    config = tmp_path / "backfill.yaml"
    config.write_text(f"""
integrations:
  - name: sm
    type: cloudwatch
    region: us-east-1
    endpoint_url: {url}
    endpoint_names: [ep-a]
    metrics: [Invocation5XXErrors]
    statistics: [Sum]
rules:
  - {{name: burst, metric: invocation_5xx_errors, tags: {{statistic: sum}}, group_by: [endpoint_name],
     aggregation: sum, comparator: ">", threshold: 20, severity: critical}}
sinks:
  - {{name: storage, type: parquet, path: out}}
""")
    args = [
        "--config",
        str(config),
        "--start",
        str(start),
        "--end",
        str(start + 30 * MIN),
        "--output",
        str(tmp_path / "out"),
    ]
    assert run(args) == 0
    alerts = [
        json.loads(line) for p in (tmp_path / "out").glob("alerts-*.jsonl") for line in p.read_text().splitlines()
    ]
    assert sorted((a["notification"], (a["timestamp_ms"] // 1000 - start) // MIN) for a in alerts) == [
        ("resolve", 13), ("trigger", 11),
    ]  # fmt: skip
    chunks = sorted((tmp_path / "out" / "backfill" / "sm").glob("chunk-*.parquet"))
    assert len(chunks) == 1
    first = digest(tmp_path / "out")

    # Empty CloudWatch: a second backfill of the same range must come from the stored chunks, not a refetch,
    # and give byte-identical outputs (no duplicated rows).
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=5).close()
    assert run(args) == 0
    assert digest(tmp_path / "out") == first

    # Interrupted before a chunk was written: the next run fetches just that chunk.
    chunks[0].unlink()
    assert run(args) == 0
    assert chunks[0].exists()


def test_ranges_beyond_retention_and_configs_without_cloudwatch_are_clear_errors(tmp_path, capsys):
    config = tmp_path / "none.yaml"
    config.write_text("integrations: []\n")
    assert run(["--config", str(config), "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-02T00:00:00Z"]) == 2
    assert "no `type: cloudwatch` integration" in capsys.readouterr().err
    assert run(["--config", str(config), "--start", "2026-01-02T00:00:00Z", "--end", "2026-01-01T00:00:00Z"]) == 2
    assert "--end must be after --start" in capsys.readouterr().err
