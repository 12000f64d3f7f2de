"""Config of the ``slack`` sink (Slack incoming webhook, Block Kit messages).

::

    sinks:
      - name: ml-alerts
        type: slack
        webhook_url: {env: SLACK_WEBHOOK_URL}   # https://hooks.slack.com/services/T.../B.../...
        dashboard_url: "https://grafana.example/d/x?var-model={model_id}&from={starts_at_ms}&to={timestamp_ms}"
        acknowledge_url: "https://oncall.example/ack?alert={alert_id}"   # optional
        delivery:
          retry: {max_attempts: 5, initial_backoff_s: 0.5, max_backoff_s: 30, max_total_s: 120}
          timeout_s: 10          # per request, s
          rate_limit_per_s: 1    # the default: Slack allows about one message a second per webhook

``webhook_url`` is a secret (the URL is the credential); it must resolve to an
absolute http(s) URL. ``dashboard_url`` and ``acknowledge_url`` are link
templates (fields in :mod:`sinks.delivery.links`). Without ``acknowledge_url``
the Acknowledge button carries only ``action_id`` and ``value`` (the alert
id), for a Slack app with interactivity to handle.

``templates`` (optional; :mod:`sinks.delivery.templates`) replaces the text parts: ``header`` (the header
block, plain text, 150 characters), ``text`` (the notification/fallback text) and ``body`` (the description
section; empty: no section). The defaults are :data:`DEFAULT_TEMPLATES`, the built-in layout.

``delivery.rate_limit_per_s`` defaults to 1 request a second unless set
(``null`` turns the limit off); the rest of ``delivery`` has the shared defaults.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from airis_mon.models import ComponentConfig, StrictModel
from airis_mon.secrets import Secret
from sinks.delivery import DeliveryConfig
from sinks.delivery.links import check_http_url, check_link_template
from sinks.delivery.templates import check_template

__all__ = ["DEFAULT_RATE_LIMIT_PER_S", "DEFAULT_TEMPLATES", "SlackConfig", "SlackTemplates"]

#: Slack: "Incoming webhooks ... one message per second", short bursts allowed.
DEFAULT_RATE_LIMIT_PER_S = 1.0

_EMOJI = (
    '{{ {"critical": ":rotating_light:", "high": ":red_circle:", "error": ":x:", "warning": ":warning:", '
    '"info": ":information_source:"}.get(severity, ":bell:") }}'
)
#: The built-in layout as templates (the defaults of ``templates:``).
DEFAULT_TEMPLATES = {
    "header": '{% if notification == "resolve" %}:white_check_mark: Resolved: {{ name }}{% else %}' + _EMOJI
    + " [{{ severity | upper }}] {{ name }}{% endif %}",
    "text": '{% if notification == "resolve" %}Resolved: {% endif %}[{{ severity | upper }}] {{ name }}: '
    "{{ summary }}{% if changed %} ({{ changed }}){% endif %}",
    "body": "{{ description or summary }}",
}  # fmt: skip


class SlackTemplates(StrictModel):
    """Jinja2 templates of a Slack message's text parts (:mod:`sinks.delivery.templates`)."""

    header: str = Field(default=DEFAULT_TEMPLATES["header"], description="header block (plain text)")
    text: str = Field(default=DEFAULT_TEMPLATES["text"], description="notification / fallback text")
    body: str = Field(default=DEFAULT_TEMPLATES["body"], description="description section (mrkdwn)")

    @field_validator("header", "text", "body")
    @classmethod
    def _renders(cls, source: str, info: ValidationInfo) -> str:
        return check_template(source, f"templates.{info.field_name}")


class SlackConfig(ComponentConfig):
    """Where and how alerts are posted to a Slack channel."""

    type: Literal["slack"] = "slack"
    webhook_url: Secret = Field(description="incoming-webhook URL (a secret: {env: VAR} or {file: PATH})")
    dashboard_url: str | None = Field(default=None, description="link template of the View Dashboard button")
    acknowledge_url: str | None = Field(default=None, description="link template of the Acknowledge button")
    delivery: DeliveryConfig = Field(default_factory=lambda: DeliveryConfig(rate_limit_per_s=DEFAULT_RATE_LIMIT_PER_S))
    templates: SlackTemplates = Field(default_factory=SlackTemplates, description="text of the messages")

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_http(cls, url: SecretStr) -> SecretStr:
        return SecretStr(check_http_url(url.get_secret_value(), "webhook_url"))

    @field_validator("dashboard_url", "acknowledge_url")
    @classmethod
    def _template_renders(cls, template: str | None, info: ValidationInfo) -> str | None:
        return None if template is None else check_link_template(template, info.field_name)

    @field_validator("delivery", mode="before")
    @classmethod
    def _slack_rate_limit(cls, value: Any) -> Any:
        if isinstance(value, dict) and "rate_limit_per_s" not in value:
            return {**value, "rate_limit_per_s": DEFAULT_RATE_LIMIT_PER_S}
        return value
