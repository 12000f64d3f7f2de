"""Enrichment transforms: ownership, directory and change context joined onto points, events and alerts.

>>> events = events | EnrichEvents(config.enrichment)                        # doctest: +SKIP
>>> points = points | EnrichPoints(config.enrichment)                        # doctest: +SKIP
>>> alerts = alerts | EnrichAlerts(config.enrichment, events)               # doctest: +SKIP

- :class:`EnrichPoints` adds ``team`` and ``owner`` tags to the points of an
  owned model (static: the ownership map), vectorised per distinct tag set.
- :class:`EnrichEvents` adds ``ownership: {model, team, owner}`` to the data of
  events naming an owned model (``model_name``) or repository.
- :class:`EnrichAlerts` fills ``Alert.context`` (:func:`~transforms.enrich.context.alert_context`)
  from a side input folded from the event stream (:class:`BuildEnrichmentContext`).
  In batch that side input is every context event of the run. In streaming it
  is a slowly-changing side input: the events go into the global window with
  a trigger that fires on every new context event, accumulating, so each
  alert is joined with the context as of the latest refresh. A missing
  context (nothing synced yet) gives an alert with just its model id:
  enrichment never drops or holds back a record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import apache_beam as beam
import pyarrow as pa
from apache_beam.transforms import trigger, window

from airis_mon.arrowutil import dictionary_encode
from airis_mon.enrichment import EnrichmentConfig
from airis_mon.schema import Alert, Event, canonical_tags, model_id_of, tags_from_json
from transforms.enrich.context import CONTEXT_EVENT_TYPES, EnrichmentContext, alert_context

__all__ = ["BuildEnrichmentContext", "EnrichAlerts", "EnrichEvents", "EnrichPoints", "enrich_points_table"]

COMPONENT = "enrich"


class _FoldContext(beam.CombineFn):
    def create_accumulator(self) -> EnrichmentContext:
        return EnrichmentContext()

    def add_input(self, context: EnrichmentContext, event: Event) -> EnrichmentContext:
        return context.add(event)

    def merge_accumulators(self, contexts) -> EnrichmentContext:
        merged = EnrichmentContext()
        for context in contexts:
            merged.merge(context)
        return merged

    def extract_output(self, context: EnrichmentContext) -> EnrichmentContext:
        return context


class BuildEnrichmentContext(beam.PTransform):
    """Events -> one :class:`EnrichmentContext` (batch), or one per refresh (``streaming=True``)."""

    def __init__(self, config: EnrichmentConfig, streaming: bool = False):
        super().__init__()
        self._config = config
        self._streaming = streaming

    def expand(self, events):
        relevant = events | "ContextEvents" >> beam.Filter(lambda e: e.event_type in CONTEXT_EVENT_TYPES)
        if not self._streaming:
            return relevant | "FoldContext" >> beam.CombineGlobally(_FoldContext())
        return (
            relevant
            | "RefreshEvery"
            >> beam.WindowInto(
                window.GlobalWindows(),
                # Refreshed by every context event (so as often as the directory, registry and CI sources
                # poll), not by a processing-time trigger: those crash the local FnApiRunner.
                trigger=trigger.Repeatedly(trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            )
            | "FoldContext" >> beam.CombineGlobally(_FoldContext()).without_defaults()
        )


def _enrich_alert(alert: Alert, config: EnrichmentConfig, contexts: list[EnrichmentContext]) -> Alert:
    # Batch: one context. Streaming: every refresh so far (accumulating panes); the newest saw the most events.
    context = max(contexts, key=lambda c: c.events_seen, default=None) or EnrichmentContext()
    details = alert_context(alert, context, config)
    if details.get("owner") or details.get("change") or details.get("deploy"):
        beam.metrics.Metrics.counter(COMPONENT, "alerts_with_context").inc()
    return alert._replace(context=json.dumps(details, sort_keys=True, separators=(",", ":")))


class EnrichAlerts(beam.PTransform):
    """Alerts -> alerts with ``context`` (owner, team, what changed); see the module docstring."""

    def __init__(self, config: EnrichmentConfig, events: beam.PCollection, streaming: bool = False):
        super().__init__()
        self._config = config
        self._events = events
        self._streaming = streaming

    def expand(self, alerts):
        context = self._events | "BuildContext" >> BuildEnrichmentContext(self._config, self._streaming)
        if self._streaming:
            alerts = alerts | "AlertsInGlobalWindow" >> beam.WindowInto(window.GlobalWindows())
        return alerts | "AddContext" >> beam.Map(_enrich_alert, self._config, beam.pvalue.AsList(context))


def _owner_tags(tags_json: str, config: EnrichmentConfig) -> str:
    tags = tags_from_json(tags_json)
    entry = config.owner_of(model_id_of(tags))
    if entry is None:
        return tags_json
    added = {key: value for key, value in (("team", entry.team), ("owner", entry.owner)) if value and key not in tags}
    return canonical_tags({**tags, **added}) if added else tags_json


def enrich_points_table(table: pa.Table, config: EnrichmentConfig) -> pa.Table:
    """``team`` / ``owner`` tags on the points of owned models (one lookup per distinct tag set)."""
    if not config.ownership or table.num_rows == 0:
        return table
    encoded = dictionary_encode(table.column("tags"))
    mapped = pa.array([_owner_tags(tags, config) for tags in encoded.dictionary.to_pylist()], type=pa.string())
    return table.set_column(table.schema.get_field_index("tags"), "tags", mapped.take(encoded.indices))


class EnrichPoints(beam.PTransform):
    """Point batches -> the same batches with ownership tags (a no-op without an ownership map)."""

    def __init__(self, config: EnrichmentConfig):
        super().__init__()
        self._config = config

    def expand(self, batches):
        return batches | "OwnerTags" >> beam.Map(enrich_points_table, self._config)


def _enrich_event(event: Event, config: EnrichmentConfig) -> Iterator[Event]:
    try:
        data = json.loads(event.data)
    except ValueError:
        data = None
    if not isinstance(data, dict) or "ownership" in data:
        yield event
        return
    model = str(data.get("model_name") or data.get("model_id") or "")
    entry = (config.owner_of_registry_model(model) or config.owner_of(model)) if model else None
    if entry is None and isinstance(data.get("repository"), str):
        entry = config.owner_of_repository(data["repository"])
    if entry is None:
        yield event
        return
    data["ownership"] = {"model": entry.model, "team": entry.team, "owner": entry.owner}
    yield event._replace(data=json.dumps(data, sort_keys=True, separators=(",", ":")))


class EnrichEvents(beam.PTransform):
    """Events -> the same events, with ``data.ownership`` when they name an owned model or repository."""

    def __init__(self, config: EnrichmentConfig):
        super().__init__()
        self._config = config

    def expand(self, events):
        if not self._config.ownership:
            return events
        return events | "OwnerOfEvent" >> beam.FlatMap(_enrich_event, self._config)
