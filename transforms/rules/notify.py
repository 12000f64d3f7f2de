"""Silences and routing between the rule engine and the notification sinks.

``ApplySilences`` marks alerts that a silence covers (``silenced=True``):
they are still stored, but ``Route`` sends them nowhere. ``Route`` turns each
other alert into ``(sink name, alert)`` pairs following the configured routes
(see :mod:`airis_mon.routing`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import apache_beam as beam

from airis_mon.enrichment import EnrichmentConfig
from airis_mon.routing import DefaultRoute, Route, Silence, route_sinks
from airis_mon.schema import Alert

__all__ = ["ApplySilences", "RouteAlerts", "alert_labels", "silence"]


def alert_labels(alert: Alert) -> dict[str, str]:
    """Labels that silences and routes match: group tags, rule labels, and
    ``rule``, ``severity``, ``source``."""
    return {**json.loads(alert.labels), "rule": alert.rule, "severity": alert.severity, "source": alert.source}


def silence(alert: Alert, silences: Sequence[Silence]) -> Alert:
    """The alert, marked silenced when a silence covers it at its timestamp."""
    labels = alert_labels(alert)
    if any(s.silences(labels, alert.timestamp_ms) for s in silences):
        beam.metrics.Metrics.counter("rules", "silenced").inc()
        return alert._replace(silenced=True)
    return alert


class ApplySilences(beam.PTransform):
    def __init__(self, silences: Sequence[Silence]):
        super().__init__()
        self._silences = tuple(silences)

    def expand(self, alerts):
        return alerts | "MarkSilenced" >> beam.Map(silence, self._silences)


def _routes_for(alert: Alert, routes: tuple[Route, ...], default: DefaultRoute, enrichment: EnrichmentConfig):
    if alert.silenced:
        return
    owner = enrichment.owner_of(alert.model_id) if alert.model_id else None
    owner_sinks = owner.owner_sinks(alert.severity) if owner is not None else ()
    for sink in route_sinks(routes, default, alert.severity, alert_labels(alert), owner_sinks):
        yield sink, alert


class RouteAlerts(beam.PTransform):
    """Alerts -> ``(sink name, alert)`` for every sink chosen: the owning team's sinks
    (``enrichment.ownership``), the matching routes, else the default route."""

    def __init__(self, routes: Sequence[Route], default: DefaultRoute, enrichment: EnrichmentConfig | None = None):
        super().__init__()
        self._routes = tuple(routes)
        self._default = default
        self._enrichment = enrichment or EnrichmentConfig()

    def expand(self, alerts):
        return alerts | "ChooseSinks" >> beam.FlatMap(_routes_for, self._routes, self._default, self._enrichment)
