"""Config of the ``siem`` sink: signed JSON over HTTP, or Splunk HEC.

Generic HTTP collector (one signed event per request, see :mod:`sinks.siem.encoder`)::

    sinks:
      - name: soc
        type: siem
        mode: http                                  # the default
        url: https://siem.example.com/ingest/airis  # the full endpoint URL
        token: {env: SIEM_TOKEN}                    # sent as Authorization: Bearer <token>
        signing_secret: {env: SIEM_SIGNING_SECRET}  # HMAC-SHA256 key of X-Signature
        delivery: {retry: {max_attempts: 5}, timeout_s: 10}

Splunk HTTP Event Collector (several events per request)::

    sinks:
      - name: splunk
        type: siem
        mode: splunk_hec
        url: https://splunk.example.com:8088        # events go to <url>/services/collector/event
        token: {env: SPLUNK_HEC_TOKEN}              # sent as Authorization: Splunk <token>
        sourcetype: "airis:alert"                   # the default
        index: ai_security                          # optional; default: the token's default index
        batch_size: 50                              # events per request (default 50)
        delivery: {retry: {max_attempts: 5}, timeout_s: 10}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from airis_mon.models import ComponentConfig
from airis_mon.secrets import Secret
from sinks.delivery import DeliveryConfig

__all__ = ["HEC_EVENT_PATH", "SiemConfig"]

HEC_EVENT_PATH = "/services/collector/event"


class SiemConfig(ComponentConfig):
    """Where and how enriched security events are sent."""

    type: Literal["siem"] = "siem"
    mode: Literal["http", "splunk_hec"] = Field(default="http", description="generic signed HTTP, or Splunk HEC")
    url: str = Field(pattern=r"^https?://", description="http: the endpoint; splunk_hec: the HEC base URL")
    token: Secret = Field(description="http: Bearer token; splunk_hec: HEC token")
    signing_secret: Secret | None = Field(default=None, description="http only (required): HMAC-SHA256 key")
    sourcetype: str = Field(default="airis:alert", min_length=1, description="splunk_hec: sourcetype of events")
    index: str | None = Field(default=None, min_length=1, description="splunk_hec: index; None: the token's default")
    host: str = Field(default="airis-mon", min_length=1, description="splunk_hec: host of events")
    batch_size: int = Field(default=50, ge=1, le=1000, description="splunk_hec: events per request")
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)

    @field_validator("token", "signing_secret")
    @classmethod
    def _not_empty(cls, secret: SecretStr | None, info) -> SecretStr | None:
        if secret is not None and not secret.get_secret_value().strip():
            raise ValueError(f"{info.field_name} is empty")
        return secret

    @model_validator(mode="after")
    def _mode_fields(self) -> SiemConfig:
        if self.mode == "http" and self.signing_secret is None:
            raise ValueError("mode http needs signing_secret (the HMAC key of X-Signature)")
        if self.mode == "splunk_hec" and self.signing_secret is not None:
            raise ValueError("signing_secret applies to mode http only; Splunk HEC does not verify signatures")
        return self

    def endpoint(self) -> str:
        """The URL events are POSTed to."""
        if self.mode == "http":
            return self.url
        base = self.url.rstrip("/")
        return base if base.endswith(HEC_EVENT_PATH) else base + HEC_EVENT_PATH
