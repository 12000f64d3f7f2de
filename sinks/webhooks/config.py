"""Config of the ``webhooks`` sink: signed outbound webhooks (Standard Webhooks).

::

    sinks:
      - name: hooks
        type: webhooks
        endpoints:
          - name: incident-bot
            url: https://hooks.example.com/airis
            events: [alert.triggered, alert.resolved]   # or ["*"]
            headers: {X-Team: ml-platform}              # added to every delivery
            secret: {env: INCIDENT_BOT_WEBHOOK_SECRET}  # "whsec_<base64>" or any string
          - name: audit
            url: https://audit.example.com/in
            events: ["*"]
            secret: {file: /run/secrets/audit_webhook}
        allow_private_addresses: false  # true: allow loopback / private / link-local IP literals and localhost
        delivery:
          retry: {max_attempts: 5, initial_backoff_s: 0.5, max_backoff_s: 30, max_total_s: 120}
          timeout_s: 15

Events: ``alert.triggered``, ``alert.repeated``, ``alert.resolved`` (the
alert's ``notification`` trigger / repeat / resolve) and ``*`` (all).

URL checks (at config load): ``http`` or ``https`` only. A host that is an IP
literal (IPv4 in any form a resolver accepts, such as ``2130706433`` or
``0x7f.1``, or IPv6) or ``localhost`` (and ``*.localhost``) is refused when it
is loopback, private, link-local, reserved, multicast, unspecified or
otherwise not globally routable, unless ``allow_private_addresses: true``.
Host *names* are accepted as written: they are not resolved here, so there is
no protection against a name that resolves (or is re-bound by DNS, "DNS
rebinding") to an internal address. Where that matters, send webhooks through
an egress proxy that filters internal addresses, as the Standard Webhooks
specification recommends against SSRF.

Every delivery is signed with a timestamp taken when the request is built;
retries resend the same bytes. Receivers following the specification reject
timestamps older than about 5 minutes, so ``delivery.timeout_s`` +
``delivery.retry.max_total_s`` must stay within 300 s.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from airis_mon.models import ComponentConfig, ConfigPath, StrictModel
from airis_mon.secrets import Secret
from sinks.delivery.config import DeliveryConfig
from sinks.webhooks.signing import secret_key

__all__ = ["EVENT_TYPES", "NOTIFICATION_EVENTS", "WebhookEndpoint", "WebhooksConfig", "check_url"]

#: Alert ``notification`` -> webhook event type.
NOTIFICATION_EVENTS = {"trigger": "alert.triggered", "repeat": "alert.repeated", "resolve": "alert.resolved"}
#: Every event an endpoint may subscribe to.
EVENT_TYPES = (*NOTIFICATION_EVENTS.values(), "*")
#: Headers the sink sets itself; config headers may not set them (case-insensitive).
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding"})
#: Standard Webhooks receivers' usual timestamp tolerance, s.
SIGNATURE_TOLERANCE_S = 300.0

_REFUSED_KINDS = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110 token)
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host stands for when it is an IP literal, in any form a resolver accepts."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):  # 127.1, 2130706433, 0x7f.0.0.1, 0177.0.0.1 all reach 127.0.0.1
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def _private_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is not a public destination, or None if it is one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for attribute, phrase in _REFUSED_KINDS:
        if getattr(address, attribute):
            return phrase
    if not address.is_global:
        return "an address that is not globally routable"
    return None


def check_url(url: str, allow_private_addresses: bool = False) -> None:
    """``ValueError`` when ``url`` is not an acceptable webhook destination (see the module docstring).

    Messages name the host at most, never the path or query (they may carry tokens).
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("has no host")
    if allow_private_addresses:
        return
    if host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
        raise ValueError(f"host {host} is a loopback name; set allow_private_addresses: true to send to it")
    address = _ip_literal(host)
    kind = _private_kind(address) if address is not None else None
    if kind:
        raise ValueError(f"host {host} is {kind}; set allow_private_addresses: true to send to it")


