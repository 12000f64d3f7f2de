"""What the console's store answers: plain frozen dataclasses shared by the pages, the GraphQL API and the
benchmark. Times are epoch milliseconds UTC (``*_ms``); durations seconds (``*_s``); latencies ms.

An *alert* here is one episode (one ``id``: rule, group, start), with its latest state:

- ``firing``: triggered and not resolved;
- ``pending``: breaching in the newest live evaluation (``alert_states``), ``for`` not met yet, no trigger;
- ``resolved``: its resolve notification is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALERT_STATES",
    "AggregatePoint",
    "AlertDetail",
    "AlertFilter",
    "AlertNotification",
    "AlertPage",
    "AlertRow",
    "ChangeMarker",
    "DeliveryRow",
    "HealthFailure",
    "HealthOverview",
    "IntegrationHealth",
    "Principal",
    "SeriesPoint",
    "Span",
]

ALERT_STATES = ("firing", "pending", "resolved")


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts to list; ``None`` is no filter. ``resolved_since_ms``: resolved episodes older than this
    are left out (the page shows *recently* resolved ones); ``limit``/``offset`` page the list, newest first."""

    severity: str | None = None
    team: str | None = None
    model: str | None = None
    rule: str | None = None
    state: str | None = None  # one of ALERT_STATES
    resolved_since_ms: int | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class AlertRow:
    """One episode as the alert list shows it."""

    id: str
    rule: str
    name: str
    severity: str
    state: str  # one of ALERT_STATES
    summary: str
    model_id: str
    environment: str
    team: str  # from the alert's enrichment context, "" when unowned
    source: str
    metric: str
    group: dict[str, str]
    starts_at_ms: int  # when the condition first held
    last_at_ms: int  # the newest notification or evaluation of the episode
    resolved_at_ms: int | None
    current_value: float
    peak_value: float
    threshold: float
    acknowledged_by: str | None = None
    acknowledged_at_ms: int | None = None


@dataclass(frozen=True)
class AlertPage:
    """One page of the alert list and the counts by state of every alert the filter matches (all pages)."""

    alerts: list[AlertRow]
    counts: dict[str, int]  # state -> episodes, every state of ALERT_STATES present
    total: int


@dataclass(frozen=True)
class AlertNotification:
    """One stored notification of the episode (trigger, repeat, resolve)."""

    notification: str
    timestamp_ms: int
    current_value: float
    silenced: bool


@dataclass(frozen=True)
class DeliveryRow:
    """What happened to one notification at one sink (``notification_history.jsonl``) or to an acknowledgement
    (``notification`` = ``acknowledge``)."""

    sink: str
    notification: str  # trigger | repeat | resolve | acknowledge
    outcome: str  # delivered | dead_lettered | pending
    status: int | None
    attempts: int
    retries: int
    reason: str
    at_ms: int


@dataclass(frozen=True)
class AlertDetail:
    """The alert page: the episode, its text and context, its notifications and deliveries."""

    alert: AlertRow
    description: str
    alert_type: str
    labels: dict[str, str]
    context: dict  # the enrichment context (owner, team, change, deploy, sentence)
    context_sentence: str  # "" when nothing changed before it
    aggregation: str  # the rule's statistic charted (mean, p95, ...), "mean" when unknown
    window_s: int  # the rule's window, s
    notifications: list[AlertNotification] = field(default_factory=list)
    deliveries: list[DeliveryRow] = field(default_factory=list)


@dataclass(frozen=True)
class SeriesPoint:
    """One window of the charted series: the rule's statistic over the episode's group."""

    window_start_ms: int
    value: float


@dataclass(frozen=True)
class ChangeMarker:
    """Something that changed near the episode: a registry change, a deploy, a CI run or push."""

    at_ms: int
    kind: str  # model_version | deploy | ci_run | push
    title: str  # one line, e.g. "fraud v12 -> Production"
    source: str


@dataclass(frozen=True)
class HealthFailure:
    at_ms: int
    message: str


@dataclass(frozen=True)
class IntegrationHealth:
    name: str
    status: str  # healthy | degraded | stale | unknown
    last_check_ms: int | None
    last_success_ms: int | None
    latency_ms: float | None  # of the newest check
    freshness_ms: int | None  # age of the newest data the newest check saw; None when unknown
    records: int  # records produced over the lookback
    checks: int
    failed_checks: int
    recent_failures: list[HealthFailure] = field(default_factory=list)


@dataclass(frozen=True)
class HealthOverview:
    overall_status: str  # healthy | degraded
    as_of_ms: int
    integrations: list[IntegrationHealth]


@dataclass(frozen=True)
class AggregatePoint:
    """One series-window of a metric aggregate query."""

    window_start_ms: int
    source: str
    tags: dict[str, str]
    value: float


@dataclass(frozen=True)
class Span:
    """A stretch of the episode to shade on the chart: ``pending`` (breaching, ``for`` not met) or ``firing``."""

    state: str  # pending | firing
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Principal:
    """Who is calling: a console token's name and role (``read`` or ``admin``); ``via`` how they came in
    (``session`` for a signed-in page, ``bearer`` for the API)."""

    name: str
    role: str
    via: str = "bearer"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
