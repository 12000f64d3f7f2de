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

import time

import apache_beam as beam

from airis_mon import streams
from airis_mon.schema import Alert
from sinks.delivery.transform import failed_delivery
from sinks.email.config import EmailConfig
from sinks.email.message import build_message
from sinks.email.smtp import SmtpDeliverer

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
        self._deliverer = SmtpDeliverer(self._config)  # no connection yet: one per delivery attempt

    def process(self, alert: Alert):
        result = self._deliverer.deliver(build_message(self._config, alert, time.time()))
        self._retried.inc(result.retries)
        if result.delivered:
            self._sent.inc()
            self._refused.inc(len(result.refused))
            yield (self._config.name, alert.id, alert.notification, result.status, result.attempts)
            return
        self._dead.inc()
        yield beam.pvalue.TaggedOutput(
            streams.DEAD_LETTERS, failed_delivery(self._config.name, alert, result.reason, result.attempts)
        )


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
