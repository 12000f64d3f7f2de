"""Outbound webhooks signed the Standard Webhooks way, fanned out to subscribed endpoints."""

from sinks.webhooks.config import EVENT_TYPES, WebhookEndpoint, WebhooksConfig, check_url
from sinks.webhooks.encoder import WebhooksEncoder, payload
from sinks.webhooks.signing import secret_key, sign
from sinks.webhooks.transform import WriteToWebhooks

__all__ = [
    "EVENT_TYPES",
    "WebhookEndpoint",
    "WebhooksConfig",
    "WebhooksEncoder",
    "WriteToWebhooks",
    "check_url",
    "payload",
    "secret_key",
    "sign",
]
