"""Shared fixtures: small payload files written per test, never the network."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _no_prism_download():
    """Beam's DirectRunner first tries the Prism runner, which it downloads from github.com at run time
    Tests never leave loopback: Prism is refused at once, so the DirectRunner falls back to its
    in-process runners here and on a machine with internet alike."""
    from apache_beam.runners.portability import prism_runner

    def refuse(self, *args, **kwargs):
        raise RuntimeError("Prism is not used in tests (it would be downloaded from the internet)")

    original = prism_runner.PrismRunner.run_pipeline
    prism_runner.PrismRunner.run_pipeline = refuse
    yield
    prism_runner.PrismRunner.run_pipeline = original


#: 2026-11-28T00:00:00Z in epoch ms
DAY_MS = 1_795_824_000_000


def write_jsonl(path: Path, payloads: list, compress: bool = False) -> Path:
    """Write payloads (dicts, or raw strings written as-is) one per line."""
    lines = [p if isinstance(p, str) else json.dumps(p, allow_nan=True) for p in payloads]
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)
    return path


def metrics_payload(timestamp, source: str, *points: tuple) -> dict:
    """``points`` are (name, value, unit, tags) tuples."""
    return {
        "timestamp": timestamp,
        "source": source,
        "metrics": [{"name": n, "value": v, "unit": u, "tags": t} for n, v, u, t in points],
    }


@pytest.fixture
def small_day(tmp_path: Path) -> Path:
    """A folder with a small recorded day: 2 series with an incident each, bad records, a config."""
    data = tmp_path / "data"
    payloads = []
    for minute in range(30):
        ts = DAY_MS + minute * 60_000
        five_xx = 40 if 10 <= minute < 13 else 1
        payloads.append(
            metrics_payload(
                ts,
                "aws_sagemaker",
                ("Invocation5XXErrors", five_xx, "None", {"EndpointName": "ep-a", "Statistic": "Sum"}),
                ("ModelLatency", 40_000 + minute, "Microseconds", {"EndpointName": "ep-a", "Statistic": "Average"}),
            )
        )
        for second in range(0, 60, 10):
            latency = 400.0 if 20 <= minute < 22 else 40.0 + second / 10
            payloads.append(
                metrics_payload(
                    ts + second * 1000,
                    "tensorflow_serving",
                    ("inference_latency", latency, "ms", {"model_name": "fraud", "model_version": 12}),
                )
            )
    payloads.append(
        {
            "timestamp": DAY_MS,
            "event_type": "model_version_status",
            "source": "mlflow",
            "severity": "info",
            "data": {"model_name": "fraud", "version": "12"},
        }
    )
    payloads.append({"timestamp": DAY_MS, "event_type": "deploy", "source": "mlflow", "severity": "fatal", "data": {}})
    payloads.append(metrics_payload(DAY_MS, "tensorflow_serving", ("inference_latency", float("nan"), "ms", {})))
    payloads.append('{"timestamp": 1, "source": "trunc')
    write_jsonl(data / "day.jsonl.gz", payloads, compress=True)
    config = tmp_path / "config.yaml"
    config.write_text(
        """
integrations:
  - {name: recorded, type: payload_files, paths: ["data/*.jsonl.gz"]}
aggregation: {window_seconds: 60}
rules:
  - {name: five_xx, metric: invocation_5xx_errors, aggregation: sum, comparator: ">", threshold: 20,
     severity: critical, tags: {statistic: sum}}
  - {name: latency, metric: inference_latency, aggregation: p95, comparator: ">", threshold: 250, severity: high}
sinks:
  - {name: storage, type: parquet, path: out}
""",
        encoding="utf-8",
    )
    return tmp_path
