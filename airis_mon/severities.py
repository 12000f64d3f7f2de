"""Severities (Beam-free, so that the gateway can import them without the pipeline's schema)."""

from __future__ import annotations

__all__ = ["ALERT_SEVERITIES", "SEVERITIES"]

#: Event severities of the public ingestion contract, least to most severe.
SEVERITIES = ("info", "warning", "error", "critical")
#: Alert severities: the event severities plus ``high``.
ALERT_SEVERITIES = ("info", "warning", "error", "high", "critical")
