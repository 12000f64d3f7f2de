"""What the acknowledgement tests share: a config with real loopback sinks, stored alert Parquet files, the
live runner's outbox files, and Slack's signature.

One episode of a critical threshold rule (``EPISODE``: trigger, resolve; id ``54404e21197c99407aaf8bd5``,
the one the Slack golden files and ``testdata/block_actions.json`` carry).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from airis_mon.arrowutil import record_schema
from airis_mon.config import load_config
from airis_mon.schema import Alert
from pipelines.live.checkpoint import encode_outbox
from pipelines.live.outbox import Outbox
from pipelines.main import notification_sinks
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate

__all__ = [
    "EPISODE",
    "KEY",
    "RESOLVE",
    "TRIGGER",
    "history",
    "make_config",
    "outbox_for",
    "slack_sign",
    "store_alerts",
    "write_cycle",
]

KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32"  # a fake 32-character PagerDuty integration key
EPISODE = evaluate(threshold_rule(severity="critical"), GROUP, series(11, 11, 1))[0]
TRIGGER, RESOLVE = EPISODE
assert TRIGGER.id == "54404e21197c99407aaf8bd5" and [a.notification for a in EPISODE] == ["trigger", "resolve"]

_FAST = "{rate_limit_per_s: null, timeout_s: 5, retry: {max_attempts: 2, initial_backoff_s: 0.01, max_backoff_s: 0.02}}"


def make_config(folder: Path, monkeypatch, pagerduty_urls: dict[str, str], slack_url: str | None = None):
    """A loaded Config with one ``pagerduty`` sink per ``{name: receiver url}`` and an optional ``slack`` sink
    ``oncall`` (its webhook URL from the environment, as in production)."""
    monkeypatch.setenv("AIRIS_TEST_PD_KEY", KEY)
    lines = ["sinks:"]
    for name, url in pagerduty_urls.items():
        lines.append(f"  - {{name: {name}, type: pagerduty, routing_key: {{env: AIRIS_TEST_PD_KEY}}, "
                     f"url: '{url}/v2/enqueue', delivery: {_FAST}}}")  # fmt: skip
    if slack_url:
        monkeypatch.setenv("AIRIS_TEST_SLACK_URL", f"{slack_url}/services/T0/B0/XXXX")
        lines.append(
            f"  - {{name: oncall, type: slack, webhook_url: {{env: AIRIS_TEST_SLACK_URL}}, delivery: {_FAST}}}"
        )
    path = folder / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(path)


def store_alerts(output: Path, alerts: list[Alert], run: str = "r1") -> Path:
    """``OUTPUT/alerts/date=D/part-RUN.parquet`` with ``alerts`` (all of one date), as the storage sink writes."""
    dates = {datetime.fromtimestamp(a.timestamp_ms / 1000, tz=timezone.utc).date().isoformat() for a in alerts}
    assert len(dates) == 1
    path = output / "alerts" / f"date={dates.pop()}" / f"part-{run}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = record_schema(Alert)
    pq.write_table(pa.Table.from_pylist([a._asdict() for a in alerts], schema=schema), path)
    return path


def write_cycle(state_dir: Path, cycle: int, routed: list[tuple[str, Alert]]) -> Path:
    """A committed cycle's outbox file, in the live runner's format."""
    path = state_dir / "outbox" / f"c{cycle:08d}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(encode_outbox(routed), encoding="utf-8")
    return path


def outbox_for(config, output: Path, state_dir: Path) -> Outbox:
    """The live runner's outbox over the config's notification sinks (as ``python -m pipelines.serve``)."""
    return Outbox({s.name: s for s in notification_sinks(config, str(output))}, state_dir, output)


def history(output: Path) -> list[dict]:
    path = output / "notification_history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def slack_sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's signature, computed independently of the code under test."""
    return "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
