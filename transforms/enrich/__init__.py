"""Enrichment: ownership, user directory, model registry and CI context joined onto points, events and alerts."""

from transforms.enrich.context import EnrichmentContext, alert_context
from transforms.enrich.transform import BuildEnrichmentContext, EnrichAlerts, EnrichEvents, EnrichPoints

__all__ = [
    "BuildEnrichmentContext",
    "EnrichAlerts",
    "EnrichEvents",
    "EnrichPoints",
    "EnrichmentContext",
    "alert_context",
]
