"""``Notifier``: deliver alerts to one sink outside Beam, one outcome per alert.

The Beam sinks (:class:`~sinks.delivery.transform.DeliverAlerts`,
``WriteToEmail``) and the live runner's outbox (``pipelines.live.outbox``)
deliver through the same notifiers, so a notification is encoded, retried,
rate limited and keyed the same way whoever sends it.

- :class:`HttpNotifier`: an HTTP sink's encoder (alerts in, requests out) on
  :class:`~sinks.delivery.http.HttpDeliverer`;
- other sinks register a factory (``Component.notifier_path``): email over
  SMTP, the local notification log.

>>> notifier = notifier_for(slack_config)  # doctest: +SKIP
>>> [outcome.delivered for outcome in notifier.notify(alerts)]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from airis_mon.registry import get_component, load_object
from airis_mon.schema import Alert
from sinks.delivery.config import DeliveryConfig
from sinks.delivery.http import HttpDeliverer

__all__ = ["HttpNotifier", "Notifier", "Outcome", "notifier_for"]


class Outcome(NamedTuple):
    """What became of one alert at one sink (``status``: the last HTTP or SMTP code, None without reply)."""

    alert: Alert
    delivered: bool
    status: int | None
    attempts: int
    retries: int
    reason: str  # "" when delivered; never holds a URL, header or secret


class Notifier(Protocol):
    """Delivers alerts to one sink; never raises for a failed delivery."""

    batch_size: int

    def notify(self, alerts: Sequence[Alert]) -> list[Outcome]:
        """Deliver up to ``batch_size`` alerts; one outcome per alert, in order."""
        ...


class HttpNotifier:
    """An HTTP sink: its encoder's requests, delivered with the shared retries and rate limit."""

    def __init__(self, encoder, config: DeliveryConfig, deliverer: HttpDeliverer | None = None):
        self._encoder = encoder
        self._deliverer = deliverer or HttpDeliverer(config)
        self.batch_size = encoder.batch_size

    def notify(self, alerts: Sequence[Alert]) -> list[Outcome]:
        outcomes = []
        for request, carried in self._encoder.encode(list(alerts)):
            result = self._deliverer.deliver(request)
            where = f"{request.label}: " if request.label and not result.delivered else ""
            outcomes.extend(
                # A request's retries are counted once, on its first alert.
                Outcome(alert, result.delivered, result.status, result.attempts, result.retries if i == 0 else 0,
                        where + result.reason)
                for i, alert in enumerate(carried)
            )  # fmt: skip
        return outcomes


def notifier_for(config) -> Notifier:
    """The notifier of a configured notification sink (by its registry entry)."""
    component = get_component("sink", config.type)
    if component.encoder_path:
        return HttpNotifier(load_object(component.encoder_path)(config), config.delivery)
    if component.notifier_path:
        return load_object(component.notifier_path)(config)
    raise ValueError(f"sink type {config.type!r} cannot notify (it has no encoder_path or notifier_path)")
