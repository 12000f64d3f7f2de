"""``WriteToEmail``: one email per alert notification over SMTP, with dead letters and counters.

::

    outputs = alerts | WriteToEmail(EmailConfig.model_validate(sink_yaml))
    outputs["delivered"]     # (sink, alert id, notification, 250, attempts)
    outputs["dead_letters"]  # DeadLetter(component="sink:NAME", reason="... (attempts: N)", original=alert JSON)

Counters in namespace ``sink:NAME``: ``sent``, ``retried``, ``dead_lettered``
(as :class:`sinks.delivery.DeliverAlerts`), plus ``recipients_refused`` for
messages some recipients refused while others accepted them.
"""

from __future__ import annotations

import apache_beam as beam

from airis_mon import streams
from airis_mon.schema import Alert
from sinks.delivery.transform import delivery_outputs
from sinks.email.config import EmailConfig
from sinks.email.notifier import EmailNotifier

__all__ = ["WriteToEmail"]


class _SendEmail(beam.DoFn):
    def __init__(self, config: EmailConfig):
        self._config = config
        namespace = f"sink:{config.name}"
        self._sent = beam.metrics.Metrics.counter(namespace, "sent")
        self._retried = beam.metrics.Metrics.counter(namespace, "retried")
        self._dead = beam.metrics.Metrics.counter(namespace, "dead_lettered")
        self._refused = beam.metrics.Metrics.counter(namespace, "recipients_refused")

    def setup(self):
        self._notifier = EmailNotifier(self._config)

    def process(self, alert: Alert):
        refused_before = self._notifier.refused
        for outcome in self._notifier.notify([alert]):
            yield from delivery_outputs(self._config.name, outcome, self._sent, self._retried, self._dead)
        self._refused.inc(self._notifier.refused - refused_before)


class WriteToEmail(beam.PTransform):
    """Alerts -> ``{"delivered": (sink, alert id, notification, SMTP code, attempts), "dead_letters": ...}``."""

    def __init__(self, config: EmailConfig):
        super().__init__()
        self._config = config

    def expand(self, alerts):
        outputs = alerts | "SendEmail" >> beam.ParDo(_SendEmail(self._config)).with_outputs(
            streams.DEAD_LETTERS, main="delivered"
        )
        return {"delivered": outputs["delivered"], streams.DEAD_LETTERS: outputs[streams.DEAD_LETTERS]}
