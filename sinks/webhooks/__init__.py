"""Outbound webhooks signed the Standard Webhooks way, fanned out to subscribed endpoints.

Names are imported on first use (PEP 562), so that ``import sinks.webhooks.destination``
(the SSRF rules the gateway applies at registration) does not import Apache Beam.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sinks.webhooks.config import EVENT_TYPES, WebhookEndpoint, WebhooksConfig, check_url
    from sinks.webhooks.destination import DestinationPolicy, check_registration, redact_headers
    from sinks.webhooks.encoder import WebhooksEncoder, payload
    from sinks.webhooks.signing import secret_key, sign
    from sinks.webhooks.transform import WriteToWebhooks

_MODULES = {
    "EVENT_TYPES": "config",
    "WebhookEndpoint": "config",
    "WebhooksConfig": "config",
    "check_url": "config",
    "DestinationPolicy": "destination",
    "check_registration": "destination",
    "redact_headers": "destination",
    "WebhooksEncoder": "encoder",
    "payload": "encoder",
    "secret_key": "signing",
    "sign": "signing",
    "WriteToWebhooks": "transform",
}

__all__ = [
    "EVENT_TYPES",
    "DestinationPolicy",
    "WebhookEndpoint",
    "WebhooksConfig",
    "WebhooksEncoder",
    "WriteToWebhooks",
    "check_registration",
    "check_url",
    "payload",
    "redact_headers",
    "secret_key",
    "sign",
]


def __getattr__(name: str) -> Any:
    """``sinks.webhooks.NAME`` imported from its module on first use."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})
