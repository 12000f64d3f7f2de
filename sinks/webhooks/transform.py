"""``WriteToWebhooks``: alerts -> signed POSTs to every subscribed endpoint.

::

    outputs = alerts | WriteToWebhooks(WebhooksConfig.model_validate(sink_yaml))
    outputs["delivered"]     # (sink, alert id, notification, HTTP status, attempts), one per endpoint delivered
    outputs["dead_letters"]  # DeadLetter per endpoint that refused (4xx but 408/425/429) or stayed down

Retries, backoff, ``Retry-After`` and dead letters come from
:class:`sinks.delivery.DeliverAlerts`; 2xx is success, 410 Gone and other
permanent 4xx go straight to the dead letter, and so does a destination the
delivery-time check refuses (:mod:`sinks.webhooks.destination`: the host
resolves to a loopback, private, link-local or metadata address); the other
endpoints' deliveries still go out.
"""

from __future__ import annotations

import socket

import apache_beam as beam

from sinks.delivery import DeliverAlerts
from sinks.webhooks.config import WebhooksConfig
from sinks.webhooks.destination import Resolver
from sinks.webhooks.encoder import WebhooksEncoder

__all__ = ["WriteToWebhooks"]


class WriteToWebhooks(beam.PTransform):
    """Alerts -> ``{"delivered": ..., "dead_letters": ...}`` (see :class:`DeliverAlerts`).

    ``resolver``: the name lookup at delivery (``socket.getaddrinfo``-compatible; tests inject one).
    """

    def __init__(self, config: WebhooksConfig, resolver: Resolver = socket.getaddrinfo):
        super().__init__()
        self._config = config
        self._encoder = WebhooksEncoder(config, resolver=resolver)

    def expand(self, alerts):
        return alerts | "DeliverWebhooks" >> DeliverAlerts(self._config.name, self._encoder, self._config.delivery)
