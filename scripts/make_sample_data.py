"""Regenerate the bundled sample day (deterministic: same seed, same bytes).

    python scripts/make_sample_data.py

Writes ``airis_mon/sample_data/*.jsonl.gz``: one recorded day (2026-11-28 UTC)
of payloads in the public contract's shapes from four integrations, with two
injected incidents and a few malformed records:

- aws_sagemaker: CloudWatch per-minute statistics for 3 endpoints
  (ISO timestamps, latencies in Microseconds, PascalCase names and dimensions).
  Incident: a 5XX burst on churn-model-prod, 09:30-09:42.
- tensorflow_serving: inference latency (ms) and request counts every 3 s for
  2 models (epoch-ms timestamps).
  Incident: a latency spike on fraud-detector, 14:05-14:25.
- mlflow: model version and alias events (ISO timestamps).
- github_actions: workflow run durations in seconds (epoch-s timestamps) and
  run events; a burst of payloads with a broken timestamp at 16:00 makes this
  integration "degraded" in the health report.

It also writes ``examples/history/aws_sagemaker-first-hour.parquet``: the
first hour of the SageMaker payloads as raw points (the ``point_files``
format, what ``python -m pipelines.backfill`` stores per chunk).
"""

from __future__ import annotations

import gzip
import json
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

DAY = datetime(2026, 11, 28, tzinfo=timezone.utc)
OUT = Path(__file__).resolve().parent.parent / "airis_mon" / "sample_data"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPIKE = (DAY + timedelta(hours=14, minutes=5), DAY + timedelta(hours=14, minutes=25))
BURST = (DAY + timedelta(hours=9, minutes=30), DAY + timedelta(hours=9, minutes=42))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def daily_load(moment: datetime) -> float:
    """Traffic multiplier: quiet at night, busy in the afternoon (UTC)."""
    hour = moment.hour + moment.minute / 60
    return 0.55 + 0.45 * math.sin((hour - 8) / 24 * 2 * math.pi) ** 2


def write(name: str, lines: list[str]) -> None:
    with gzip.GzipFile(OUT / name, "wb", mtime=0) as handle:
        handle.write("".join(line + "\n" for line in lines).encode("utf-8"))
    print(f"{name}: {len(lines)} lines")


def dumps(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), allow_nan=True)


def sagemaker(rng: random.Random) -> list[str]:
    endpoints = {
        "fraud-detector-prod": ("production", 900, 38_000),
        "churn-model-prod": ("production", 420, 61_000),
        "recsys-ranker-staging": ("staging", 120, 22_000),
    }
    lines = []
    for minute in range(1440):
        moment = DAY + timedelta(minutes=minute)
        for endpoint, (environment, rate, latency_us) in endpoints.items():
            invocations = max(0, int(rng.gauss(rate * daily_load(moment), rate * 0.05)))
            errors_5xx = sum(rng.random() < 0.0005 for _ in range(min(invocations, 300)))
            if endpoint == "churn-model-prod" and BURST[0] <= moment < BURST[1]:
                errors_5xx = int(invocations * rng.uniform(0.08, 0.2))
            dims = {"EndpointName": endpoint, "VariantName": "AllTraffic", "environment": environment}
            latency = latency_us * rng.lognormvariate(0, 0.08)

            def point(name, value, unit, statistic, dims=dims):
                return {"name": name, "value": value, "unit": unit, "tags": {**dims, "Statistic": statistic}}

            lines.append(
                dumps(
                    {
                        "timestamp": iso(moment),
                        "source": "aws_sagemaker",
                        "metrics": [
                            point("Invocations", invocations, "None", "Sum"),
                            point(
                                "Invocation4XXErrors",
                                sum(rng.random() < 0.002 for _ in range(min(invocations, 300))),
                                "None",
                                "Sum",
                            ),
                            point("Invocation5XXErrors", errors_5xx, "None", "Sum"),
                            point("ModelLatency", round(latency, 1), "Microseconds", "Average"),
                            point("ModelLatency", round(latency * rng.uniform(1.8, 3.0), 1), "Microseconds", "Maximum"),
                            point("OverheadLatency", round(rng.uniform(900, 2500), 1), "Microseconds", "Average"),
                        ],
                    }
                )
            )
    # Malformed: a timestamp that is no timestamp, and an infinite value.
    lines.insert(
        200,
        dumps(
            {
                "timestamp": "yesterday",
                "source": "aws_sagemaker",
                "metrics": [{"name": "Invocations", "value": 12, "unit": "None"}],
            }
        ),
    )
    lines.insert(
        900,
        dumps(
            {
                "timestamp": iso(DAY + timedelta(hours=3)),
                "source": "aws_sagemaker",
                "metrics": [
                    {
                        "name": "ModelLatency",
                        "value": float("inf"),
                        "unit": "Microseconds",
                        "tags": {"EndpointName": "fraud-detector-prod"},
                    }
                ],
            }
        ),
    )
    return lines


