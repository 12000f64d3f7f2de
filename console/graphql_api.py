"""The console's GraphQL API (strawberry), mounted by the console app at ``/graphql``.

The published schema is ``console/schema.graphql`` (``strawberry export-schema console.graphql_api:schema``;
a test fails when it is stale). Authentication (Bearer token or page session + CSRF header) happens in the
app before any resolver runs; the resolvers get a :class:`ConsoleContext` carrying the caller's
:class:`~console.records.Principal` and enforce the role: every query is open to ``read`` and ``admin``;
the mutations (``acknowledge``, ``createSilence``, ``expireSilence``) need ``admin``.

Times: instants are the scalar ``EpochMs`` (integer epoch milliseconds UTC, serialized as a JSON number; on
input also an ISO-8601 string; GraphQL's ``Int`` is 32-bit and cannot hold them), with ISO-8601 strings
beside them where a person reads them (``startsAt`` beside ``startsAtMs``). Durations are ``DurationMs``
(integer ms). Values that are not finite (NaN, infinities) are ``null``.

Errors carry ``extensions.code``: ``FORBIDDEN`` (a read token mutating), ``NOT_FOUND`` (no such alert or
silence), ``UNAVAILABLE`` (silences without a gateway in the config), ``BAD_USER_INPUT`` (with
``extensions.field``, e.g. ``limit``, ``filter.state``, ``input.matchers[0].name``); any other exception
is masked as ``Unexpected error.`` and logged. A value of the wrong type (``limit: "x"``) is refused by
GraphQL validation before any resolver runs; its message names the argument.
Limits: query depth <= :data:`MAX_DEPTH`, <= :data:`MAX_TOKENS` tokens, <= :data:`MAX_ALIASES` aliases,
list ``limit`` <= :data:`MAX_LIMIT` (aggregates: :data:`MAX_AGGREGATE_POINTS`), time ranges <=
:data:`MAX_RANGE_MS`. No type carries a token, a sink URL or a key.

Usage (the app)::

    app.include_router(graphql_router(get_context), prefix="/graphql")

    # or directly, e.g. in a test:
    result = await schema.execute("{ alerts { total } }", context_value=ConsoleContext(...))
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NewType

import strawberry
from graphql import GraphQLError
from pydantic import ValidationError
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.fastapi import BaseContext, GraphQLRouter
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig

from airis_mon.silence_store import SilenceStore, StoredSilence, silence_status
from airis_mon.timeutil import ms_to_iso, to_epoch_ms
from console import records
from console.chart import chart_range
from console.queries import AGGREGATIONS

__all__ = [
    "AGGREGATIONS",
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_LIMIT",
    "MAX_RANGE_MS",
    "MAX_TOKENS",
    "SILENCE_STATES",
    "ConsoleContext",
    "DurationMs",
    "EpochMs",
    "graphql_router",
    "schema",
]

LOG = logging.getLogger(__name__)

MAX_DEPTH = 8  # the deepest sensible query (alert -> alert -> group -> name) is 4
MAX_TOKENS = 4000
MAX_ALIASES = 30
MAX_LIMIT = 1000  # alerts per page
MAX_AGGREGATE_POINTS = 10_000
MAX_RANGE_MS = 31 * 86_400_000  # series, changes and aggregates: at most 31 days, ms
MAX_LOOKBACK_MS = 31 * 86_400_000
_LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
SILENCE_STATES = ("pending", "active", "expired")


# --- errors -------------------------------------------------------------------------------------------


class ApiError(GraphQLError):
    """An error the caller caused (shown as it is; everything else is masked)."""

    def __init__(self, message: str, code: str, field: str | None = None):
        extensions: dict[str, Any] = {"code": code}
        if field is not None:
            extensions["field"] = field
        super().__init__(message, extensions=extensions)


def _bad(field: str, message: str) -> ApiError:
    return ApiError(f"{field}: {message}", "BAD_USER_INPUT", field)


def _not_found(field: str, message: str) -> ApiError:
    return ApiError(message, "NOT_FOUND", field)


def _is_api_error(error: GraphQLError) -> bool:
    """Ours, or graphql's own (validation, parsing, limits): shown. Anything else raised in a resolver: masked."""
    original = error.original_error
    return original is None or isinstance(original, GraphQLError)


# --- scalars ------------------------------------------------------------------------------------------


