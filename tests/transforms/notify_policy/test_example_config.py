"""examples/notification-policy.yaml validates as ``--validate`` does, and a broken copy names the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from airis_mon.config import load_config
from airis_mon.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "notification-policy.yaml"
ENV = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/X", "PAGERDUTY_ROUTING_KEY": "R" * 32}


def test_the_example_validates_with_its_policy(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    config = load_config(EXAMPLE)
    policy = config.notification_policy
    assert policy is not None and len(policy.inhibit_rules) == 1 and len(policy.time_intervals) == 2
    pager, infra = policy.compile().children
    assert pager.receivers == ("oncall", "team-slack") and pager.group_wait_s == 10 and pager.group_interval_s == 300
    assert infra.receivers == ("infra-log",) and infra.active[0].name == "office-hours"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.main", "--config", str(EXAMPLE), "--validate"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**ENV, "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "valid" in result.stdout + result.stderr


def test_a_broken_policy_names_each_field(tmp_path, monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    document = yaml.safe_load(EXAMPLE.read_text())
    document["integrations"][0]["paths"] = [
        str((EXAMPLE.parent / p).resolve()) for p in document["integrations"][0]["paths"]
    ]
    document["notification_policy"]["routes"][0]["receiver"] = ["oncall", "nobody"]
    document["notification_policy"]["routes"][1]["matchers"] = ["source=~kubernetes("]
    document["notification_policy"]["group_wait"] = "soon"
    document["time_intervals"][1]["time_intervals"][0]["weekdays"] = ["someday"]
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "broken.yaml")
    text = str(raised.value)
    assert "notification_policy.group_wait" in text
    assert "notification_policy.routes[1].matchers" in text and "regular expression" in text
    assert "time_intervals[1].time_intervals[0].weekdays" in text
