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


def test_owned_models_page_their_team_with_what_changed_and_the_rest_follow_the_default_route(
    small_day: Path, monkeypatch
):
    """The fraud model (p95 spike at minute 20) is owned: its alerts go to the team's Slack and PagerDuty and say
    what changed (MLflow alias 23 min before, a deploy run, the owner from the directory). ep-a (5XX burst at
    minute 10) is owned by nobody: it goes to the default route only."""
    from tests.conftest import DAY_MS, write_jsonl

    minute = 60_000
    write_jsonl(small_day / "data" / "context.jsonl.gz", [
        {"timestamp": DAY_MS - 3 * minute, "event_type": "model_version_status", "source": "mlflow", "severity": "info",
         "data": {"model_name": "fraud-detector", "version": "12", "change": "model_version_alias.created",
                  "alias": "champion"}},
        {"timestamp": DAY_MS + 5 * minute, "event_type": "workflow_run", "source": "github", "severity": "info",
         "data": {"repository": "acme/fraud", "workflow": "deploy", "run_number": 481, "status": "completed",
                  "conclusion": "success", "actor": "alice"}},
        {"timestamp": DAY_MS - 60 * minute, "event_type": "user_sync", "source": "corp-directory", "severity": "info",
         "data": {"count": 1, "users": [{"user_id": "7", "username": "jdoe", "email": "jdoe@example.com",
                                         "display_name": "Jane Doe", "department": "Risk"}]}},
    ], compress=True)  # fmt: skip
    team_pd = PagerDutyEvents()
    with Receiver(team_pd) as pd, Receiver(slack_webhook) as team_slack, Receiver(slack_webhook) as default_slack:
        monkeypatch.setenv("TEST_PD_KEY", ROUTING_KEY)
        monkeypatch.setenv("TEAM_SLACK_URL", team_slack.url + "/services/T000/B000/TEAM")
        monkeypatch.setenv("DEFAULT_SLACK_URL", default_slack.url + "/services/T000/B000/DEFAULT")
        document = yaml.safe_load((small_day / "config.yaml").read_text())
        fast = {"retry": {"max_attempts": 2, "initial_backoff_s": 0.01}, "rate_limit_per_s": None}
        document["sinks"] += [
            {"name": "risk-pager", "type": "pagerduty", "routing_key": {"env": "TEST_PD_KEY"},
             "url": pd.url + "/v2/enqueue", "delivery": fast},
            {"name": "risk-slack", "type": "slack", "webhook_url": {"env": "TEAM_SLACK_URL"}, "delivery": fast},
            {"name": "ml-feed", "type": "slack", "webhook_url": {"env": "DEFAULT_SLACK_URL"}, "delivery": fast},
        ]  # fmt: skip
        document["default_route"] = {"sinks": ["ml-feed"]}
        document["enrichment"] = {"lookback": "1h", "ownership": [
            {"model": "fraud", "registry_model": "fraud-detector", "repository": "acme/fraud", "team": "risk-ml",
             "owner": "jdoe", "slack": "risk-slack", "slack_channel": "#risk-ml", "pagerduty": "risk-pager"},
        ]}  # fmt: skip
        config_path = small_day / "owners.yaml"
        config_path.write_text(yaml.safe_dump(document))
        pipeline = beam.Pipeline()
        build_pipeline(pipeline, load_config(config_path), output=str(small_day / "out"))
        pipeline.run().wait_until_finish()

    paged = [json.loads(r.body) for r in pd.requests]
    assert sorted(e["event_action"] for e in paged) == ["resolve", "trigger"]
    trigger = next(e for e in paged if e["event_action"] == "trigger")
    changed = (
        "latency breached 23 min after model v12 became champion; deployed by run #481 of deploy (success, by alice)"
    )
    assert trigger["payload"]["summary"].endswith(f" | {changed}")
    details = trigger["payload"]["custom_details"]
    assert (details["what_changed"], details["team"], details["owner"]["display_name"]) == (
        changed,
        "risk-ml",
        "Jane Doe",
    )
    assert details["model_id"] == "fraud"
    team_messages = [json.loads(r.body) for r in team_slack.requests]
    assert len(team_messages) == 2  # the fraud episode's trigger and resolve
    sections = [b["text"]["text"] for m in team_messages for b in m["blocks"] if b["type"] == "section" and "text" in b]
    owner = "Jane Doe &lt;jdoe@example.com&gt; · team risk-ml · #risk-ml"  # mrkdwn escapes < and >
    assert f"*What changed:* {changed}\n*Owner:* {owner}" in sections
    default_texts = [json.loads(r.body)["text"] for r in default_slack.requests]
    assert len(default_texts) == 2 and all("five_xx" in text for text in default_texts)  # ep-a: nobody owns it
    stored = [
        json.loads(line) for p in (small_day / "out").glob("alerts-*.jsonl") for line in p.read_text().splitlines()
    ]
    fraud = [json.loads(a["context"]) for a in stored if a["model_id"] == "fraud"]
    assert fraud and all(c["summary"] == changed for c in fraud)
