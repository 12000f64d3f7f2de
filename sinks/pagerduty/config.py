"""Config of the ``pagerduty`` sink (PagerDuty Events API v2).

::

    sinks:
      - name: pager
        type: pagerduty
        routing_key: {env: PAGERDUTY_ROUTING_KEY}    # the service integration key (32 characters)
        url: https://events.pagerduty.com/v2/enqueue  # the default; EU accounts: events.eu.pagerduty.com
        dashboard_url: "https://grafana.example.com/d/models?var-model={model_id}&var-env={environment}"
        delivery:
          retry: {max_attempts: 5, initial_backoff_s: 0.5, max_backoff_s: 30, max_total_s: 120}
          timeout_s: 10          # per request, s
          rate_limit_per_s: 2    # requests per second

``dashboard_url`` is a link template (:mod:`sinks.delivery.links`) rendered
per alert and sent as the event's ``links``. ``templates: {summary: "..."}``
(optional, :mod:`sinks.delivery.templates`) replaces the triggers' summary;
the default is :data:`DEFAULT_TEMPLATES`, the built-in text.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from airis_mon.models import ComponentConfig, StrictModel
from airis_mon.secrets import Secret
from sinks.delivery import DeliveryConfig
from sinks.delivery.links import check_link_template
from sinks.delivery.templates import check_template

__all__ = ["DEFAULT_TEMPLATES", "DEFAULT_URL", "PagerDutyConfig", "PagerDutyTemplates"]

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"

#: The built-in layout as templates (the defaults of ``templates:``); the summary is cut to 1,024 characters.
DEFAULT_TEMPLATES = {"summary": "{{ summary or name }}{% if changed %} | {{ changed }}{% endif %}"}


class PagerDutyTemplates(StrictModel):
    """Jinja2 templates of a PagerDuty event's text (:mod:`sinks.delivery.templates`)."""

    summary: str = Field(default=DEFAULT_TEMPLATES["summary"], description="payload.summary of triggers")

    @field_validator("summary")
    @classmethod
    def _renders(cls, source: str) -> str:
        return check_template(source, "templates.summary")


class PagerDutyConfig(ComponentConfig):
    """Where and how alerts are sent to PagerDuty."""

    type: Literal["pagerduty"] = "pagerduty"
    routing_key: Secret = Field(description="Events API v2 integration key of the service (32 characters)")
    url: str = Field(default=DEFAULT_URL, pattern=r"^https?://", description="Events API v2 enqueue endpoint")
    dashboard_url: str | None = Field(default=None, description="str.format template of a link sent with triggers")
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    templates: PagerDutyTemplates = Field(default_factory=PagerDutyTemplates, description="text of the events")

    @field_validator("routing_key")
    @classmethod
    def _routing_key_not_empty(cls, key: SecretStr) -> SecretStr:
        if not key.get_secret_value().strip():
            raise ValueError("routing_key is empty")
        return key

    @field_validator("dashboard_url")
    @classmethod
    def _dashboard_url_renders(cls, template: str | None) -> str | None:
        return None if template is None else check_link_template(template, "dashboard_url")
