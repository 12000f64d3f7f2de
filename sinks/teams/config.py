"""Config of the ``teams`` sink (Microsoft Teams webhook, Adaptive Card messages).

::

    sinks:
      - name: ml-alerts-teams
        type: teams
        webhook_url: {env: TEAMS_WEBHOOK_URL}   # a Workflows "When a Teams webhook request is received" URL
        dashboard_url: "https://grafana.example/d/x?var-model={model_id}"   # optional
        max_message_bytes: 28000                 # the default: Teams rejects messages over 28 KB
        delivery:
          retry: {max_attempts: 5, initial_backoff_s: 0.5, max_backoff_s: 30, max_total_s: 120}
          timeout_s: 10          # per request, s
          rate_limit_per_s: 2    # the default: Teams throttles past 4 a second and 60 per 30 s

``webhook_url`` is a secret (the URL is the credential); it must resolve to an
absolute http(s) URL. ``dashboard_url`` is a link template (fields in
:mod:`sinks.delivery.links`). ``max_message_bytes`` is the size, in bytes of
the UTF-8 JSON body, that every message is cut to fit; Microsoft documents
"28 KB", read here as 28,000 bytes, the stricter reading.
``delivery.rate_limit_per_s`` defaults to 2 unless set (``null``: no limit).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from airis_mon.models import ComponentConfig, StrictModel
from airis_mon.secrets import Secret
from sinks.delivery import DeliveryConfig
from sinks.delivery.links import check_http_url, check_link_template
from sinks.delivery.templates import check_template

__all__ = ["DEFAULT_RATE_LIMIT_PER_S", "DEFAULT_TEMPLATES", "MAX_MESSAGE_BYTES", "TeamsConfig", "TeamsTemplates"]

#: The built-in layout as templates (the defaults of ``templates:``, :mod:`sinks.delivery.templates`): the
#: card's ``title`` (cut to the short-text limit) and ``text`` (the description block, cut to fit the message).
DEFAULT_TEMPLATES = {
    "title": '{% if notification == "resolve" %}Resolved: {{ name }}{% else %}[{{ severity | upper }}] {{ name }}'
    '{% if notification == "repeat" %} (still firing){% endif %}{% endif %}',
    "text": "{{ description or summary }}",
}


class TeamsTemplates(StrictModel):
    """Jinja2 templates of a Teams card's text parts."""

    title: str = Field(default=DEFAULT_TEMPLATES["title"], description="the card's title")
    text: str = Field(default=DEFAULT_TEMPLATES["text"], description="the description block; empty: none")

    @field_validator("title", "text")
    @classmethod
    def _renders(cls, source: str, info: ValidationInfo) -> str:
        return check_template(source, f"templates.{info.field_name}")


#: Microsoft Learn, "Create incoming webhooks": "The message size limit is 28 KB".
MAX_MESSAGE_BYTES = 28_000
#: Teams throttles a webhook past 4 requests a second and 60 per 30 seconds.
DEFAULT_RATE_LIMIT_PER_S = 2.0


class TeamsConfig(ComponentConfig):
    """Where and how alerts are posted to a Microsoft Teams channel."""

    type: Literal["teams"] = "teams"
    webhook_url: Secret = Field(description="webhook URL (a secret: {env: VAR} or {file: PATH})")
    dashboard_url: str | None = Field(default=None, description="link template of the View Dashboard action")
    max_message_bytes: int = Field(
        default=MAX_MESSAGE_BYTES, ge=16_000, le=28_672, description="cut every message to this many bytes"
    )
    delivery: DeliveryConfig = Field(default_factory=lambda: DeliveryConfig(rate_limit_per_s=DEFAULT_RATE_LIMIT_PER_S))
    templates: TeamsTemplates = Field(default_factory=TeamsTemplates, description="text of the cards")

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_http(cls, url: SecretStr) -> SecretStr:
        return SecretStr(check_http_url(url.get_secret_value(), "webhook_url"))

    @field_validator("dashboard_url")
    @classmethod
    def _template_renders(cls, template: str | None) -> str | None:
        return None if template is None else check_link_template(template, "dashboard_url")

    @field_validator("delivery", mode="before")
    @classmethod
    def _teams_rate_limit(cls, value: Any) -> Any:
        if isinstance(value, dict) and "rate_limit_per_s" not in value:
            return {**value, "rate_limit_per_s": DEFAULT_RATE_LIMIT_PER_S}
        return value
