"""``python -m pipelines.serve`` killed with SIGKILL at random moments under load: nothing lost, nothing twice.

The runner (and its gateway child: the whole process group, as ``docker kill`` would) is SIGKILLed at
random moments at least 5 times during a load of more than 5 minutes with rotating incidents, and
restarted each time. Loopback Slack and PagerDuty receivers that enforce the vendors' rules record every
notification. At the end:

- every point the gateway acknowledged (202) is stored, and no point is stored twice;
- the notifications received are exactly those of one batch run of the main job over the stored points:
  every one arrives, none twice (Slack by its ``X-Airis-Idempotency-Key``, PagerDuty by dedup key, action
  and time).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import apache_beam as beam
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from airis_mon.config import load_config
from airis_mon.schema import Alert
from benchmarks.live_load import Load, free_port, rotating_incidents, wait_until_serving
from pipelines.main import build_pipeline
from sinks.delivery import idempotency_key
from tests.conftest import write_jsonl
from tests.sinks.pagerduty.receiver import PagerDutyEvents
from tests.sinks.receivers import Receiver
from tests.sinks.slack.slack_receiver import slack_webhook

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
LOAD_S = 330.0  # more than 5 minutes
KILLS = 6
TOKEN = "sigkill-test-token-0123456789"
ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32"

CONFIG = """
integrations:
  - name: api
    type: gateway
    spool: ./spool
    port: {port}
    tokens: [{{name: load, token: {{env: AIRIS_TEST_TOKEN}}}}]
    max_segment_age_s: 1
    rate_limit_per_s: 1000
    rate_limit_burst: 1000
aggregation: {{window_seconds: 10}}
live: {{allowed_lateness: 3s, cycle_interval_s: 2, metrics_port: 0}}
rules:
  - {{name: latency, metric: inference_latency, aggregation: p95, comparator: ">", threshold: 250, for: 2,
     repeat_interval: 30s, severity: critical, group_by: [model_name]}}
sinks:
  - {{name: storage, type: parquet, path: out}}
  - {{name: slack, type: slack, webhook_url: {{env: AIRIS_TEST_SLACK_URL}}}}
  - {{name: pager, type: pagerduty, routing_key: {{env: AIRIS_TEST_PD_KEY}}, url: "{pagerduty}/v2/enqueue"}}
default_route: {{sinks: [slack, pager]}}
"""


#: The same rule over the stored points, in one batch run (the oracle).
BATCH_CONFIG = """
integrations:
  - {name: api, type: payload_files, paths: [points.jsonl]}
aggregation: {window_seconds: 10}
rules:
  - {name: latency, metric: inference_latency, aggregation: p95, comparator: ">", threshold: 250, for: 2,
     repeat_interval: 30s, severity: critical, group_by: [model_name]}
sinks:
  - {name: storage, type: parquet, path: out}