def tensorflow_serving(rng: random.Random) -> list[str]:
    models = {"fraud-detector": ("12", "production", 45.0), "image-classifier": ("3", "production", 70.0)}
    lines = []
    for step in range(0, 86_400, 3):
        moment = DAY + timedelta(seconds=step)
        for model, (version, environment, latency_ms) in models.items():
            latency = latency_ms * rng.lognormvariate(0, 0.25)
            if model == "fraud-detector" and SPIKE[0] <= moment < SPIKE[1]:
                latency *= rng.uniform(5.0, 8.0)
            tags = {
                "model_name": model,
                "model_version": version,
                "framework": "tensorflow",
                "environment": environment,
            }
            lines.append(
                dumps(
                    {
                        "timestamp": int(moment.timestamp() * 1000),
                        "source": "tensorflow_serving",
                        "metrics": [
                            {"name": "inference_latency", "value": round(latency, 3), "unit": "ms", "tags": tags},
                            {"name": "request_count", "value": rng.randint(20, 60), "unit": "count", "tags": tags},
                        ],
                    }
                )
            )
    lines.insert(
        5000,
        dumps(
            {
                "timestamp": int((DAY + timedelta(hours=4)).timestamp() * 1000),
                "source": "tensorflow_serving",
                "metrics": [
                    {
                        "name": "inference_latency",
                        "value": float("nan"),
                        "unit": "ms",
                        "tags": {"model_name": "fraud-detector"},
                    }
                ],
            }
        ),
    )
    lines.insert(
        7000,
        dumps(
            {
                "timestamp": int((DAY + timedelta(hours=6)).timestamp() * 1000),
                "source": "tensorflow_serving",
                "metrics": [
                    {"name": "inference_latency", "value": "fast", "unit": "ms"},
                    {"name": "request_count", "value": 31, "unit": "count"},
                ],
            }
        ),
    )
    lines.insert(9000, '{"timestamp": 1795500000000, "source": "tensorflow_serving", "metrics": [{"name": "inferen')
    return lines


def mlflow(rng: random.Random) -> list[str]:
    lines = []
    changes = [
        (2, 10, "fraud-detector", "11", "alias_set", {"alias": "challenger"}),
        (7, 45, "churn-model", "7", "stage_transition", {"from_stage": "Staging", "to_stage": "Production"}),
        (11, 2, "image-classifier", "3", "version_registered", {"run_id": "f3a9c1d2"}),
        (13, 42, "fraud-detector", "12", "alias_set", {"alias": "champion"}),
        (13, 43, "fraud-detector", "11", "alias_removed", {"alias": "champion"}),
        (18, 30, "recsys-ranker", "21", "version_registered", {"run_id": "77be01aa"}),
        (19, 5, "recsys-ranker", "21", "stage_transition", {"from_stage": "None", "to_stage": "Staging"}),
    ]
    for hour, minute, model, version, change, extra in changes:
        lines.append(
            dumps(
                {
                    "timestamp": iso(DAY + timedelta(hours=hour, minutes=minute)),
                    "event_type": "model_version_status",
                    "source": "mlflow",
                    "severity": "info",
                    "data": {"model_name": model, "version": version, "change": change, **extra},
                }
            )
        )
    lines.append(
        dumps(
            {
                "timestamp": iso(DAY + timedelta(hours=20)),
                "event_type": "model_version_status",
                "source": "mlflow",
                "severity": "fatal",
                "data": {"model_name": "churn-model"},
            }
        )
    )
    return lines


