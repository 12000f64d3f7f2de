"""The ``prometheus`` poller: scrape every target, one metrics payload per target and poll.

Each payload (timestamp = poll time, ``source`` = the config's ``source``)
holds the target's points (:mod:`sources.prometheus.exposition`) plus
Prometheus' own ``up`` (1) and ``scrape_duration_seconds`` (s).

Failures: a poll fails (the framework retries it, then records an unhealthy
health record) only when *every* target failed; it raises a
:class:`~airis_mon.errors.TransientError` if any of them may recover. When
some targets answered, each failed one becomes a ``scrape_failed`` event
(severity ``error``, data: ``url``, ``error``) and an ``up`` point of 0, and
the poll succeeds with the others' data.

Rates need the time between two scrapes of the same target: it is measured
with the poller's clock when each response arrives (not the scheduled poll
time, which a catching-up runner fires back to back).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from airis_mon.errors import PermanentError, TransientError
from sources.prometheus.client import display_url, scrape
from sources.prometheus.config import PrometheusConfig, PrometheusTarget
from sources.prometheus.exposition import ExpositionConverter

__all__ = ["PrometheusPoller"]


class PrometheusPoller:
    """Poller of :class:`~sources.prometheus.config.PrometheusConfig` (see the module docstring)."""

    def __init__(self, config: PrometheusConfig, clock: Callable[[], float] = time.time):
        self._config = config
        self._clock = clock
        self._session: requests.Session | None = None
        self._converters: list[ExpositionConverter] = []

    def setup(self) -> None:
        config = self._config
        self._session = requests.Session()
        self._converters = [
            ExpositionConverter(
                target.tags(), config.quantiles, config.units, config.include, config.exclude, config.bucket_increases
            )
            for target in config.targets
        ]

    def teardown(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _headers(self) -> dict[str, str]:
        token = self._config.bearer_token
        return {"Authorization": f"Bearer {token.get_secret_value()}"} if token is not None else {}

    def poll(self, now_ms: int) -> list[dict]:
        config = self._config
        payloads: list[dict] = []
        failures: list[tuple[PrometheusTarget, TransientError | PermanentError]] = []
        for target, converter in zip(config.targets, self._converters, strict=True):
            try:
                result = scrape(self._session, target.url, config.timeout_s, self._headers())
            except (TransientError, PermanentError) as error:
                failures.append((target, error))
                continue
            points = converter.convert(result.families, self._clock())
            tags = target.tags()
            points.append({"name": "up", "value": 1.0, "unit": "", "tags": tags})
            points.append({"name": "scrape_duration_seconds", "value": result.duration_s, "unit": "s", "tags": tags})
            payloads.append({"timestamp": now_ms, "source": config.source, "metrics": points})
        if failures and not payloads:
            reasons = "; ".join(str(error) for _, error in failures)
            if any(isinstance(error, TransientError) for _, error in failures):
                raise TransientError(reasons)
            raise PermanentError(reasons)
        for target, error in failures:
            payloads.append(
                {"timestamp": now_ms, "source": config.source, "metrics": [
                    {"name": "up", "value": 0.0, "unit": "", "tags": target.tags()}]}
            )  # fmt: skip
            payloads.append(
                {
                    "timestamp": now_ms,
                    "event_type": "scrape_failed",
                    "source": config.source,
                    "severity": "error",
                    "data": {"url": display_url(target.url), "error": str(error), **target.tags()},
                }
            )
        return payloads
