"""30 endpoints failing together: one Slack message and one PagerDuty incident per group.

The alerts go through :class:`NotifyByPolicy` and the real Slack and PagerDuty sinks to the
loopback receivers that enforce each vendor's rules: one POST each when the group first fires,
one update when members resolve, one resolve at the end, all under one ``dedup_key``.
"""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import yaml

from airis_mon.config import load_config
from airis_mon.registry import get_component
from airis_mon.schema import Alert
from tests.sinks.pagerduty.receiver import PagerDutyEvents
from tests.sinks.receivers import Receiver
from tests.sinks.slack.slack_receiver import slack_webhook
from transforms.notify_policy.config import NotificationPolicy
from transforms.notify_policy.transform import NotifyByPolicy, dispatch_alerts

T0 = 1_795_824_000_000  # 2026-11-28T00:00:00Z
S = 1000


def _alert(endpoint: int, at_ms: int, resolve: bool = False) -> Alert:
    starts = T0 + endpoint * 100
    return Alert(
        id=f"{endpoint:024x}",
        name="endpoint_down",
        severity="critical",
        summary=f"endpoint e{endpoint} is down",
        description="",
        timestamp_ms=at_ms,
        source="probe",
        model_id="",
        environment="prod",
        alert_type="threshold",
        threshold=0.5,
        current_value=1.0 if resolve else 0.0,
        peak_value=0.0,
        duration_s=(at_ms - starts) / 1000,
        status="resolved" if resolve else "firing",
        notification="resolve" if resolve else "trigger",
        starts_at_ms=starts,
        resolved_at_ms=at_ms if resolve else 0,
        rule="endpoint_down",
        metric="up",
        group=json.dumps({"endpoint": f"e{endpoint}"}),
        labels=json.dumps({"endpoint": f"e{endpoint}", "team": "web"}),
        silenced=False,
    )


ALERTS = (
    [_alert(i, T0 + i * 100) for i in range(30)]  # all fail within 3 s
    + [_alert(i, T0 + 45 * S, resolve=True) for i in range(5)]  # 5 recover at 45 s
    + [_alert(i, T0 + 100 * S, resolve=True) for i in range(5, 30)]  # the rest at 100 s
)
POLICY = {"receiver": ["chat", "pager"], "group_by": ["alertname"], "group_wait": "30s", "group_interval": "30s"}


def test_the_dispatcher_sends_three_notifications_for_the_group():
    routed, _ = dispatch_alerts(NotificationPolicy.model_validate({"route": POLICY}), ALERTS)
    chat = [alert for receiver, alert in routed if receiver == "chat"]
    assert [(a.timestamp_ms - T0, a.notification, a.summary) for a in chat] == [
        (30 * S, "trigger", "[FIRING:30] endpoint_down"),
        (60 * S, "repeat", "[FIRING:25] endpoint_down"),
        (120 * S, "resolve", "[RESOLVED] endpoint_down"),
    ]
    assert len({a.id for _, a in routed}) == 2  # one per receiver, stable across the group's notifications
    assert "25 firing, 5 resolved" in chat[1].description and "endpoint e29 is down" in chat[1].description


def test_one_slack_message_and_one_pagerduty_incident_per_group(tmp_path: Path, monkeypatch):
    pagerduty = PagerDutyEvents()
    with Receiver(pagerduty) as pd, Receiver(slack_webhook) as slack:
        monkeypatch.setenv("TEST_PD_KEY", "R" * 32)
        monkeypatch.setenv("TEST_SLACK_URL", slack.url + "/services/T000/B000/XXXX")
        fast = {"retry": {"max_attempts": 2, "initial_backoff_s": 0.01}, "rate_limit_per_s": None}
        document = {
            "sinks": [
                {
                    "name": "pager",
                    "type": "pagerduty",
                    "routing_key": {"env": "TEST_PD_KEY"},
                    "url": pd.url + "/v2/enqueue",
                    "delivery": fast,
                },
                {"name": "chat", "type": "slack", "webhook_url": {"env": "TEST_SLACK_URL"}, "delivery": fast},
            ],
            "notification_policy": POLICY,
        }
        (tmp_path / "policy.yaml").write_text(yaml.safe_dump(document))
        config = load_config(tmp_path / "policy.yaml")
        assert config.notification_policy is not None
        with beam.Pipeline() as pipeline:
            routed, _ = pipeline | beam.Create(ALERTS) | NotifyByPolicy(config.notification_policy)
            for sink in config.sinks:
                transform = get_component("sink", sink.type).transform_class()
                _ = (
                    routed
                    | f"Select[{sink.name}]" >> beam.Filter(lambda pair, wanted: pair[0] == wanted, sink.name)
                    | f"Alerts[{sink.name}]" >> beam.Values()
                    | f"Write[{sink.name}]" >> transform(sink)
                )

    events = sorted((json.loads(r.body) for r in pd.requests), key=lambda e: e.get("payload", {}).get("timestamp", "~"))
    assert [e["event_action"] for e in events] == ["trigger", "trigger", "resolve"]
    assert len({e["dedup_key"] for e in events}) == 1 and list(pagerduty.incidents.values()) == ["resolved"]
    assert [e["payload"]["summary"] for e in events[:2]] == ["[FIRING:30] endpoint_down", "[FIRING:25] endpoint_down"]
    texts = sorted(json.loads(r.body)["text"] for r in slack.requests)
    assert len(slack.requests) == 3, texts
    assert sum("[FIRING:30]" in t for t in texts) == 1 and sum("[RESOLVED]" in t for t in texts) == 1
