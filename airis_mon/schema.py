"""The one schema shared by every stage.

Records inside the pipeline are light: ``typing.NamedTuple`` classes that Beam
encodes with its schema-aware ``RowCoder`` (events, alerts, users, health,
dead letters) and Arrow record batches for metric points, which arrive by the
hundred thousand and are processed column-wise.

Units: every timestamp is integer epoch milliseconds UTC (``*_ms`` fields);
durations are seconds (``*_s``); metric values are in their canonical unit
named by the ``unit`` column (latency in ``ms``).

Tags are carried as one canonical JSON object string (keys sorted, values
strings, no whitespace) so that a series key is a plain string and tags can be
grouped and stored without a map type. :func:`canonical_tags` builds it.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa

from airis_mon.severities import ALERT_SEVERITIES, SEVERITIES

__all__ = [
    "AGGREGATE_SCHEMA",
    "ALERT_SEVERITIES",
    "DISTRIBUTION_SCHEMA",
    "METRIC_SCHEMA",
    "MODEL_TAG_KEYS",
    "RAW_POINT_SCHEMA",
    "SEVERITIES",
    "Alert",
    "AlertState",
    "DeadLetter",
    "Event",
    "HealthRecord",
    "Metric",
    "UserRecord",
    "canonical_tags",
    "metrics_to_table",
    "model_id_of",
    "tags_from_json",
]


def _tag_value(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def canonical_tags(tags: dict | None) -> str:
    """Serialise tags as the canonical JSON string: keys sorted, every value
    a string (numbers and booleans stringified, nested values as JSON)."""
    if not tags:
        return "{}"
    as_strings = {str(key): _tag_value(value) for key, value in tags.items()}
    return json.dumps(as_strings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tags_from_json(text: str) -> dict[str, str]:
    """Inverse of :func:`canonical_tags`."""
    return json.loads(text) if text else {}


class Metric(NamedTuple):
    """One normalized metric point (the row form of :data:`METRIC_SCHEMA`)."""

    timestamp_ms: int
    source: str
    name: str
    value: float
    unit: str
    tags: str  # canonical JSON, see canonical_tags


class Event(NamedTuple):
    """One event of the public contract (``event_type``, ``severity`` ...)."""

    timestamp_ms: int
    event_type: str
    source: str
    severity: str  # one of SEVERITIES
    data: str  # JSON object


#: Tag keys naming the model a series or alert belongs to, in order of preference.
MODEL_TAG_KEYS = ("model_id", "model_name", "endpoint_name", "model")


def model_id_of(tags: dict) -> str:
    """The model a set of (normalized, snake_case) tags belongs to; "" when none says."""
    for key in MODEL_TAG_KEYS:
        if tags.get(key):
            return str(tags[key])
    return ""


class Alert(NamedTuple):
    """One alert notification of one episode, with the product's alert fields.

    An episode is one stretch of time during which a rule fired for one group;
    its ``id`` is deterministic (rule, group, ``starts_at_ms``), so replays and
    retries give the same id. Each episode yields one ``trigger``, optional
    ``repeat`` notifications while it fires, and one ``resolve`` when it ends.

    ``timestamp_ms`` is when this notification happened (event time),
    ``starts_at_ms`` when the episode's condition first held, ``resolved_at_ms``
    when it ended (0 while firing); ``duration_s`` is ``timestamp_ms -
    starts_at_ms`` in seconds; ``current_value`` the rule's value at
    ``timestamp_ms`` and ``peak_value`` the worst value of the episode so far.
    ``group`` and ``labels`` are canonical JSON objects; ``silenced`` alerts are
    stored but not notified. ``context`` (JSON) is filled by enrichment: the
    model's owner and team, its latest registry change and CI run or push.
    """

    id: str
    name: str
    severity: str  # one of ALERT_SEVERITIES
    summary: str
    description: str
    timestamp_ms: int
    source: str
    model_id: str
    environment: str
    alert_type: str
    threshold: float
    current_value: float
    peak_value: float
    duration_s: float
    status: str  # firing | resolved
    notification: str  # trigger | repeat | resolve
    starts_at_ms: int
    resolved_at_ms: int
    rule: str
    metric: str
    group: str
    labels: str
    silenced: bool
    context: str = "{}"  # JSON object: owner, team, what changed (see transforms.enrich)


class UserRecord(NamedTuple):
    """One directory user (LDAP / Active Directory / user-sync API)."""

    user_id: str
    username: str
    email: str
    display_name: str
    department: str
    title: str
    groups: str  # JSON list of group names
    source: str


class HealthRecord(NamedTuple):
    """The outcome of one poll or read by one integration.

    ``ok`` is success, ``latency_ms`` how long it took, ``freshness_ms`` the
    age of the newest data it saw at ``timestamp_ms`` (-1 if unknown) and
    ``records`` how many records it produced.
    """

    timestamp_ms: int
    integration: str
    ok: bool
    message: str
    latency_ms: float
    freshness_ms: int
    records: int


class DeadLetter(NamedTuple):
    """A record that could not be processed: which step, why, and the
    original payload as JSON so it can be fixed and replayed."""

    timestamp_ms: int  # when it was dead-lettered
    component: str
    reason: str
    original: str  # JSON


class AlertState(NamedTuple):
    """An alert that is pending (breaching, ``for`` not yet met) or firing at one evaluation, as Prometheus's
    ``ALERTS{alertstate=...}``: one row per (rule, group) and evaluation of the live runner."""

    evaluated_at_ms: int  # the evaluation horizon: windows ending at or before it were evaluated
    id: str  # the episode id the alert has (or will have, once it fires)
    rule: str
    source: str
    group: str  # JSON object of the group's tags
    state: str  # pending | firing
    active_since_ms: int  # start of the breaching run (the episode start)
    peak_value: float


for _record in (Metric, Event, Alert, UserRecord, HealthRecord, DeadLetter, AlertState):
    beam.coders.registry.register_coder(_record, beam.coders.RowCoder)

#: Metric points before normalization: vendor names/units, timestamps in any unit.
RAW_POINT_SCHEMA = pa.schema(
    [
        ("timestamp", pa.float64()),
        ("source", pa.string()),
        ("name", pa.string()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        ("tags", pa.string()),
    ]
)

#: Normalized metric points.
METRIC_SCHEMA = pa.schema(
    [
        ("timestamp_ms", pa.int64()),
        ("source", pa.string()),
        ("name", pa.string()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        ("tags", pa.string()),
    ]
)

_SERIES_WINDOW_FIELDS = [
    ("window_start_ms", pa.int64()),
    ("window_end_ms", pa.int64()),
    ("source", pa.string()),
    ("name", pa.string()),
    ("unit", pa.string()),
    ("tags", pa.string()),
    ("count", pa.int64()),
]

#: One row per (series, window): the statistics of the points in the window.
AGGREGATE_SCHEMA = pa.schema(
    [
        *_SERIES_WINDOW_FIELDS,
        ("sum", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("mean", pa.float64()),
        ("p50", pa.float64()),
        ("p95", pa.float64()),
        ("p99", pa.float64()),
    ]
)


DISTRIBUTION_SCHEMA = pa.schema(
    [
        *_SERIES_WINDOW_FIELDS,
        ("mapping", pa.string()),  # "ddsketch:<relative accuracy>" or "buckets" (Prometheus histogram)
        ("bins", pa.list_(pa.float64())),  # non-empty bins' values (ddsketch) or upper bounds (buckets), ascending
        ("counts", pa.list_(pa.int64())),  # points per bin
    ]
)
"""One mergeable distribution per (series, window) of the metrics drift rules read (:mod:`transforms.distributions`)."""


def metrics_to_table(metrics: list[Metric]) -> pa.Table:
    """Build a :data:`METRIC_SCHEMA` table from row records (tests, small data)."""
    columns = list(zip(*metrics, strict=False)) if metrics else [[] for _ in METRIC_SCHEMA]
    return pa.Table.from_arrays(
        [pa.array(col, type=field.type) for col, field in zip(columns, METRIC_SCHEMA, strict=False)],
        schema=METRIC_SCHEMA,
    )
