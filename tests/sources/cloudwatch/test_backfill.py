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
    """Every stored file's digest, but the health report and health rows, which measure each run (poll
    latencies): for those only the names, which a re-run keeps."""
    digests = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        name = str(p.relative_to(folder))
        measured = p.name == "health_report.json" or "health" in p.relative_to(folder).parts
        digests[name] = "measured" if measured else hashlib.sha256(p.read_bytes()).hexdigest()
    return digests


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


def test_slices_store_the_same_rows_and_one_episode_across_slice_boundaries(tmp_path):
    """Three 10-minute chunks, an incident from minute 8 to 13: stored in one slice or in three, the
    aggregates are the same rows and the rules see one episode (trigger and resolve in different slices)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airis_mon.config import parse_config
    from pipelines.backfill import plan_slices, store_and_evaluate
    from sources.cloudwatch.client import MetricQuery
    from sources.cloudwatch.points import points_table

    start = 1_795_824_000  # 2026-11-28T00:00:00Z
    query = MetricQuery("ep-a", "AllTraffic", "Invocation5XXErrors", "Sum")
    chunks = []
    for index in range(3):
        begin = start + index * 600
        times = [pa.scalar(t * 1_000_000, pa.timestamp("us", tz="UTC")).as_py() for t in range(begin, begin + 600, 60)]
        values = [50.0 if 8 <= (t.timestamp() - start) // 60 < 13 else 1.0 for t in times]
        path = tmp_path / "chunks" / f"chunk-{begin}-{begin + 600}-60.parquet"
        path.parent.mkdir(exist_ok=True)
        pq.write_table(points_table([(query, times, values)], "prod"), path, store_schema=False)
        chunks.append(path)
    assert [len(s["sm"]) for s in plan_slices({"sm": chunks}, 10)] == [1, 1, 1]
    assert [len(s["sm"]) for s in plan_slices({"sm": chunks}, 25)] == [2, 1]
    document = {
        "rules": [{"name": "burst", "metric": "invocation_5xx_errors", "group_by": ["endpoint_name"],
                   "aggregation": "sum", "comparator": ">", "threshold": 20, "severity": "critical"}],
    }  # fmt: skip
    config = parse_config(document, tmp_path)
    results = {}
    for slice_points in (1000, 10):
        out = tmp_path / f"out-{slice_points}"
        store_and_evaluate(config, {"sm": chunks}, str(out), slice_points=slice_points)
        alerts = [json.loads(line) for p in out.glob("alerts-*.jsonl") for line in p.read_text().splitlines()]
        aggregates = pq.read_table(out / "aggregates").sort_by([("window_start_ms", "ascending")])
        results[slice_points] = (
            sorted((a["notification"], (a["timestamp_ms"] // 1000 - start) // MIN, a["id"]) for a in alerts),
            aggregates.filter(pa.compute.equal(aggregates.column("source"), "aws_sagemaker")).to_pylist(),
        )
    assert [(kind, minute) for kind, minute, _ in results[10][0]] == [("resolve", 13), ("trigger", 9)]
    assert results[10] == results[1000]
    assert len(results[10][1]) == 30
