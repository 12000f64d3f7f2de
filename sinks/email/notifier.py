"""``EmailNotifier``: one email per alert notification over SMTP (no Beam).

Shared by :class:`sinks.email.transform.WriteToEmail` and the live runner's
outbox. Each delivery opens its own connection (:class:`SmtpDeliverer`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from airis_mon.schema import Alert
from sinks.delivery.notifier import Outcome
from sinks.email.config import EmailConfig
from sinks.email.message import build_message
from sinks.email.smtp import SmtpDeliverer

__all__ = ["EmailNotifier"]


class EmailNotifier:
    """Alerts -> SMTP deliveries; ``refused`` counts recipients refused while others accepted a message."""

    batch_size = 1

    def __init__(self, config: EmailConfig):
        self._config = config
        self._deliverer = SmtpDeliverer(config)  # no connection yet: one per delivery attempt
        self.refused = 0

    def notify(self, alerts: Sequence[Alert]) -> list[Outcome]:
        outcomes = []
        for alert in alerts:
            result = self._deliverer.deliver(build_message(self._config, alert, time.time()))
            if result.delivered:
                self.refused += len(result.refused)
            outcomes.append(
                Outcome(alert, result.delivered, result.status, result.attempts, result.retries, result.reason)
            )
        return outcomes