def _parse_epoch_ms(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("EpochMs: an integer of epoch ms or an ISO-8601 string, not a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        ms = to_epoch_ms(value) if not value.strip().lstrip("-").isdigit() else int(value)
    else:
        raise ValueError("EpochMs: an integer of epoch ms or an ISO-8601 string")
    if not 0 <= ms <= _LATEST_MS:
        raise ValueError("EpochMs: a time from 1970-01-01 to 9999-12-31")
    return ms


def _parse_duration_ms(value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("DurationMs: a non-negative integer of ms")
    return value


EpochMs = NewType("EpochMs", int)
DurationMs = NewType("DurationMs", int)
_SCALARS = {
    EpochMs: strawberry.scalar(
        name="EpochMs",
        description="An instant: integer epoch milliseconds UTC (a JSON number; input also takes ISO-8601).",
        serialize=int,
        parse_value=_parse_epoch_ms,
    ),
    DurationMs: strawberry.scalar(
        name="DurationMs",
        description="A duration: integer milliseconds (a JSON number).",
        serialize=int,
        parse_value=_parse_duration_ms,
    ),
}


# --- context ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ConsoleContext(BaseContext):
    """What every resolver gets: the store, the acknowledger, the silences, who is calling and a clock
    (``now_ms()``: epoch ms)."""

    store: Any  # console.queries.ConsoleStore
    acknowledger: Any  # console.acknowledgements.Acknowledger
    silences: SilenceStore | None  # None: no gateway configured, no silences to list or change
    principal: records.Principal
    now_ms: Callable[[], int] = dataclasses.field(default=lambda: int(time.time() * 1000))

    def __post_init__(self) -> None:
        BaseContext.__init__(self)

    def silence_store(self) -> SilenceStore:
        """The silence store; ``UNAVAILABLE`` when no gateway (and so no silence store) is configured."""
        if self.silences is None:
            raise ApiError("no silence store: the config has no type: gateway integration", "UNAVAILABLE")
        return self.silences

    def require_admin(self, action: str) -> None:
        """Refuse (``FORBIDDEN``) unless the caller has the admin role."""
        if not self.principal.is_admin:
            raise ApiError(f"{action} needs the admin role; this token has the {self.principal.role} role", "FORBIDDEN")


def _context(info: strawberry.Info) -> ConsoleContext:
    return info.context


async def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking store call off the event loop. The store's ``ValueError`` (``"field: message"``, with
    the store's parameter names) is the caller's ``BAD_USER_INPUT`` on the argument of that name."""
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except ValueError as error:
        name, _, message = str(error).partition(": ")
        if not message or not name.isidentifier():
            raise
        raise _bad(_ARGUMENTS.get(name, _camel(name)), message) from None


_ARGUMENTS = {"start_ms": "start", "end_ms": "end", "alert_id": "alertId", "lookback_ms": "lookbackMs"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _iso(ms: int | None) -> str | None:
    return ms_to_iso(ms) if ms is not None else None


def _labels(mapping: dict[str, str] | None) -> list[Label]:
    return [Label(name=str(k), value=str(v)) for k, v in sorted((mapping or {}).items())]


def _range(start: int | None, end: int | None, default: tuple[int, int]) -> tuple[int, int]:
    start = default[0] if start is None else start
    end = default[1] if end is None else end
    if end <= start:
        raise _bad("end", "must be after start")
    if end - start > MAX_RANGE_MS:
        raise _bad("end", f"at most {MAX_RANGE_MS // 86_400_000} days after start")
    return start, end


# --- types --------------------------------------------------------------------------------------------


@strawberry.type(description="One label, tag or group key and its value.")
class Label:
    name: str
    value: str


@strawberry.type(description="Alerts (episodes) by state, over every page the filter matches.")
class StateCounts:
    firing: int
    pending: int
    resolved: int


@strawberry.type(description="One episode as the alert list shows it.")
class Alert:
    id: str
    rule: str
    name: str
    severity: str
    state: str = strawberry.field(description="firing | pending | resolved")
    summary: str
    model_id: str
    environment: str
    team: str = strawberry.field(description='from the enrichment context; "" when unowned')
    source: str
    metric: str
    group: list[Label]
    starts_at_ms: EpochMs = strawberry.field(description="when the condition first held")
    starts_at: str
    last_at_ms: EpochMs = strawberry.field(description="the newest notification or evaluation")
    last_at: str
    resolved_at_ms: EpochMs | None
    resolved_at: str | None
    current_value: float | None
    peak_value: float | None
    threshold: float | None
    acknowledged_by: str | None
    acknowledged_at_ms: EpochMs | None
    acknowledged_at: str | None

    @classmethod
    def of(cls, row: records.AlertRow) -> Alert:
        return cls(
            id=row.id,
            rule=row.rule,
            name=row.name,
            severity=row.severity,
            state=row.state,
            summary=row.summary,
            model_id=row.model_id,
            environment=row.environment,
            team=row.team,
            source=row.source,
            metric=row.metric,
            group=_labels(row.group),
            starts_at_ms=row.starts_at_ms,
            starts_at=ms_to_iso(row.starts_at_ms),
            last_at_ms=row.last_at_ms,
            last_at=ms_to_iso(row.last_at_ms),
            resolved_at_ms=row.resolved_at_ms,
            resolved_at=_iso(row.resolved_at_ms),
            current_value=_finite(row.current_value),
            peak_value=_finite(row.peak_value),
            threshold=_finite(row.threshold),
            acknowledged_by=row.acknowledged_by,
            acknowledged_at_ms=row.acknowledged_at_ms,
            acknowledged_at=_iso(row.acknowledged_at_ms),
        )


@strawberry.type(description="One page of alerts, newest first, and the counts of all the filter matches.")
class AlertPage:
    alerts: list[Alert]
    counts: StateCounts
    total: int


@strawberry.type(description="One stored notification of the episode.")
class AlertNotification:
    notification: str = strawberry.field(description="trigger | repeat | resolve")
    timestamp_ms: EpochMs
    timestamp: str
    current_value: float | None
    silenced: bool


@strawberry.type(description="What happened to one notification (or an acknowledgement) at one sink.")
class DeliveryRow:
    sink: str = strawberry.field(description="the sink's name in the config (never its URL)")
    notification: str = strawberry.field(description="trigger | repeat | resolve | acknowledge")
    outcome: str = strawberry.field(description="delivered | dead_lettered | pending")
    status: int | None = strawberry.field(description="the HTTP status, when there was one")
    attempts: int
    retries: int
    reason: str
    at_ms: EpochMs
    at: str

    @classmethod
    def of(cls, row: records.DeliveryRow) -> DeliveryRow:
        return cls(
            sink=row.sink,
            notification=row.notification,
            outcome=row.outcome,
            status=row.status,
            attempts=row.attempts,
            retries=row.retries,
            reason=row.reason,
            at_ms=row.at_ms,
            at=ms_to_iso(row.at_ms),
        )


@strawberry.type(description="One window of the charted series.")
class SeriesPoint:
    window_start_ms: EpochMs
    value: float | None


@strawberry.type(description="A stretch of the episode: pending (breaching, `for` not met) or firing.")
class Span:
    state: str
    start_ms: EpochMs
    end_ms: EpochMs


@strawberry.type(description="Something that changed near the episode.")
class ChangeMarker:
    at_ms: EpochMs
    at: str
    kind: str = strawberry.field(description="model_version | deploy | ci_run | push")
    title: str
    source: str


@strawberry.type(description="The alert page: the episode, its text and context, its series and deliveries.")
class AlertDetail:
    alert: Alert
    description: str
    alert_type: str
    labels: list[Label]
    context: JSON = strawberry.field(description="the enrichment context (owner, team, change, deploy, sentence)")
    context_sentence: str
    aggregation: str = strawberry.field(description="the rule's statistic charted (mean, p95, ...)")
    window_s: int = strawberry.field(description="the rule's window, s")
    notifications: list[AlertNotification]
    default_start_ms: EpochMs = strawberry.field(description="where series and changes start when not told")
    default_end_ms: EpochMs = strawberry.field(description="where series and changes end when not told")
    record: strawberry.Private[records.AlertDetail]

    @classmethod
    def of(cls, detail: records.AlertDetail, now_ms: int) -> AlertDetail:
        start, end = chart_range(detail, now_ms)
        return cls(
            alert=Alert.of(detail.alert),
            description=detail.description,
            alert_type=detail.alert_type,
            labels=_labels(detail.labels),
            context=detail.context,
            context_sentence=detail.context_sentence,
            aggregation=detail.aggregation,
            window_s=detail.window_s,
            notifications=[
                AlertNotification(
                    notification=n.notification,
                    timestamp_ms=n.timestamp_ms,
                    timestamp=ms_to_iso(n.timestamp_ms),
                    current_value=_finite(n.current_value),
                    silenced=n.silenced,
                )
                for n in detail.notifications
            ],
            default_start_ms=start,
            default_end_ms=end,
            record=detail,
        )

    @strawberry.field(description="The rule's statistic over the episode's group, one point per window.")
    async def series(
        self, info: strawberry.Info, start: EpochMs | None = None, end: EpochMs | None = None
    ) -> list[SeriesPoint]:
        start, end = _range(start, end, (self.default_start_ms, self.default_end_ms))
        points = await _call(_context(info).store.series, self.record, start, end)
        return [SeriesPoint(window_start_ms=p.window_start_ms, value=_finite(p.value)) for p in points]

    @strawberry.field(description="The pending and firing stretches of the episode.")
    async def spans(self, info: strawberry.Info) -> list[Span]:
        found = await _call(_context(info).store.spans, self.record)
        return [Span(state=s.state, start_ms=s.start_ms, end_ms=s.end_ms) for s in found]

    @strawberry.field(description="Registry changes, deploys, CI runs and pushes near the episode.")
    async def changes(
        self, info: strawberry.Info, start: EpochMs | None = None, end: EpochMs | None = None
    ) -> list[ChangeMarker]:
        start, end = _range(start, end, (self.default_start_ms, self.default_end_ms))
        found = await _call(_context(info).store.changes, self.record, start, end)
        return [
            ChangeMarker(at_ms=c.at_ms, at=ms_to_iso(c.at_ms), kind=c.kind, title=c.title, source=c.source)
            for c in found
        ]

    @strawberry.field(description="What happened to each notification at each sink, and acknowledgements.")
    async def deliveries(self, info: strawberry.Info) -> list[DeliveryRow]:
        found = await _call(_context(info).store.deliveries, self.alert.id)
        return [DeliveryRow.of(row) for row in found]


@strawberry.type(description="A failed health check of an integration.")
class HealthFailure:
    at_ms: EpochMs
    at: str
    message: str


@strawberry.type(description="One integration's health over the lookback.")
class IntegrationHealth:
    name: str
    status: str = strawberry.field(description="healthy | degraded | stale | unknown")
    last_check_ms: EpochMs | None
    last_success_ms: EpochMs | None
    latency_ms: float | None = strawberry.field(description="of the newest check, ms")
    freshness_ms: DurationMs | None = strawberry.field(description="age of the newest data the newest check saw")
    records: int = strawberry.field(description="records produced over the lookback")
    checks: int
    failed_checks: int
    recent_failures: list[HealthFailure]


@strawberry.type(description="Every integration's health.")
class HealthOverview:
    overall_status: str = strawberry.field(description="healthy | degraded")
    as_of_ms: EpochMs
    integrations: list[IntegrationHealth]


@strawberry.type(description="One series-window of a metric aggregate.")
class AggregatePoint:
    window_start_ms: EpochMs
    source: str
    tags: list[Label]
    value: float | None


@strawberry.type(description="The values one alert-list filter can take.")
class FilterOption:
    name: str
    values: list[str]


@strawberry.type(description="One Alertmanager matcher: = != =~ !~ (isRegex, isEqual).")
class Matcher:
    name: str
    value: str
    is_regex: bool
    is_equal: bool


@strawberry.type(description="A silence (Alertmanager API v2 fields), its state as of the query.")
class Silence:
    id: str
    matchers: list[Matcher]
    starts_at_ms: EpochMs
    starts_at: str
    ends_at_ms: EpochMs
    ends_at: str
    created_by: str
    comment: str
    updated_at_ms: EpochMs
    updated_at: str
    state: str = strawberry.field(description="pending | active | expired")

    @classmethod
    def of(cls, silence: StoredSilence, now_ms: int) -> Silence:
        return cls(
            id=silence.id,
            matchers=[
                Matcher(name=m.name, value=m.value, is_regex=m.is_regex, is_equal=m.is_equal) for m in silence.matchers
            ],
            starts_at_ms=silence.starts_at,
            starts_at=ms_to_iso(silence.starts_at),
            ends_at_ms=silence.ends_at,
            ends_at=ms_to_iso(silence.ends_at),
            created_by=silence.created_by,
            comment=silence.comment,
            updated_at_ms=silence.updated_at,
            updated_at=ms_to_iso(silence.updated_at),
            state=silence_status(silence, now_ms),
        )


@strawberry.type(description="An acknowledgement: who, when, how, and whether this call made it.")
class AcknowledgeResult:
    alert_id: str
    by: str
    at_ms: EpochMs
    at: str
    via: str = strawberry.field(description="console | api | slack")
    first: bool = strawberry.field(description="false when the alert was already acknowledged (that one is shown)")
    resolved: bool = strawberry.field(description="the episode had resolved: recorded, nothing sent")
    pagerduty_sinks: list[str] = strawberry.field(
        description="the PagerDuty sinks this call queued an acknowledge for (names; empty on a repeat)"
    )


# --- inputs -------------------------------------------------------------------------------------------


@strawberry.input(description="Which alerts to list; a missing field is no filter.")
class AlertFilterInput:
    severity: str | None = None
    team: str | None = None
    model: str | None = None
    rule: str | None = None
    state: str | None = strawberry.field(default=None, description="firing | pending | resolved")
    resolved_since_ms: EpochMs | None = strawberry.field(
        default=None, description="leave out episodes resolved before this"
    )


@strawberry.input(description="A tag an aggregate series must have.")
class TagInput:
    name: str
    value: str


@strawberry.input(description="One matcher of a new silence: name=value (isEqual), != , =~ (isRegex), !~.")
class MatcherInput:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True


@strawberry.input(description="A new silence; createdBy is the caller's token name.")
class SilenceInput:
    matchers: list[MatcherInput]
    ends_at: EpochMs
    comment: str
    starts_at: EpochMs | None = strawberry.field(default=None, description="now when missing")


# --- root types ---------------------------------------------------------------------------------------


def _check_text(field: str, value: str | None, limit: int = 256) -> str | None:
    if value is not None and len(value) > limit:
        raise _bad(field, f"at most {limit} characters")
    return value


def _pydantic_field(error: ValidationError, prefix: str) -> tuple[str, str]:
    """The path (``input.matchers[0].name``) and message of a pydantic error's first problem."""
    first = error.errors(include_url=False, include_input=False)[0]
    path = prefix
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path, first["msg"]


def _health(overview: records.HealthOverview) -> HealthOverview:
    return HealthOverview(
        overall_status=overview.overall_status,
        as_of_ms=overview.as_of_ms,
        integrations=[
            IntegrationHealth(
                name=i.name,
                status=i.status,
                last_check_ms=i.last_check_ms,
                last_success_ms=i.last_success_ms,
                latency_ms=_finite(i.latency_ms),
                freshness_ms=i.freshness_ms,
                records=i.records,
                checks=i.checks,
                failed_checks=i.failed_checks,
                recent_failures=[
                    HealthFailure(at_ms=f.at_ms, at=ms_to_iso(f.at_ms), message=f.message) for f in i.recent_failures
                ],
            )
            for i in overview.integrations
        ],
    )


@strawberry.type
class Query:
    @strawberry.field(description="Alerts (episodes), newest first, and the counts by state of all that match.")
    async def alerts(
        self,
        info: strawberry.Info,
        filter: AlertFilterInput | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> AlertPage:
        if not 1 <= limit <= MAX_LIMIT:
            raise _bad("limit", f"from 1 to {MAX_LIMIT}")
        if not 0 <= offset <= 1_000_000:
            raise _bad("offset", "from 0 to 1000000")
        wanted = filter or AlertFilterInput()
        if wanted.state is not None and wanted.state not in records.ALERT_STATES:
            raise _bad("filter.state", f"one of {', '.join(records.ALERT_STATES)}")
        for name in ("severity", "team", "model", "rule"):
            _check_text(f"filter.{name}", getattr(wanted, name))
        query = records.AlertFilter(
            severity=wanted.severity,
            team=wanted.team,
            model=wanted.model,
            rule=wanted.rule,
            state=wanted.state,
            resolved_since_ms=wanted.resolved_since_ms,
            limit=limit,
            offset=offset,
        )
        page = await _call(_context(info).store.alerts, query)
        counts = {state: int(page.counts.get(state, 0)) for state in records.ALERT_STATES}
        return AlertPage(alerts=[Alert.of(row) for row in page.alerts], counts=StateCounts(**counts), total=page.total)

    @strawberry.field(description="One alert (episode) by id; NOT_FOUND when there is none.")
    async def alert(self, info: strawberry.Info, id: str) -> AlertDetail:
        context = _context(info)
        _check_text("id", id)
        detail = await _call(context.store.alert, id)
        if detail is None:
            raise _not_found("id", "no alert with this id")
        return AlertDetail.of(detail, context.now_ms())

    @strawberry.field(description="What happened to the alert's notifications at each sink.")
    async def notifications(self, info: strawberry.Info, alert_id: str) -> list[DeliveryRow]:
        _check_text("alertId", alert_id)
        found = await _call(_context(info).store.deliveries, alert_id)
        return [DeliveryRow.of(row) for row in found]

    @strawberry.field(description="Every integration's health over the lookback (default one day).")
    async def integration_health(self, info: strawberry.Info, lookback_ms: DurationMs = 86_400_000) -> HealthOverview:
        if not 60_000 <= lookback_ms <= MAX_LOOKBACK_MS:
            raise _bad("lookbackMs", f"from 60000 (1 min) to {MAX_LOOKBACK_MS} (31 days)")
        overview = await _call(_context(info).store.integration_health, lookback_ms=lookback_ms)
        return _health(overview)

    @strawberry.field(description="Silences, by start time; state filters them (pending | active | expired).")
    async def silences(self, info: strawberry.Info, state: str | None = None) -> list[Silence]:
        if state is not None and state not in SILENCE_STATES:
            raise _bad("state", f"one of {', '.join(SILENCE_STATES)}")
        context = _context(info)
        now = context.now_ms()
        stored = await _call(context.silences.all) if context.silences is not None else []
        found = [Silence.of(s, now) for s in stored]
        return [s for s in found if state is None or s.state == state]

    @strawberry.field(description="One silence by id; NOT_FOUND when there is none.")
    async def silence(self, info: strawberry.Info, id: str) -> Silence:
        context = _context(info)
        found = await _call(context.silence_store().get, id)
        if found is None:
            raise _not_found("id", "no silence with this id")
        return Silence.of(found, context.now_ms())

    @strawberry.field(description="A metric's windows over [start, end), one statistic per series-window.")
    async def aggregates(
        self,
        info: strawberry.Info,
        metric: str,
        start: EpochMs,
        end: EpochMs,
        source: str | None = None,
        tags: list[TagInput] | None = None,
        aggregation: str = "mean",
        limit: int = 1000,
    ) -> list[AggregatePoint]:
        if not metric or len(metric) > 256:
            raise _bad("metric", "1 to 256 characters")
        _check_text("source", source)
        start, end = _range(start, end, (start, end))
        if aggregation not in AGGREGATIONS:
            raise _bad("aggregation", f"one of {', '.join(AGGREGATIONS)}")
        if not 1 <= limit <= MAX_AGGREGATE_POINTS:
            raise _bad("limit", f"from 1 to {MAX_AGGREGATE_POINTS}")
        if tags is not None and len(tags) > 32:
            raise _bad("tags", "at most 32 tags")
        tag_map = {t.name: t.value for t in tags} if tags else None
        found = await _call(
            _context(info).store.aggregates,
            metric,
            start,
            end,
            source=source,
            tags=tag_map,
            aggregation=aggregation,
            limit=limit,
        )
        return [
            AggregatePoint(
                window_start_ms=p.window_start_ms, source=p.source, tags=_labels(p.tags), value=_finite(p.value)
            )
            for p in found
        ]

    @strawberry.field(description="The values each alert-list filter can take (severity, team, model, rule ...).")
    async def filter_options(self, info: strawberry.Info) -> list[FilterOption]:
        found = await _call(_context(info).store.filter_options)
        return [FilterOption(name=name, values=list(values)) for name, values in sorted(found.items())]

    @strawberry.field(description="Who is calling: the token's name and role (read | admin).")
    def viewer(self, info: strawberry.Info) -> Viewer:
        principal = _context(info).principal
        return Viewer(name=principal.name, role=principal.role)


@strawberry.type(description="The caller: a console token's name and role.")
class Viewer:
    name: str
    role: str = strawberry.field(description="read | admin")


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Acknowledge an alert (admin); twice returns the first acknowledgement.")
    async def acknowledge(self, info: strawberry.Info, alert_id: str) -> AcknowledgeResult:
        context = _context(info)
        context.require_admin("acknowledge")
        via = "console" if context.principal.via == "session" else "api"
        try:
            result = await _call(context.acknowledger.acknowledge, alert_id, context.principal.name, via)
        except ValueError as error:  # the acknowledger names the field (alert_id)
            raise _bad("alertId", str(error).removeprefix("alert_id ")) from None
        if not result.found:
            raise _not_found("alertId", "no alert with this id")
        ack = result.ack
        LOG.info("alert %s acknowledged by %s (%s)", alert_id, ack.by, "first" if result.first else "again")
        return AcknowledgeResult(
            alert_id=alert_id,
            by=ack.by,
            at_ms=ack.at_ms,
            at=ms_to_iso(ack.at_ms),
            via=ack.via,
            first=result.first,
            resolved=bool(getattr(result, "resolved", False)),
            pagerduty_sinks=_names(result.pagerduty_sinks),
        )

    @strawberry.mutation(description="Create a silence (admin); createdBy is the caller's token name.")
    async def create_silence(self, info: strawberry.Info, input: SilenceInput) -> Silence:
        from sources.gateway.app import PostableSilence  # the gateway's API v2 model and its validation

        context = _context(info)
        context.require_admin("createSilence")
        context.silence_store()
        now = context.now_ms()
        body = {
            "matchers": [
                {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal} for m in input.matchers
            ],
            "startsAt": now if input.starts_at is None else input.starts_at,
            "endsAt": input.ends_at,
            "createdBy": context.principal.name,
            "comment": input.comment,
        }
        try:
            posted = PostableSilence.model_validate(body)
            if posted.ends_at <= posted.starts_at:
                raise _bad("input.endsAt", "must be after startsAt")
            if posted.ends_at <= now:
                raise _bad("input.endsAt", "must be in the future")
            silence = StoredSilence.model_validate(posted.model_dump(by_alias=True, exclude={"id"}))
        except ValidationError as error:
            field, message = _pydantic_field(error, "input")
            raise _bad(field, message) from None
        stored = await _call(context.silence_store().put, silence, now)
        LOG.info("silence %s created by %s", stored.id, context.principal.name)
        return Silence.of(stored, now)

    @strawberry.mutation(description="Expire a silence now (admin); it stays listed, expired.")
    async def expire_silence(self, info: strawberry.Info, id: str) -> Silence:
        context = _context(info)
        context.require_admin("expireSilence")
        now = context.now_ms()
        expired = await _call(context.silence_store().expire, id, now)
        if expired is None:
            raise _not_found("id", "no silence with this id")
        LOG.info("silence %s expired by %s", id, context.principal.name)
        return Silence.of(expired, now)


def _names(sinks: object) -> list[str]:
    """The PagerDuty sinks an acknowledgement reached, as names (whatever shape the acknowledger gives)."""
    if sinks is None:
        return []
    if isinstance(sinks, str):
        return [sinks]
    if isinstance(sinks, Sequence | set | frozenset | tuple):
        return [str(getattr(s, "name", s)) for s in sinks]
    return []


class _Schema(strawberry.Schema):
    """Logs only unexpected errors (with their traceback); the caller's mistakes are not the server's."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        unexpected = [e for e in errors if not _is_api_error(e)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


schema = _Schema(
    query=Query,
    mutation=Mutation,
    config=StrawberryConfig(scalar_map=_SCALARS),
    extensions=[
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaskErrors(should_mask_error=lambda error: not _is_api_error(error)),
    ],
)


def graphql_router(get_context: Callable[..., Any], *, graphiql: bool = False) -> GraphQLRouter:
    """The ``/graphql`` endpoint for the app (``app.include_router(graphql_router(...), prefix="/graphql")``).

    ``get_context``: a FastAPI dependency returning a :class:`ConsoleContext` (it authenticates the caller
    and checks the CSRF header of a page session). POST only (no queries over GET, so a link cannot run
    one); GraphiQL is off unless ``graphiql`` (it loads its script from a CDN, which the console's
    Content-Security-Policy refuses anyway).
    """
    return GraphQLRouter(
        schema,
        context_getter=get_context,
        graphql_ide="graphiql" if graphiql else None,
        allow_queries_via_get=False,
        multipart_uploads_enabled=False,
    )


if __name__ == "__main__":  # python -m console.graphql_api > console/schema.graphql
    print(schema.as_str())
