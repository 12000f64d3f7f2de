"""``BuildHealthReport``: :class:`~airis_mon.schema.HealthRecord` rows -> the
integration health report (``health_report.json``, the gateway's ``/api/v1/integrations/health``)::

    {"timestamp": "2026-11-29T22:00:00.000Z", "overall_status": "healthy",
     "integrations": {"aws_sagemaker": {"status": "healthy",
                                        "message": "21600 records read, 0 rejected (0.0%)", ...}}}

An integration is ``healthy`` when every health record it produced in the
run was ok, ``degraded`` otherwise (the message of its latest failure is
shown). ``overall_status`` is ``degraded`` as soon as one integration is.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam

from airis_mon.batching import rows_to_table
from airis_mon.schema import METRIC_SCHEMA, HealthRecord, canonical_tags
from airis_mon.timeutil import ms_to_iso

__all__ = ["HEALTH_METRIC", "HEALTH_SOURCE", "BuildHealthReport", "HealthAsMetrics", "health_points", "health_report"]

#: Health records become points of this metric (1 = the poll failed, 0 = ok),
#: tagged with the integration, so that the rule engine alerts on health too.
HEALTH_METRIC = "integration_poll_failed"
HEALTH_SOURCE = "airis_mon"


def health_report(records: Iterable[HealthRecord], now_ms: int | None = None) -> dict:
    """Build the report from every health record of a run (pure function)."""
    by_integration: dict[str, list[HealthRecord]] = {}
    for record in records:
        by_integration.setdefault(record.integration, []).append(record)
    integrations = {}
    for name, items in sorted(by_integration.items()):
        items.sort(key=lambda r: (r.timestamp_ms, r.ok))
        failures = [r for r in items if not r.ok]
        latest = failures[-1] if failures else items[-1]
        integrations[name] = {
            "status": "degraded" if failures else "healthy",
            "message": latest.message,
            "checks": len(items),
            "failed_checks": len(failures),
            "records": sum(r.records for r in items),
            "last_check": ms_to_iso(items[-1].timestamp_ms),
        }
    newest = max((r.timestamp_ms for items in by_integration.values() for r in items), default=0)
    degraded = any(i["status"] != "healthy" for i in integrations.values())
    return {
        "timestamp": ms_to_iso(now_ms if now_ms is not None else newest),
        "overall_status": "degraded" if degraded else "healthy",
        "integrations": integrations,
    }


class BuildHealthReport(beam.PTransform):
    """Health records -> a PCollection holding one report dict."""

    def expand(self, records):
        gathered = (
            records | "CollectHealth" >> beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
        )
        return gathered | "BuildReport" >> beam.Map(health_report)


def _integration_tags(integration: str) -> str:
    return canonical_tags({"integration": integration})


def health_points(records: Iterable[HealthRecord]):
    """Health records -> a :data:`METRIC_SCHEMA` table of ``integration_poll_failed`` points."""
    rows = [
        (
            r.timestamp_ms,
            HEALTH_SOURCE,
            HEALTH_METRIC,
            0.0 if r.ok else 1.0,
            "count",
            canonical_tags({"integration": r.integration}),
        )
        for r in records
    ]
    return rows_to_table(rows, METRIC_SCHEMA)


class HealthAsMetrics(beam.PTransform):
    """Health records -> one table of health points (empty tables are dropped)."""

    def expand(self, records):
        return (
            records
            | "GatherHealth" >> beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
            | "ToPoints" >> beam.Map(health_points)
            | "DropEmpty" >> beam.Filter(lambda table: table.num_rows > 0)
        )
