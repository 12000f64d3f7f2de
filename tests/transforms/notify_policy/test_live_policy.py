"""The live runner keeps the dispatcher's state in its checkpoint: cycles cut anywhere send the same
group notifications as one dispatcher run over all the alerts up to the same horizon."""

from __future__ import annotations

import json
import random
from pathlib import Path

from airis_mon.config import load_config
from airis_mon.schema import Alert
from pipelines.live.runner import LiveRunner
from sources.gateway.spool import SpoolWriter
from tests.pipelines.live.stream import CONFIG, arrivals
from transforms.notify_policy.transform import dispatch_alerts

POLICY = """notification_policy:
  receiver: feed
  group_by: [source]
  group_wait: 30s
  group_interval: 2m
  repeat_interval: 5m
"""


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_live_cycles_with_restarts_send_what_one_dispatcher_run_sends(tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG.replace("default_route: {sinks: [feed]}\n", POLICY))
    config = load_config(tmp_path / "config.yaml")
    assert config.notification_policy is not None
    items = arrivals()
    rng = random.Random(5)
    cuts = sorted(rng.sample(range(1, len(items)), 6))
    writer = SpoolWriter(tmp_path / "spool")
    runner = LiveRunner(config, str(tmp_path / "out"))
    start = 0
    for cut in [*cuts, len(items)]:
        piece = items[start:cut]
        writer.append([payload for _, payload in piece])
        writer.close()
        if rng.random() < 0.5:
            runner = LiveRunner(config, str(tmp_path / "out"))  # restart between cycles: state from the checkpoint
        runner.run_cycle(now_ms=piece[-1][0])
        start = cut
    runner.flush()
    assert runner.checkpoint.notify_policy  # the state was committed

    stored = [
        json.loads(line)
        for p in sorted((tmp_path / "out").glob("alerts-*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    alerts = [Alert(**{k: v for k, v in a.items() if k in Alert._fields}) for a in stored]
    expected, _ = dispatch_alerts(config.notification_policy, alerts, horizon_ms=runner.checkpoint.data_end_ms)
    sent = [line for path in sorted(runner.outbox_dir.glob("c*.jsonl")) for line in _lines(path)]
    kinds = [n for _, a in expected for n in [a.notification]]
    assert {"trigger", "repeat", "resolve"} <= set(kinds)  # not trivial: updates and resolves
    assert sorted(
        (e["sink"], e["alert"]["timestamp_ms"], e["alert"]["id"], e["alert"]["notification"], e["alert"]["description"])
        for e in sent
    ) == sorted((s, a.timestamp_ms, a.id, a.notification, a.description) for s, a in expected)
