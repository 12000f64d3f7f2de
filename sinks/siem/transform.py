"""``WriteToSiem``: routed alerts -> a SIEM (signed HTTP collector or Splunk HEC).

Delivery (retries on 408/429/5xx with backoff, other 4xx permanent, dead
letters, counters ``sink:NAME``) is the shared :mod:`sinks.delivery` layer;
this module only wires :class:`~sinks.siem.encoder.SiemEncoder` to it. In
``splunk_hec`` mode a failed request dead-letters every alert it carried.
"""

from __future__ import annotations

import apache_beam as beam

from sinks.delivery import DeliverAlerts
from sinks.siem.config import SiemConfig
from sinks.siem.encoder import SiemEncoder

__all__ = ["WriteToSiem"]


class WriteToSiem(beam.PTransform):
    """Alerts -> ``{"delivered": (sink, alert id, notification, status, attempts), "dead_letters": DeadLetter}``."""

    def __init__(self, config: SiemConfig):
        super().__init__()
        self._config = config
        self._encoder = SiemEncoder(config)

    def expand(self, alerts):
        return alerts | DeliverAlerts(self._config.name, self._encoder, self._config.delivery)
