"""``DeliverAlerts``: alerts -> HTTP deliveries, with dead letters and counters.

A sink supplies an :class:`Encoder` (alerts in, requests out; batching is the
encoder's choice) and gets retries, rate limiting, idempotency keys, Beam
counters (``sent``, ``retried``, ``dead_lettered`` in namespace
``sink:NAME``) and a dead-letter output whose records keep the sink, the
reason, the attempt count and the original alert. Nothing here raises for a
failed delivery: in streaming, a raised error would retry the bundle forever.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Protocol

import apache_beam as beam

from airis_mon import streams
from airis_mon.beamutil import finish_bundle_output
from airis_mon.schema import Alert, DeadLetter
from sinks.delivery.config import DeliveryConfig
from sinks.delivery.http import HttpRequest
from sinks.delivery.notifier import HttpNotifier, Outcome

__all__ = ["DeliverAlerts", "Encoder", "delivery_outputs", "failed_delivery", "idempotency_key"]


def failed_delivery(sink: str, alert: Alert, reason: str, attempts: int) -> DeadLetter:
    """The dead letter of a notification that could not be delivered: the
    sink, why, how many attempts, and the original alert to replay."""
    return DeadLetter(
        timestamp_ms=alert.timestamp_ms,
        component=f"sink:{sink}",
        reason=f"{reason} (attempts: {attempts})",
        original=json.dumps(alert._asdict(), sort_keys=True, allow_nan=True),
    )


def idempotency_key(sink: str, alert: Alert) -> str:
    """The same for every retry and replay of one notification to one sink."""
    identity = f"{sink}\x1f{alert.id}\x1f{alert.notification}\x1f{alert.timestamp_ms}"
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


class Encoder(Protocol):
    """Turns alerts into requests. ``batch_size`` alerts at most per call."""

    batch_size: int

    def encode(self, alerts: Sequence[Alert]) -> list[tuple[HttpRequest, list[Alert]]]:
        """Requests to send, each with the alerts it carries."""
        ...


class _Deliver(beam.DoFn):
    def __init__(self, sink: str, encoder: Encoder, config: DeliveryConfig):
        self._sink = sink
        self._encoder = encoder
        self._config = config
        namespace = f"sink:{sink}"
        self._sent = beam.metrics.Metrics.counter(namespace, "sent")
        self._retried = beam.metrics.Metrics.counter(namespace, "retried")
        self._dead = beam.metrics.Metrics.counter(namespace, "dead_lettered")

    def setup(self):
        self._notifier = HttpNotifier(self._encoder, self._config)

    def start_bundle(self):
        self._pending: list[Alert] = []

    def process(self, alert: Alert):
        self._pending.append(alert)
        if len(self._pending) >= self._encoder.batch_size:
            yield from self._flush()

    def finish_bundle(self):
        for output in self._flush():
            yield finish_bundle_output(output)

    def _flush(self):
        alerts, self._pending = self._pending, []
        if not alerts:
            return
        for outcome in self._notifier.notify(alerts):
            yield from delivery_outputs(self._sink, outcome, self._sent, self._retried, self._dead)


def delivery_outputs(sink: str, outcome: Outcome, sent, retried, dead):
    """Beam outputs and counters of one outcome: ``(sink, alert id, notification, status, attempts)``, or a
    dead letter (shared by every notifying DoFn)."""
    retried.inc(outcome.retries)
    alert = outcome.alert
    if outcome.delivered:
        sent.inc()
        yield (sink, alert.id, alert.notification, outcome.status, outcome.attempts)
        return
    dead.inc()
    yield beam.pvalue.TaggedOutput(streams.DEAD_LETTERS, failed_delivery(sink, alert, outcome.reason, outcome.attempts))


class DeliverAlerts(beam.PTransform):
    """Alerts -> ``{"delivered": (sink, alert id, notification, status, attempts), "dead_letters": ...}``."""

    def __init__(self, sink: str, encoder: Encoder, config: DeliveryConfig):
        super().__init__()
        if encoder.batch_size < 1:
            raise ValueError(f"{sink}: batch_size must be at least 1")
        self._sink, self._encoder, self._config = sink, encoder, config

    def expand(self, alerts):
        outputs = alerts | "Deliver" >> beam.ParDo(_Deliver(self._sink, self._encoder, self._config)).with_outputs(
            streams.DEAD_LETTERS, main="delivered"
        )
        return {"delivered": outputs["delivered"], streams.DEAD_LETTERS: outputs[streams.DEAD_LETTERS]}
