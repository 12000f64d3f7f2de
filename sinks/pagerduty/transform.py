"""``WriteToPagerDuty``: routed alerts -> PagerDuty Events API v2.

Delivery (retries on 429 and 5xx with backoff, 400 never retried, dead
letters, counters ``sink:NAME``) is the shared :mod:`sinks.delivery` layer;
this module only wires :class:`~sinks.pagerduty.encoder.PagerDutyEncoder` to it.
"""

from __future__ import annotations

import apache_beam as beam

from sinks.delivery import DeliverAlerts
from sinks.pagerduty.config import PagerDutyConfig
from sinks.pagerduty.encoder import PagerDutyEncoder

__all__ = ["WriteToPagerDuty"]


class WriteToPagerDuty(beam.PTransform):
    """Alerts -> ``{"delivered": (sink, alert id, notification, status, attempts), "dead_letters": DeadLetter}``."""

    def __init__(self, config: PagerDutyConfig):
        super().__init__()
        self._config = config

    def expand(self, alerts):
        return alerts | DeliverAlerts(self._config.name, PagerDutyEncoder(self._config), self._config.delivery)
