"""End to end: the main job routes alerts to real-protocol receivers on loopback.

"PagerDuty only for critical and high" is a route in the config: PagerDuty
must receive the critical and high episodes (trigger and resolve, one
dedup_key each) and never the warning; Slack receives everything; a Slack
outage answered with 503 is retried, a rejected request is dead-lettered.
"""

import json
from pathlib import Path

import apache_beam as beam
import yaml

from airis_mon.config import load_config
from pipelines.main import build_pipeline
from tests.sinks.pagerduty.receiver import PagerDutyEvents
from tests.sinks.receivers import Receiver, then
from tests.sinks.slack.slack_receiver import slack_webhook

ROUTING_KEY = "R" * 32


def test_routes_send_critical_and_high_to_pagerduty_and_everything_to_slack(small_day: Path, monkeypatch):
    pagerduty = PagerDutyEvents()
    with Receiver(pagerduty) as pd, Receiver(then([(503, {}, b"busy")], slack_webhook)) as slack:
        monkeypatch.setenv("TEST_PD_KEY", ROUTING_KEY)
        monkeypatch.setenv("TEST_SLACK_URL", slack.url + "/services/T000/B000/XXXX")
        document = yaml.safe_load((small_day / "config.yaml").read_text())
        document["rules"].append(
            {"name": "latency_warning", "metric": "model_latency", "aggregation": "mean", "comparator": ">",
             "threshold": 40.015, "severity": "warning"}  # minutes 16..29 of the small day: one open episode
        )  # fmt: skip
        fast = {"retry": {"max_attempts": 3, "initial_backoff_s": 0.01}, "rate_limit_per_s": None}
        document["sinks"] += [
            {"name": "pager", "type": "pagerduty", "routing_key": {"env": "TEST_PD_KEY"}, "url": pd.url + "/v2/enqueue",
             "delivery": fast},
            {"name": "chat", "type": "slack", "webhook_url": {"env": "TEST_SLACK_URL"}, "delivery": fast},
        ]  # fmt: skip
        document["routes"] = [
            {"name": "page", "match": {"severity": ["critical", "high"]}, "sinks": ["pager"], "continue": True},
            {"name": "all", "sinks": ["chat"]},
        ]
        config_path = small_day / "notify.yaml"
        config_path.write_text(yaml.safe_dump(document))
        config = load_config(config_path)
        pipeline = beam.Pipeline()
        build_pipeline(pipeline, config, output=str(small_day / "out"))
        result = pipeline.run()
        result.wait_until_finish()

    paged = [json.loads(r.body) for r in pd.requests]
    assert sorted((e["event_action"], e.get("payload", {}).get("severity")) for e in paged) == [
        ("resolve", None), ("resolve", None), ("trigger", "critical"), ("trigger", "error"),  # high -> error
    ]  # fmt: skip
    assert set(pagerduty.incidents.values()) == {"resolved"} and len(pagerduty.incidents) == 2
    slack_texts = [json.loads(r.body)["text"] for r in slack.requests if r.body]
    assert len(slack.requests) == 5 + 1  # 2 triggers + 2 resolves + the warning's trigger, and one retried 503
    assert any("latency_warning" in text for text in slack_texts)
    counters = {(c.key.metric.namespace, c.key.metric.name): c.committed for c in result.metrics().query()["counters"]
                if c.key.metric.namespace.startswith("sink:")}  # fmt: skip
    assert counters[("sink:pager", "sent")] == 4 and counters[("sink:chat", "sent")] == 5
    assert counters[("sink:chat", "retried")] == 1
    assert "XXXX" not in json.dumps(paged) + "".join(slack_texts)  # the webhook secret is never echoed
