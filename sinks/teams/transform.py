"""``WriteToTeams``: alerts -> Microsoft Teams webhook, through the shared delivery layer.

::

    outputs = alerts | "Teams" >> WriteToTeams(TeamsConfig.model_validate(sink_config))
    outputs["delivered"]      # (sink, alert id, notification, HTTP status, attempts)
    outputs["dead_letters"]   # DeadLetter rows: reason, attempts, the original alert

Retries, the rate limit (2 messages/s by default), counters and dead letters
are the delivery layer's (:class:`sinks.delivery.DeliverAlerts`); this sink
only encodes.
"""

from __future__ import annotations

import apache_beam as beam

from sinks.delivery import DeliverAlerts
from sinks.teams.config import TeamsConfig
from sinks.teams.encoder import TeamsEncoder

__all__ = ["WriteToTeams"]


class WriteToTeams(beam.PTransform):
    """Alerts -> ``{"delivered": ..., "dead_letters": ...}``."""

    def __init__(self, config: TeamsConfig):
        super().__init__()
        self._config = config
        self._encoder = TeamsEncoder(config)

    def expand(self, alerts):
        return alerts | "DeliverToTeams" >> DeliverAlerts(self._config.name, self._encoder, self._config.delivery)
