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

``delivery.rate_limit_per_s`` defaults to 1 request a second unless set
(``null`` turns the limit off); the rest of ``delivery`` has the shared defaults.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from airis_mon.models import ComponentConfig
from airis_mon.secrets import Secret
from sinks.delivery import DeliveryConfig
from sinks.delivery.links import check_http_url, check_link_template

__all__ = ["DEFAULT_RATE_LIMIT_PER_S", "SlackConfig"]

#: Slack: "Incoming webhooks ... one message per second", short bursts allowed.
DEFAULT_RATE_LIMIT_PER_S = 1.0


class SlackConfig(ComponentConfig):
    """Where and how alerts are posted to a Slack channel."""

    type: Literal["slack"] = "slack"
    webhook_url: Secret = Field(description="incoming-webhook URL (a secret: {env: VAR} or {file: PATH})")
    dashboard_url: str | None = Field(default=None, description="link template of the View Dashboard button")
    acknowledge_url: str | None = Field(default=None, description="link template of the Acknowledge button")
    delivery: DeliveryConfig = Field(default_factory=lambda: DeliveryConfig(rate_limit_per_s=DEFAULT_RATE_LIMIT_PER_S))

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
