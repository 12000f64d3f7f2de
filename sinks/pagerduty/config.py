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

``dashboard_url`` is a Python ``str.format`` template rendered per alert and
sent as the event's ``links``. Fields: ``alert_id, rule, metric, model_id,
environment, source, severity, alert_type`` and ``labels`` (dict; a missing
label renders empty). Every value is percent-encoded (``urllib.parse.quote``,
nothing safe) before it is inserted, so it is safe in a path or a query. The
template is test-rendered at load time: a typo is a config error.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator

from airis_mon.models import ComponentConfig
from airis_mon.secrets import Secret
from sinks.delivery import DeliveryConfig

__all__ = ["DASHBOARD_FIELDS", "DEFAULT_URL", "PagerDutyConfig", "render_dashboard_url"]

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"

#: The fields a ``dashboard_url`` template may use (``labels`` is a dict).
DASHBOARD_FIELDS = ("alert_id", "rule", "metric", "model_id", "environment", "source", "severity", "alert_type")


def render_dashboard_url(template: str, values: dict[str, str], labels: dict[str, str]) -> str:
    """Render a ``dashboard_url`` template with every value percent-encoded."""
    quoted = {key: quote(str(value), safe="") for key, value in values.items()}
    quoted_labels = defaultdict(str, {key: quote(str(value), safe="") for key, value in labels.items()})
    return template.format_map({**quoted, "labels": quoted_labels})


def _check_dashboard_url(template: str) -> str:
    sample = {name: "x" for name in DASHBOARD_FIELDS}
    try:
        rendered = render_dashboard_url(template, sample, {})
    except KeyError as error:
        raise ValueError(f"unknown dashboard_url field {error}; use {', '.join(DASHBOARD_FIELDS)}, labels") from None
    except (ValueError, IndexError, AttributeError, TypeError) as error:
        raise ValueError(f"invalid dashboard_url template: {error}") from None
    if not rendered.startswith(("https://", "http://")):
        raise ValueError("dashboard_url must start with https:// or http://")
    return template


class PagerDutyConfig(ComponentConfig):
    """Where and how alerts are sent to PagerDuty."""

    type: Literal["pagerduty"] = "pagerduty"
    routing_key: Secret = Field(description="Events API v2 integration key of the service (32 characters)")
    url: str = Field(default=DEFAULT_URL, pattern=r"^https?://", description="Events API v2 enqueue endpoint")
    dashboard_url: str | None = Field(default=None, description="str.format template of a link sent with triggers")
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)

    @field_validator("routing_key")
    @classmethod
    def _routing_key_not_empty(cls, key: SecretStr) -> SecretStr:
        if not key.get_secret_value().strip():
            raise ValueError("routing_key is empty")
        return key

    @field_validator("dashboard_url")
    @classmethod
    def _dashboard_url_renders(cls, template: str | None) -> str | None:
        return None if template is None else _check_dashboard_url(template)
