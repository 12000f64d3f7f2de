"""``WriteToSlack``: alerts -> Slack incoming webhook, through the shared delivery layer.

::

    outputs = alerts | "Slack" >> WriteToSlack(SlackConfig.model_validate(sink_config))
    outputs["delivered"]      # (sink, alert id, notification, HTTP status, attempts)
    outputs["dead_letters"]   # DeadLetter rows: reason, attempts, the original alert

Retries (429 with ``Retry-After``, 5xx), the rate limit (1 message/s by
default), counters and dead letters are the delivery layer's
(:class:`sinks.delivery.DeliverAlerts`); this sink only encodes.
"""

from __future__ import annotations

import apache_beam as beam

from sinks.delivery import DeliverAlerts
from sinks.slack.config import SlackConfig
from sinks.slack.encoder import SlackEncoder

__all__ = ["WriteToSlack"]


class WriteToSlack(beam.PTransform):
    """Alerts -> ``{"delivered": ..., "dead_letters": ...}``."""

    def __init__(self, config: SlackConfig):
        super().__init__()
        self._config = config
        self._encoder = SlackEncoder(config)

    def expand(self, alerts):
        return alerts | "DeliverToSlack" >> DeliverAlerts(self._config.name, self._encoder, self._config.delivery)
