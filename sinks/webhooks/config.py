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
        allow_private_addresses: false  # true: allow every address (loopback, private, link-local, metadata)
        allowed_networks: []            # CIDRs allowed although not public, e.g. [127.0.0.0/8] for tests
        allow_http: true                # false: https:// only
        delivery:
          retry: {max_attempts: 5, initial_backoff_s: 0.5, max_backoff_s: 30, max_total_s: 120}
          timeout_s: 15

Events: ``alert.triggered``, ``alert.repeated``, ``alert.resolved`` (the
alert's ``notification`` trigger / repeat / resolve) and ``*`` (all).

URL checks (:mod:`sinks.webhooks.destination`): at config load, without DNS,
``http`` or ``https`` only (``https`` only with ``allow_http: false``); a host
that is an IP literal (in any form a resolver accepts, such as ``2130706433``
or ``0x7f.1``, or IPv6), a loopback name (``localhost``, ``*.localhost``) or a
cloud metadata name (``metadata.google.internal``) is refused when it is
loopback, private, link-local, reserved, multicast, unspecified, shared
(CGNAT) or otherwise not globally routable. At every delivery the host is
resolved, every address it resolves to is checked the same way, and the
connection goes to the checked address (no DNS rebinding); a refused
destination is a dead letter, never retried. ``allowed_networks`` (CIDRs,
e.g. ``[10.20.0.0/16]``) opens networks; ``allow_private_addresses: true``
opens every address. Pinned deliveries connect directly, never through
``HTTP(S)_PROXY``.

Every delivery is signed with a timestamp taken when the request is built;
retries resend the same bytes. Receivers following the specification reject
timestamps older than about 5 minutes, so ``delivery.timeout_s`` +
``delivery.retry.max_total_s`` must stay within 300 s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from airis_mon.models import ComponentConfig, ConfigPath, StrictModel
from airis_mon.secrets import Secret
from sinks.delivery.config import DeliveryConfig
from sinks.webhooks.destination import (
    FORBIDDEN_HEADERS,
    DestinationPolicy,
    check_registration,
    header_problems,
    url_problem,
)
from sinks.webhooks.signing import secret_key

__all__ = ["EVENT_TYPES", "NOTIFICATION_EVENTS", "WebhookEndpoint", "WebhooksConfig", "check_url"]

#: Alert ``notification`` -> webhook event type.
NOTIFICATION_EVENTS = {"trigger": "alert.triggered", "repeat": "alert.repeated", "resolve": "alert.resolved"}
#: Every event an endpoint may subscribe to.
EVENT_TYPES = (*NOTIFICATION_EVENTS.values(), "*")
#: Headers config and registrations may not set (case-insensitive), besides every ``webhook-*`` header.
RESERVED_HEADERS = FORBIDDEN_HEADERS
#: Standard Webhooks receivers' usual timestamp tolerance, s.
SIGNATURE_TOLERANCE_S = 300.0
_OPEN_HINT = "set allow_private_addresses: true (or add its network to allowed_networks) to send to it"


def check_url(url: str, allow_private_addresses: bool = False, policy: DestinationPolicy | None = None) -> None:
    """``ValueError`` when ``url`` is not an acceptable webhook destination, judged without DNS (see the
    module docstring). ``policy`` (default: public addresses only, or every address with
    ``allow_private_addresses``) is the one of :mod:`sinks.webhooks.destination`.

    Messages never show the URL (its path or query may carry tokens).
    """
    if policy is None:
        policy = DestinationPolicy.allow_all() if allow_private_addresses else DestinationPolicy()
    form = url_problem(url, DestinationPolicy.allow_all(allow_http=policy.allow_http))
    if form:
        raise ValueError(form)
    refused = url_problem(url, policy)
    if refused:
        raise ValueError(f"{refused}; {_OPEN_HINT}")


def _policy(allow_private_addresses: bool, allowed_networks, allow_http: bool) -> DestinationPolicy:
    if allow_private_addresses:
        return DestinationPolicy.allow_all(allow_http=allow_http)
    return DestinationPolicy(allowed_networks=tuple(allowed_networks), allow_http=allow_http)


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
        problems = header_problems(headers)  # the registration rules; messages never show a value
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
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
        default=False,
        description="allow every address (loopback, private, link-local, metadata) at config load and delivery",
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description='CIDRs endpoints may resolve to although not public, e.g. ["127.0.0.0/8"]; default none',
    )
    allow_http: bool = Field(default=True, description="accept http:// endpoint URLs (false: https:// only)")
    endpoints: list[WebhookEndpoint] = Field(default_factory=list)
    registrations: ConfigPath | None = Field(
        default=None,
        description="the gateway's SPOOL/config/webhooks.json: endpoints registered through the HTTP API",
    )
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)

    def destination_policy(self) -> DestinationPolicy:
        """Where this sink's webhooks may go (checked at config load, registration and every delivery)."""
        return _policy(self.allow_private_addresses, self.allowed_networks, self.allow_http)

    def all_endpoints(self) -> list[WebhookEndpoint]:
        """The configured endpoints plus, read now, those registered through the gateway API.

        A registration that breaks the URL or header rules (:func:`check_registration`)
        or reuses a configured name is skipped (the API validated it; the rules may
        have changed since).
        """
        endpoints = list(self.endpoints)
        if not self.registrations or not Path(self.registrations).exists():
            return endpoints
        names = {e.name for e in endpoints}
        policy = self.destination_policy()
        for name, entry in sorted(json.loads(Path(self.registrations).read_text()).items()):
            if name in names:
                continue
            try:
                endpoint = WebhookEndpoint.model_validate({**entry, "secret": SecretStr(entry["secret"])})
            except (ValueError, KeyError, TypeError):
                continue
            if check_registration(endpoint.url, endpoint.headers, policy):
                continue
            endpoints.append(endpoint)
        return endpoints

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, endpoints: list[WebhookEndpoint], info: ValidationInfo) -> list[WebhookEndpoint]:
        data = info.data  # the fields declared above, when they validated
        policy = _policy(data.get("allow_private_addresses", False), data.get("allowed_networks", ()),
                         data.get("allow_http", True))  # fmt: skip
        names: set[str] = set()
        for index, endpoint in enumerate(endpoints):
            if endpoint.name in names:
                raise ValueError(f"endpoints[{index}].name: {endpoint.name} is used twice")
            names.add(endpoint.name)
            try:
                check_url(endpoint.url, policy=policy)
            except ValueError as error:
                raise ValueError(f"endpoints[{index}].url ({endpoint.name}): {error}") from None
        return endpoints

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        DestinationPolicy(allowed_networks=tuple(networks))  # ValueError naming the bad CIDR
        return networks

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