"""


class _Service:
    """``python -m pipelines.serve`` in its own process group (killing the group kills its gateway too)."""

    def __init__(self, folder: Path, env: dict[str, str]):
        self._folder = folder
        self._env = env
        self._log = open(folder / "serve.log", "ab")  # noqa: SIM115 (kept for the service's lifetime)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.serve", "--config", "config.yaml", "--output", "out"],
            cwd=self._folder, env=self._env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        os.killpg(self.process.pid, signal.SIGTERM)
        code = self.process.wait(timeout=120)
        self._log.close()
        return code


def _expected(folder: Path, stored: list[dict]) -> tuple[Counter, Counter]:
    """The notifications one batch run over the stored points sends: Slack keys, PagerDuty identities."""
    batch = folder / "batch"
    payloads = [{"timestamp": r["timestamp_ms"], "source": r["source"],
                 "metrics": [{"name": r["name"], "value": r["value"], "unit": r["unit"],
                              "tags": json.loads(r["tags"])}]} for r in stored]  # fmt: skip
    write_jsonl(batch / "points.jsonl", payloads)
    (batch / "config.yaml").write_text(BATCH_CONFIG)
    config = load_config(batch / "config.yaml")
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        build_pipeline(pipeline, config, str(batch / "out"), num_shards=4, streaming=False)
    alerts = [json.loads(line) for p in (batch / "out").glob("alerts-*.jsonl") for line in p.read_text().splitlines()]
    slack = Counter(idempotency_key("slack", Alert(**a)) for a in alerts)
    pager = Counter(_pagerduty_identity(a) for a in alerts)
    return slack, pager


def _pagerduty_identity(alert: dict) -> tuple:
    dedup = f"airis-mon-{alert['id']}"
    if alert["notification"] == "resolve":
        return dedup, "resolve", None
    when = datetime.fromtimestamp(alert["timestamp_ms"] / 1000, tz=timezone.utc)
    return dedup, "trigger", when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _received(slack: Receiver, pager: Receiver) -> tuple[Counter, Counter]:
    slack_keys = Counter(r.headers["x-airis-idempotency-key"] for r in slack.requests)
    events = [json.loads(r.body) for r in pager.requests]
    pager_keys = Counter(
        (
            e["dedup_key"],
            e["event_action"],
            e.get("payload", {}).get("timestamp") if e["event_action"] == "trigger" else None,
        )
        for e in events
    )
    return slack_keys, pager_keys


@pytest.mark.timeout(900)
def test_sigkill_under_load_loses_nothing_and_repeats_nothing(tmp_path):
    rng = random.Random(7)
    with Receiver(slack_webhook) as slack, Receiver(PagerDutyEvents()) as pager:
        port = free_port()
        (tmp_path / "config.yaml").write_text(CONFIG.format(port=port, pagerduty=pager.url))
        slack_url = f"{slack.url}/services/T000/B000/XXXX"
        env = {**os.environ, "PYTHONPATH": str(REPO), "AIRIS_TEST_TOKEN": TOKEN, "AIRIS_TEST_SLACK_URL": slack_url,
               "AIRIS_TEST_PD_KEY": ROUTING_KEY}  # fmt: skip
        service = _Service(tmp_path, env)
        service.start()
        wait_until_serving(f"http://127.0.0.1:{port}")
        incidents = rotating_incidents(LOAD_S - 30, every_s=45, length_s=30, models=30)  # all over before the end
        load = Load(f"http://127.0.0.1:{port}", TOKEN, series=30, clients=3, interval_s=1.0, incidents=incidents,
                    record_points=True)  # fmt: skip
        loader = threading.Thread(target=load.run, args=(LOAD_S,))
        loader.start()
        kills = 0
        while loader.is_alive() and kills < KILLS:
            time.sleep(rng.uniform(25, 45))
            service.kill()
            kills += 1
            time.sleep(rng.uniform(0, 3))  # down for a moment: requests fail and are not acknowledged
            service.start()
        loader.join()
        assert kills >= 5 and load.acked > 5_000
        time.sleep(40)  # every window closes, every notification is delivered
        assert service.stop() == 0
        slack_got, pager_got = _received(slack, pager)

    metrics = pq.read_table(tmp_path / "out" / "metrics")
    metrics = metrics.filter(pc.equal(metrics.column("source"), "loadgen"))
    stored = metrics.to_pylist()
    stored_keys = Counter((r["timestamp_ms"], json.loads(r["tags"])["model_name"]) for r in stored)
    assert max(stored_keys.values()) == 1  # no point stored twice
    acked = {(ts, model) for ts, model, _ in load.acked_points}
    assert acked <= set(stored_keys)  # every acknowledged point stored
    # Stored but not acknowledged: only requests whose answer the kill cut off.
    assert len(set(stored_keys) - acked) <= KILLS * 3 * 30

    slack_expected, pager_expected = _expected(tmp_path, stored)
    summary = {
        "kills": kills, "acked_points": load.acked, "refused_points": load.refused, "stored_points": len(stored),
        "slack_expected": sum(slack_expected.values()), "slack_received": sum(slack_got.values()),
        "pagerduty_expected": sum(pager_expected.values()), "pagerduty_received": sum(pager_got.values()),
    }  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    print("SIGKILL test:", json.dumps(summary))
    assert sum(slack_expected.values()) >= 10  # several incidents: triggers, repeats, resolves
    assert slack_got == slack_expected  # every notification once: 0 lost, 0 duplicated
    assert pager_got == pager_expected
