"""Notification text from templates: the default templates give byte-identical payloads to the layouts before
templates existed (golden files written by the code before the change), custom templates render as their own
golden files, and a bad template is a config error naming the sink and the field.

``AIRIS_WRITE_GOLDEN=1`` rewrites the golden files (only when a layout is meant to change).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from sinks.pagerduty import PagerDutyConfig
from sinks.pagerduty.encoder import PagerDutyEncoder
from sinks.slack import SlackConfig, SlackEncoder
from sinks.teams import TeamsConfig, TeamsEncoder
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate

GOLDEN = Path(__file__).parent / "files"
DASHBOARD = "https://grafana.example/d/x?var-model={model_id}&from={starts_at_ms}&to={timestamp_ms}"
_EPISODE = evaluate(threshold_rule(severity="critical", repeat_interval="2m"), GROUP, series(11, 11, 11, 11, 1))[0]
ALERTS = {a.notification: a for a in _EPISODE}  # trigger, repeat, resolve
CUSTOM = {
    "slack": {
        "header": "{{ severity | upper }} {{ name }} on {{ model_id }}",
        "text": "{{ notification }}: {{ name }} {{ format_value(current_value) }} > {{ format_value(threshold) }}",
        "body": "*{{ name }}* _since_ {{ format_utc(starts_at_ms) }} ({{ format_duration(duration_s) }}) "
        "{{ labels | dictsort | map('join', '=') | join(', ') }} <b>&",
    },
    "teams": {
        "title": "{{ name }} · {{ notification }}",
        "text": "{{ owner }} / {{ changed }} / {{ group.model_name }}",
    },
    "pagerduty": {"summary": "[{{ severity }}] {{ rule }}: {{ metric }} = {{ format_value(current_value) }}"},
}


def _slack(monkeypatch, **fields) -> SlackConfig:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/SECRET")
    return SlackConfig.model_validate({"name": "ml-alerts", "webhook_url": {"env": "SLACK_WEBHOOK_URL"},
                                       "dashboard_url": DASHBOARD, **fields})  # fmt: skip


def _pagerduty(monkeypatch, **fields) -> PagerDutyConfig:
    monkeypatch.setenv("PD_KEY", "0123456789abcdef0123456789abcdef")
    return PagerDutyConfig.model_validate({"name": "pd", "routing_key": {"env": "PD_KEY"}, "dashboard_url": DASHBOARD,
                                           **fields})  # fmt: skip


def _teams(monkeypatch, **fields) -> TeamsConfig:
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", "https://example.webhook.office.com/webhookb2/SECRET")
    return TeamsConfig.model_validate({"name": "ml-teams", "webhook_url": {"env": "TEAMS_WEBHOOK_URL"},
                                       "dashboard_url": DASHBOARD, **fields})  # fmt: skip


def _bodies(monkeypatch, sink: str, **fields) -> dict[str, bytes]:
    make = {"slack": lambda: SlackEncoder(_slack(monkeypatch, **fields)),
            "pagerduty": lambda: PagerDutyEncoder(_pagerduty(monkeypatch, **fields)),
            "teams": lambda: TeamsEncoder(_teams(monkeypatch, **fields))}  # fmt: skip
    encoder = make[sink]()
    return {kind: encoder.encode([alert])[0][0].body for kind, alert in ALERTS.items()}


def _check(name: str, body: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("AIRIS_WRITE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(body)
    assert body == path.read_bytes(), name


def test_the_scenario_has_every_notification_kind():
    assert sorted(ALERTS) == ["repeat", "resolve", "trigger"]


@pytest.mark.parametrize("sink", ["slack", "pagerduty", "teams"])
def test_default_templates_give_todays_payloads_byte_for_byte(monkeypatch, sink):
    for kind, body in _bodies(monkeypatch, sink).items():
        _check(f"{sink}-default-{kind}.json", body)


@pytest.mark.parametrize("sink", ["slack", "pagerduty", "teams"])
def test_custom_templates_render_with_the_sink_s_escaping_and_limits(monkeypatch, sink):
    for kind, body in _bodies(monkeypatch, sink, templates=CUSTOM[sink]).items():
        _check(f"{sink}-custom-{kind}.json", body)
    if sink == "slack":
        message = json.loads(_bodies(monkeypatch, sink, templates=CUSTOM[sink])["trigger"])
        assert message["blocks"][0]["text"]["text"] == "CRITICAL latency on fraud"
        assert message["blocks"][2]["text"]["text"].endswith("&lt;b&gt;&amp;")  # Slack mrkdwn escaping applied


@pytest.mark.parametrize(
    "source, problem",
    [
        ("{{ name", "TemplateSyntaxError"),
        ("{{ no_such_field }}", "UndefinedError"),
        ("{{ labels.no_such_label }}", "UndefinedError"),
        ("{{ ''.__class__.__mro__ }}", "SecurityError"),
        ("{{ ''.__class__ }}", "SecurityError"),
        ("{{ format_value.__globals__ }}", "SecurityError"),
    ],
)
def test_a_bad_template_is_a_config_error_naming_the_sink_and_field(monkeypatch, tmp_path, source, problem):
    with pytest.raises(ValidationError) as raised:
        _slack(monkeypatch, templates={"body": source})
    assert "templates.body" in str(raised.value) and problem in str(raised.value)
    from airis_mon.config import load_config
    from airis_mon.errors import ConfigError

    (tmp_path / "config.yaml").write_text(json.dumps({"sinks": [{"name": "pager", "type": "pagerduty",
        "routing_key": {"env": "PD_KEY"}, "templates": {"summary": source}}]}))  # fmt: skip
    with pytest.raises(ConfigError) as loaded:
        load_config(tmp_path / "config.yaml")
    assert "pager" in str(loaded.value) and "templates.summary" in str(loaded.value)


def test_an_unknown_template_key_is_refused(monkeypatch):
    with pytest.raises(ValidationError, match="subject"):
        _pagerduty(monkeypatch, templates={"subject": "x"})
