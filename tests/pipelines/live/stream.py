"""A deterministic metric stream with known incidents, for the live runner's tests.

Three series, one point every 5 s each, arriving up to ``JITTER_MS`` after
their event time and out of order within that:

- ``fraud`` p95 latency: breaches for 7 minutes (an episode with a repeat), recovers;
- ``churn`` p95 latency: breaches and then **stops reporting** mid-incident
  (a stale series: its alert must resolve without new data);
- ``ranker``: never breaches; a ``model_version_status`` event early on gives
  enrichment something to say.

:func:`arrivals` yields ``(arrival_ms, payload)`` in arrival order.
"""

from __future__ import annotations

import random

from tests.conftest import DAY_MS

T0 = DAY_MS + 6 * 3_600_000  # 2026-11-28T06:00:00Z
MINUTE = 60_000
JITTER_MS = 4_000  # < live.allowed_lateness (10 s): never late

CONFIG = """
integrations:
  - {name: api, type: gateway, spool: ./spool}
aggregation: {window_seconds: 60}
live: {allowed_lateness: 10s}
rules:
  - {name: latency, metric: inference_latency, aggregation: p95, comparator: ">", threshold: 250, for: 2,
     keep_firing_for: 1m, repeat_interval: 3m, severity: high, group_by: [model_name]}
  - {name: latency_3m, metric: inference_latency, aggregation: max, comparator: ">", threshold: 300, window: 3m,
     severity: warning, group_by: [model_name]}
  - {name: silent, type: no_data, metric: inference_latency, group_by: [model_name], absent_for: 3m,
     severity: warning}
enrichment:
  ownership:
    - {model: fraud, team: risk-ml, owner: jdoe}
sinks:
  - {name: storage, type: parquet, path: out}
  - {name: feed, type: notification_log}
default_route: {sinks: [feed]}
"""


def _latency(model: str, minute: int) -> float | None:
    if model == "fraud":
        return 420.0 if 5 <= minute < 12 else 40.0
    if model == "churn":
        if minute >= 16:
            return None  # stopped reporting while breaching
        return 500.0 if minute >= 13 else 55.0
    return 30.0


def arrivals(minutes: int = 24, seed: int = 0) -> list[tuple[int, dict]]:
    """Every payload of the stream with its arrival time (epoch ms), in arrival order."""
    rng = random.Random(seed)
    items = []
    for second in range(0, minutes * 60, 5):
        ts = T0 + second * 1000
        for model in ("fraud", "churn", "ranker"):
            value = _latency(model, second // 60)
            if value is None:
                continue
            payload = {"timestamp": ts, "source": "tensorflow_serving",
                       "metrics": [{"name": "inference_latency", "value": value + (second % 7), "unit": "ms",
                                    "tags": {"model_name": model, "environment": "prod"}}]}  # fmt: skip
            items.append((ts + rng.randrange(JITTER_MS), payload))
    event = {"timestamp": T0 + 30_000, "event_type": "model_version_status", "source": "mlflow", "severity": "info",
             "data": {"model_name": "fraud", "version": "7", "change": "alias_set", "alias": "champion"}}  # fmt: skip
    items.append((T0 + 31_000, event))
    return sorted(items, key=lambda item: item[0])