def github_actions(rng: random.Random) -> list[str]:
    repositories = ["acme/fraud-detector", "acme/churn-model", "acme/ml-platform"]
    workflows = {"ci": 240, "train": 1800, "deploy": 420}
    actors = ["ana", "bilal", "chen", "dmitri", "eve"]
    lines = []
    run_number = 400
    for _ in range(320):
        run_number += 1
        moment = DAY + timedelta(seconds=rng.randint(0, 86_399))
        repository = rng.choice(repositories)
        workflow = rng.choice(list(workflows))
        conclusion = "failure" if rng.random() < 0.12 else "success"
        duration_s = round(workflows[workflow] * rng.lognormvariate(0, 0.3), 1)
        tags = {
            "repository": repository,
            "workflow": workflow,
            "status": "completed",
            "conclusion": conclusion,
            "branch": "main" if rng.random() < 0.7 else f"feature/{rng.randint(1, 99)}",
            "actor": rng.choice(actors),
        }
        timestamp = int(moment.timestamp())
        lines.append(
            dumps(
                {
                    "timestamp": timestamp,
                    "source": "github_actions",
                    "metrics": [{"name": "workflow_duration", "value": duration_s, "unit": "s", "tags": tags}],
                }
            )
        )
        lines.append(
            dumps(
                {
                    "timestamp": timestamp,
                    "event_type": "workflow_run",
                    "source": "github_actions",
                    "severity": "warning" if conclusion == "failure" else "info",
                    "data": {**tags, "run_number": run_number},
                }
            )
        )
    lines.sort(key=lambda line: json.loads(line)["timestamp"])
    # An upstream format change at 16:00: nine payloads whose timestamp cannot be read.
    for minute in range(9):
        lines.append(
            dumps(
                {
                    "timestamp": f"2026-11-28 16:{minute:02d} UTC+?",
                    "source": "github_actions",
                    "metrics": [{"name": "workflow_duration", "value": 300.0, "unit": "s"}],
                }
            )
        )
    return lines


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in (
        ("aws_sagemaker", sagemaker),
        ("tensorflow_serving", tensorflow_serving),
        ("mlflow", mlflow),
        ("github_actions", github_actions),
    ):
        lines = build(random.Random(f"airis-mon-{name}"))
        write(f"{name}.jsonl.gz", lines)
        if name == "aws_sagemaker":
            write_point_file(EXAMPLES / "history" / "aws_sagemaker-first-hour.parquet", lines, DAY + timedelta(hours=1))


def write_point_file(path: Path, lines: list[str], before: datetime) -> None:
    """The metrics payloads of ``lines`` older than ``before`` as a raw-point Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airis_mon.schema import RAW_POINT_SCHEMA, canonical_tags
    from airis_mon.timeutil import to_epoch_ms

    rows = []
    for line in lines:
        try:
            payload = json.loads(line)
            at_ms = to_epoch_ms(payload["timestamp"])
        except (ValueError, KeyError, TypeError):
            continue  # the injected malformed records
        if at_ms >= before.timestamp() * 1000:
            continue
        for metric in payload.get("metrics", []):
            row = {"timestamp": at_ms / 1000, "source": payload["source"], "tags": canonical_tags(metric.get("tags"))}
            rows.append(row | {key: metric.get(key) for key in ("name", "value", "unit")})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=RAW_POINT_SCHEMA), path, compression="zstd")


if __name__ == "__main__":
    main()