class WebhookEndpoint(StrictModel):
    """One receiver: where, which events, extra headers, and its signing secret."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(min_length=1, description="http(s) URL the alerts are POSTed to")
    events: list[str] = Field(min_length=1, description="alert.triggered | alert.repeated | alert.resolved | *")
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers of every delivery")
    secret: Secret = Field(description='signing secret: "whsec_<base64>" (decoded) or any string (UTF-8 bytes)')

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        unknown = [event for event in events if event not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}")
        return events

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name, value in headers.items():
            lower = name.lower()
            if not _TOKEN.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if lower.startswith("webhook-") or lower in RESERVED_HEADERS:
                raise ValueError(f"header {name} is set by the sink and cannot be configured")
            if lower in seen:
                raise ValueError(f"header {name} is given twice")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {name}: the value may not contain CR, LF or NUL")
            seen.add(lower)
        return headers

    @field_validator("secret")
    @classmethod
    def _usable_secret(cls, secret):
        secret_key(secret.get_secret_value())  # raises ValueError without the value
        return secret

    def subscribes_to(self, event: str) -> bool:
        return "*" in self.events or event in self.events


class WebhooksConfig(ComponentConfig):
    """Signed outbound webhooks to one or more endpoints."""

    type: Literal["webhooks"] = "webhooks"
    allow_private_addresses: bool = Field(
        default=False, description="allow loopback/private/link-local IP literals and localhost in endpoint URLs"
    )
    endpoints: list[WebhookEndpoint] = Field(default_factory=list)
    registrations: ConfigPath | None = Field(
        default=None,
        description="the gateway's SPOOL/config/webhooks.json: endpoints registered through the HTTP API",
    )
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)

    def all_endpoints(self) -> list[WebhookEndpoint]:
        """The configured endpoints plus, read now, those registered through the gateway API.

        A registration that breaks the URL rules or reuses a configured name is
        skipped (the API validated it; the rules may have changed since).
        """
        endpoints = list(self.endpoints)
        if not self.registrations or not Path(self.registrations).exists():
            return endpoints
        names = {e.name for e in endpoints}
        for name, entry in sorted(json.loads(Path(self.registrations).read_text()).items()):
            if name in names:
                continue
            try:
                endpoint = WebhookEndpoint.model_validate({**entry, "secret": SecretStr(entry["secret"])})
                check_url(endpoint.url, self.allow_private_addresses)
            except (ValueError, KeyError, TypeError):
                continue
            endpoints.append(endpoint)
        return endpoints

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, endpoints: list[WebhookEndpoint], info: ValidationInfo) -> list[WebhookEndpoint]:
        allow_private = bool(info.data.get("allow_private_addresses", False))
        names: set[str] = set()
        for index, endpoint in enumerate(endpoints):
            if endpoint.name in names:
                raise ValueError(f"endpoints[{index}].name: {endpoint.name} is used twice")
            names.add(endpoint.name)
            try:
                check_url(endpoint.url, allow_private)
            except ValueError as error:
                raise ValueError(f"endpoints[{index}].url ({endpoint.name}): {error}") from None
        return endpoints

    @model_validator(mode="after")
    def _somewhere_to_send(self) -> WebhooksConfig:
        if not self.endpoints and not self.registrations:
            raise ValueError("give endpoints, registrations (the gateway's webhooks.json), or both")
        return self

    @model_validator(mode="after")
    def _retries_within_signature_tolerance(self) -> WebhooksConfig:
        budget = self.delivery.retry.max_total_s + self.delivery.timeout_s
        if budget > SIGNATURE_TOLERANCE_S:
            raise ValueError(
                f"delivery.retry.max_total_s + delivery.timeout_s is {budget:g} s; retries resend the signature "
                f"made at the first attempt, which receivers reject after {SIGNATURE_TOLERANCE_S:g} s"
            )
        return self
