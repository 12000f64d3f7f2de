"""``ConsoleStore``: what the console's pages and GraphQL API ask of the stored output, answered from the
DuckDB index (:class:`console.index.ParquetIndex`) with parameterised SQL; records of :mod:`console.records`.

Times are epoch ms UTC. Semantics (see also :mod:`console.records`):

- an episode (one alert ``id``) is **resolved** when its resolve notification is stored, **firing** when it has
  notifications and no resolve, **pending** when it is ``pending`` in the newest ``alert_states`` evaluation and
  has no notification yet;
- ``team``: the enrichment context's ``team``, else the labels' or the group's ``team`` tag (``""`` when none);
  ``model``: the alert's ``model_id``;
- ``acknowledged_by``/``acknowledged_at_ms``: the first ``ack`` line of ``acknowledgements.jsonl`` for the id;
- :meth:`ConsoleStore.series`: the rule's statistic per rule window over the aggregate rows of the alert's metric
  (and source) whose tags hold every key and value of the alert's group (exactly the group's tags for a rule
  without ``group_by``) and match the rule's tag matchers, combined as the rule engine combines a group
  (:func:`transforms.rules.select.combine_windows`): count, sum, rate, mean (count-weighted) and min/max exact,
  p50/p95/p99 the maximum of the parts' quantiles;
- :meth:`ConsoleStore.integration_health`: an integration is ``unknown`` with no check stored, ``stale`` when its
  newest check is older than 3x its usual interval (the mean gap between its checks over the lookback; with
  fewer than 2 checks in the lookback: older than the lookback), else ``degraded`` when any of its newest
  :data:`DEGRADED_CHECKS` checks failed, else ``healthy``; overall ``degraded`` when any integration is not healthy.

Threads: each call takes its own DuckDB cursor (:meth:`console.index.ParquetIndex.cursor`); :meth:`refresh` may
run on another thread meanwhile.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from airis_mon.config import Config
from airis_mon.routing import matches
from airis_mon.schema import model_id_of
from console.index import ParquetIndex
from console.records import (
    ALERT_STATES,
    AggregatePoint,
    AlertDetail,
    AlertFilter,
    AlertNotification,
    AlertPage,
    AlertRow,
    ChangeMarker,
    DeliveryRow,
    HealthFailure,
    HealthOverview,
    IntegrationHealth,
    SeriesPoint,
    Span,
)
from transforms.enrich.context import describe_change, describe_deploy
from transforms.rules.config import AnomalyRule, ThresholdRule, VersionComparisonRule

__all__ = ["AGGREGATIONS", "DEGRADED_CHECKS", "MAX_LIMIT", "ConsoleStore"]

#: Statistics :meth:`ConsoleStore.aggregates` and :meth:`ConsoleStore.series` compute.
AGGREGATIONS = ("count", "sum", "min", "max", "mean", "rate", "p50", "p95", "p99")
#: An integration is degraded when any of its newest this many checks failed.
DEGRADED_CHECKS = 3
#: The largest page or result a query returns.
MAX_LIMIT = 100_000
_CONTEXT_TYPES = ("model_version_status", "workflow_run", "push")
_MAX_CHANGES = 500

# One row per stored episode: its newest notification's fields, its first start, resolve and trigger.
_EPISODES = """
SELECT id,
       arg_max(rule, timestamp_ms) AS rule, arg_max(name, timestamp_ms) AS name,
       arg_max(severity, timestamp_ms) AS severity, arg_max(summary, timestamp_ms) AS summary,
       arg_max(model_id, timestamp_ms) AS model_id, arg_max(environment, timestamp_ms) AS environment,
       arg_max(source, timestamp_ms) AS source, arg_max(metric, timestamp_ms) AS metric,
       arg_max("group", timestamp_ms) AS grp,
       coalesce(nullif(json_extract_string(arg_max(context, timestamp_ms), '$.team'), ''),
                nullif(json_extract_string(arg_max(labels, timestamp_ms), '$.team'), ''),
                nullif(json_extract_string(arg_max("group", timestamp_ms), '$.team'), ''), '') AS team,
       min(starts_at_ms) AS starts_at_ms, max(timestamp_ms) AS last_at_ms,
       max(CASE WHEN notification = 'resolve' THEN resolved_at_ms END) AS resolved_at_ms,
       arg_max(current_value, timestamp_ms) AS current_value, max(peak_value) AS peak_value,
       arg_max(threshold, timestamp_ms) AS threshold,
       CASE WHEN bool_or(notification = 'resolve') THEN 'resolved' ELSE 'firing' END AS state
FROM alerts GROUP BY id
"""
_ROW_COLUMNS = ("id, rule, name, severity, state, summary, model_id, environment, team, source, metric, grp, "
                "starts_at_ms, last_at_ms, resolved_at_ms, current_value, peak_value, threshold")  # fmt: skip
_ACKS = (
    "SELECT alert_id, arg_min(\"by\", at_ms) AS ack_by, min(at_ms) AS at_ms FROM acknowledgements WHERE type = 'ack'"
    " GROUP BY alert_id"
)


def _json_dict(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _check_filter(filt: AlertFilter) -> None:
    for name in ("severity", "team", "model", "rule"):
        value = getattr(filt, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name}: a string or null, got {type(value).__name__}")
    if filt.state is not None and filt.state not in ALERT_STATES:
        raise ValueError(f"state: one of {', '.join(ALERT_STATES)}, got {filt.state!r}")
    for name, low, high in (("limit", 1, MAX_LIMIT), ("offset", 0, None)):
        value = getattr(filt, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            raise ValueError(f"{name}: an integer >= {low}" + (f" and <= {high}" if high else "") + f", got {value!r}")
    since = filt.resolved_since_ms
    if since is not None and (isinstance(since, bool) or not isinstance(since, int)):
        raise ValueError(f"resolved_since_ms: epoch ms (an integer) or null, got {since!r}")


def _check_range(start_ms: int, end_ms: int) -> None:
    for name, value in (("start_ms", start_ms), ("end_ms", end_ms)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}: epoch ms (an integer), got {value!r}")
    if end_ms < start_ms:
        raise ValueError(f"end_ms: not before start_ms ({end_ms} < {start_ms})")


def _tag_conditions(tags: dict[str, str]) -> tuple[str, list]:
    """SQL conditions (and parameters) holding when a canonical tags JSON has every key and value of ``tags``:
    a substring test on the canonical ``"key":"value"`` text (fast), confirmed on the parsed JSON."""
    sql, params = "", []
    for key, value in sorted(tags.items()):
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"tags: string keys and values, got {key!r}: {value!r}")
        needle = json.dumps(key, ensure_ascii=False) + ":" + json.dumps(value, ensure_ascii=False)
        sql += " AND contains(tags, ?) AND json_extract_string(tags, ?) = ?"
        params += [needle, "$." + json.dumps(key, ensure_ascii=False), value]
    return sql, params


class ConsoleStore:
    """The console's questions about OUTPUT (see the module docstring).

    ``index_path``: the DuckDB index file (``None``: in memory, rebuilt at each start); ``clock``: seconds since
    the epoch (tests pass a fixed one); ``feed``: where the index takes some kinds from instead of OUTPUT's files
    (:class:`console.bigquery_feed.BigQueryFeed`; see :class:`console.index.ParquetIndex`).
    """

    def __init__(
        self,
        output: str | Path,
        config: Config,
        index_path: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        keep_days: int | None = None,
        feed: object | None = None,
    ):
        self.output = Path(output)
        self.config = config
        self.index = ParquetIndex(self.output, index_path, keep_days=keep_days, feed=feed)
        self._clock = clock
        self._rules = {rule.name: rule for rule in config.rules}
        live = getattr(config, "live", None)
        state_dir = getattr(live, "state_dir", None)
        self.state_dir = Path(state_dir) if state_dir else self.output / "state"

    def refresh(self) -> int:
        """Load what is new in OUTPUT (and the feed) into the index; the files, lines and fed rows loaded."""
        return self.index.refresh()

    def close(self) -> None:
        self.index.close()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _query(self, sql: str, params: list | None = None) -> list[tuple]:
        cur = self.index.cursor()
        try:
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()

    # --- the alert list -----------------------------------------------------------------------------------

    def _pending(self, cur, alert_id: str | None = None) -> list[AlertRow]:
        """Pending episodes: ``pending`` in the newest evaluation, no notification stored."""
        sql = (
            'SELECT s.id, s.rule, s.source, s."group", s.active_since_ms, s.evaluated_at_ms, s.peak_value'
            " FROM alert_states s WHERE s.evaluated_at_ms = (SELECT max(evaluated_at_ms) FROM alert_states)"
            " AND s.state = 'pending' AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.id = s.id)"
        )
        params: list = []
        if alert_id is not None:
            sql += " AND s.id = ?"
            params.append(alert_id)
        rows = []
        for ident, rule_name, source, group_json, since, evaluated, peak in cur.execute(sql, params).fetchall():
            rule = self._rules.get(rule_name)
            group = _json_dict(group_json)
            model = model_id_of(group)
            owner = self.config.enrichment.owner_of(model) if model else None
            team = (owner.team if owner else "") or str(group.get("team") or "")
            if rule is not None and not team:
                team = str(rule.labels.get("team", ""))
            rows.append(
                AlertRow(
                    id=ident,
                    rule=rule_name,
                    name=rule_name,
                    severity=rule.severity if rule else "",
                    state="pending",
                    summary="",
                    model_id=model,
                    environment="",
                    team=team,
                    source=source,
                    metric=rule.metric if rule else "",
                    group=group,
                    starts_at_ms=since,
                    last_at_ms=evaluated,
                    resolved_at_ms=None,
                    current_value=peak,
                    peak_value=peak,
                    threshold=float(getattr(rule, "threshold", math.nan)),
                )
            )
        return rows

    def alerts(self, filt: AlertFilter) -> AlertPage:
        """One page of episodes matching ``filt``, newest (last notification or evaluation) first, then by id.

        ``counts``: episodes by state over every page of the filter's other fields (``state`` itself left out, so
        a page of firing alerts still counts the pending and resolved ones); ``total``: the episodes of the whole
        filter (its ``state`` included). ``ValueError`` names a bad filter field."""
        _check_filter(filt)
        where, params = ["1 = 1"], []
        for column, value in (("severity", filt.severity), ("team", filt.team), ("model_id", filt.model),
                              ("rule", filt.rule)):  # fmt: skip
            if value is not None:
                where.append(f"e.{column} = ?")
                params.append(value)
        if filt.resolved_since_ms is not None:
            where.append("(e.state <> 'resolved' OR e.resolved_at_ms >= ?)")
            params.append(filt.resolved_since_ms)
        base = f"WITH e AS ({_EPISODES}) SELECT {{}} FROM e WHERE {' AND '.join(where)}"
        cur = self.index.cursor()
        try:
            counts = dict.fromkeys(ALERT_STATES, 0)
            for state, count in cur.execute(base.format("state, count(*)") + " GROUP BY state", params).fetchall():
                counts[state] = count
            pending = [
                row
                for row in self._pending(cur)
                if (filt.severity is None or row.severity == filt.severity)
                and (filt.team is None or row.team == filt.team)
                and (filt.model is None or row.model_id == filt.model)
                and (filt.rule is None or row.rule == filt.rule)
            ]
            counts["pending"] = len(pending)
            wanted = filt.offset + filt.limit
            stored: list[AlertRow] = []
            if filt.state != "pending":
                sql = base.format(_ROW_COLUMNS)
                state_params = list(params)
                if filt.state is not None:
                    sql += " AND e.state = ?"
                    state_params.append(filt.state)
                sql = (
                    f"WITH page AS ({sql} ORDER BY last_at_ms DESC, id LIMIT ?)"
                    " SELECT page.*, k.ack_by, k.at_ms FROM page"
                    f" LEFT JOIN ({_ACKS}) k ON k.alert_id = page.id ORDER BY last_at_ms DESC, id"
                )
                stored = [_alert_row(row) for row in cur.execute(sql, [*state_params, wanted]).fetchall()]
            if filt.state not in (None, "pending"):
                pending = []
            if pending:
                acks = self._acks(cur, [row.id for row in pending])
                pending = [_with_ack(row, acks.get(row.id)) for row in pending]
        finally:
            cur.close()
        merged = sorted(stored + pending, key=lambda row: (-row.last_at_ms, row.id))
        total = counts[filt.state] if filt.state else sum(counts.values())
        return AlertPage(merged[filt.offset : wanted], counts, total)

    @staticmethod
    def _acks(cur, ids: list[str]) -> dict[str, tuple[str, int]]:
        sql = f"SELECT alert_id, ack_by, at_ms FROM ({_ACKS}) WHERE list_contains(?, alert_id)"
        return {ident: (by, at) for ident, by, at in cur.execute(sql, [ids]).fetchall()}

    def filter_options(self) -> dict[str, list[str]]:
        """Distinct ``severity``, ``team``, ``model`` and ``rule`` values of the stored episodes and the config
        (rules, ownership teams), sorted, for the filter menus."""
        rows = self._query(
            "SELECT 'severity', severity FROM alerts UNION SELECT 'model', model_id FROM alerts"
            " UNION SELECT 'rule', rule FROM alerts UNION SELECT 'team', coalesce(nullif(json_extract_string(context,"
            " '$.team'), ''), json_extract_string(labels, '$.team')) FROM alerts"
        )
        options: dict[str, set[str]] = {"severity": set(), "team": set(), "model": set(), "rule": set()}
        for name, value in rows:
            if value:
                options[name].add(value)
        for rule in self.config.rules:
            options["rule"].add(rule.name)
            if getattr(rule, "severity", None):
                options["severity"].add(rule.severity)
        for entry in self.config.enrichment.ownership:
            if entry.team:
                options["team"].add(entry.team)
        return {name: sorted(values) for name, values in options.items()}

    # --- one alert ----------------------------------------------------------------------------------------

    def alert(self, alert_id: str) -> AlertDetail | None:
        """The episode ``alert_id`` with its text, context, notifications and deliveries; None when unknown."""
        if not isinstance(alert_id, str):
            raise ValueError(f"alert_id: a string, got {type(alert_id).__name__}")
        cur = self.index.cursor()
        try:
            rows = cur.execute(
                "SELECT name, severity, summary, description, timestamp_ms, source, model_id, environment,"
                " alert_type, threshold, current_value, peak_value, notification, starts_at_ms, resolved_at_ms,"
                ' rule, metric, "group", labels, silenced, context FROM alerts WHERE id = ?'
                " ORDER BY timestamp_ms, notification",
                [alert_id],
            ).fetchall()
            acks = self._acks(cur, [alert_id])
            if not rows:
                pending = self._pending(cur, alert_id)
                if not pending:
                    return None
                row = _with_ack(pending[0], acks.get(alert_id))
                aggregation, window_s = self._rule_statistic(row.rule)
                return AlertDetail(row, "", "", {}, {}, "", aggregation, window_s, [], self.deliveries(alert_id))
        finally:
            cur.close()
        newest = rows[-1]
        (name, severity, summary, description, _, source, model, environment, alert_type, threshold, current, _,
         _, _, _, rule, metric, group_json, labels_json, _, context_json) = newest  # fmt: skip
        resolves = [r for r in rows if r[12] == "resolve"]
        context, labels, group = _json_dict(context_json), _json_dict(labels_json), _json_dict(group_json)
        team = str(context.get("team") or labels.get("team") or group.get("team") or "")
        ack = acks.get(alert_id)
        row = AlertRow(
            id=alert_id, rule=rule, name=name, severity=severity, state="resolved" if resolves else "firing",
            summary=summary, model_id=model, environment=environment, team=team, source=source, metric=metric,
            group=group, starts_at_ms=min(r[13] for r in rows), last_at_ms=newest[4],
            resolved_at_ms=max(r[14] for r in resolves) if resolves else None, current_value=current,
            peak_value=max(r[11] for r in rows), threshold=threshold,
            acknowledged_by=ack[0] if ack else None, acknowledged_at_ms=ack[1] if ack else None,
        )  # fmt: skip
        aggregation, window_s = self._rule_statistic(rule)
        notifications = [AlertNotification(r[12], r[4], r[10], bool(r[19])) for r in rows]
        return AlertDetail(
            alert=row, description=description, alert_type=alert_type,
            labels={str(k): str(v) for k, v in labels.items()}, context=context,
            context_sentence=str(context.get("summary") or ""), aggregation=aggregation, window_s=window_s,
            notifications=notifications, deliveries=self.deliveries(alert_id),
        )  # fmt: skip

    def _rule_statistic(self, rule_name: str) -> tuple[str, int]:
        """(aggregation, window s) of a rule: a threshold rule's own; else ``mean`` over the aggregation window."""
        base_s = self.config.aggregation.window_seconds
        rule = self._rules.get(rule_name)
        if isinstance(rule, ThresholdRule | AnomalyRule | VersionComparisonRule):  # charts the statistic they score
            return rule.aggregation, int(rule.window or base_s)
        return "mean", int(base_s)

    def series(self, detail: AlertDetail, start_ms: int, end_ms: int) -> list[SeriesPoint]:
        """The rule's statistic per rule window starting in [start_ms, end_ms) over the episode's group (see the
        module docstring); windows without data are left out, and so are NaN values (a mean of no points)."""
        _check_range(start_ms, end_ms)
        alert = detail.alert
        rule = self._rules.get(alert.rule)
        aggregation, window_s = detail.aggregation, detail.window_s
        if aggregation not in AGGREGATIONS:
            aggregation = "mean"
        window_ms = max(1, window_s) * 1000
        exact = rule is not None and getattr(rule, "group_by", ()) is None and not _is_prometheus(rule)
        conditions, params = _tag_conditions({str(k): str(v) for k, v in alert.group.items()})
        sql = "FROM aggregates WHERE name = ? AND window_start_ms >= ? AND window_start_ms < ?"
        base = [alert.metric, start_ms - start_ms % window_ms, end_ms]
        if alert.source:
            sql += " AND source = ?"
            base.append(alert.source)
        sql += conditions
        base += params
        cur = self.index.cursor()
        try:
            candidates = [t for (t,) in cur.execute(f"SELECT DISTINCT tags {sql}", base).fetchall()]
            matchers = getattr(rule, "tags", None) or {}
            group_json = json.dumps(alert.group, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            wanted = [
                t
                for t in candidates
                if (not exact or t == group_json) and (not matchers or matches(matchers, _json_dict(t)))
            ]
            if not wanted:
                return []
            rows = cur.execute(
                "SELECT window_start_ms - window_start_ms % ? AS w, sum(count), sum(sum), min(min), max(max),"
                f" max(p50), max(p95), max(p99) {sql} AND list_contains(?, tags) GROUP BY w ORDER BY w",
                [window_ms, *base, wanted],
            ).fetchall()
        finally:
            cur.close()
        points = []
        for w, count, total, low, high, p50, p95, p99 in rows:
            value = {
                "count": float(count), "sum": total, "rate": total / (window_ms / 1000),
                "mean": total / count if count else math.nan, "min": low, "max": high, "p50": p50, "p95": p95,
                "p99": p99,
            }[aggregation]  # fmt: skip
            if value is not None and not math.isnan(value) and w >= start_ms - window_ms:
                points.append(SeriesPoint(int(w), float(value)))
        return points

    def spans(self, detail: AlertDetail) -> list[Span]:
        """Pending and firing stretches of the episode, in time order: from its ``alert_states`` rows when the
        live runner stored any (each state's stretch runs to the evaluation that changed it), else from its
        notifications (pending until the trigger, firing until the resolve, or now while it fires)."""
        alert = detail.alert
        rows = self._query(
            "SELECT evaluated_at_ms, state, active_since_ms FROM alert_states WHERE id = ? ORDER BY evaluated_at_ms",
            [alert.id],
        )
        trigger = next((n.timestamp_ms for n in detail.notifications if n.notification == "trigger"), None)
        end = alert.resolved_at_ms if alert.resolved_at_ms is not None else max(self._now_ms(), alert.last_at_ms)
        spans: list[Span] = []
        if rows:
            state, start, last = rows[0][1], min(rows[0][2], rows[0][0]), rows[0][0]
            for evaluated, row_state, _ in rows[1:]:
                if row_state != state:
                    spans.append(Span(state, start, last))
                    state, start = row_state, last
                last = evaluated
            if state == "firing" and alert.state == "resolved":
                last = max(last, end)
            elif state == "firing" and alert.state == "firing":
                last = max(last, alert.last_at_ms)
            spans.append(Span(state, start, last))
            return spans
        if trigger is None:
            return [Span("pending", alert.starts_at_ms, alert.last_at_ms)] if alert.state == "pending" else []
        if trigger > alert.starts_at_ms:
            spans.append(Span("pending", alert.starts_at_ms, trigger))
        spans.append(Span("firing", trigger, max(trigger, end)))
        return spans

    def changes(self, detail: AlertDetail, start_ms: int, end_ms: int) -> list[ChangeMarker]:
        """Registry changes, workflow runs and pushes in [start_ms, end_ms] of the episode's model (its MLflow
        registered model, from the ownership map) and repository (ownership map, else the context's
        ``repository``); every one in the range when neither can be told. Oldest first, at most 500."""
        _check_range(start_ms, end_ms)
        alert = detail.alert
        entry = self.config.enrichment.owner_of(alert.model_id) if alert.model_id else None
        registry = entry.registry_name() if entry else (alert.model_id or None)
        repository = (entry.repository if entry else None) or detail.context.get("repository") or None
        sql = ("SELECT timestamp_ms, event_type, source, data FROM events WHERE timestamp_ms BETWEEN ? AND ?"
               " AND list_contains(?, event_type)")  # fmt: skip
        params: list = [start_ms, end_ms, list(_CONTEXT_TYPES)]
        if registry or repository:
            sql += (
                " AND ((event_type = 'model_version_status' AND json_extract_string(data, '$.model_name') = ?)"
                " OR (event_type <> 'model_version_status' AND json_extract_string(data, '$.repository') = ?))"
            )
            params += [registry or "", str(repository or "")]
        sql += " ORDER BY timestamp_ms, event_type LIMIT ?"
        markers = []
        for at_ms, event_type, source, data_json in self._query(sql, [*params, _MAX_CHANGES]):
            marker = _marker(at_ms, event_type, source, _json_dict(data_json))
            if marker is not None:
                markers.append(marker)
        return markers

    def deliveries(self, alert_id: str) -> list[DeliveryRow]:
        """What happened to the episode's notifications at each sink (``notification_history.jsonl``), to its
        acknowledgement updates (``acknowledgements.jsonl``), and its notifications still in the live runner's
        outbox (outcome ``pending``); in time order."""
        rows = self._query(
            "SELECT sink, notification, outcome, status, attempts, retries, reason, at_ms, key FROM deliveries"
            " WHERE alert_id = ? UNION ALL SELECT sink, notification, outcome, status, attempts, retries, reason,"
            " at_ms, NULL FROM acknowledgements WHERE type = 'delivery' AND alert_id = ?",
            [alert_id, alert_id],
        )
        done = {row[8] for row in rows if row[8]}
        out = [
            DeliveryRow(
                sink or "",
                notification or "",
                outcome or "",
                status,
                attempts or 0,
                retries or 0,
                reason or "",
                at_ms or 0,
            )
            for sink, notification, outcome, status, attempts, retries, reason, at_ms, _ in rows
        ]
        out += self._outbox(alert_id, done)
        return sorted(out, key=lambda row: (row.at_ms, row.sink, row.notification))

    def _outbox(self, alert_id: str, done: set) -> list[DeliveryRow]:
        folder = self.state_dir / "outbox"
        if not folder.is_dir():
            return []
        needle = json.dumps(alert_id).encode()
        rows = []
        for path in sorted(folder.glob("c*.jsonl")):
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # delivered meanwhile
                continue
            if needle not in data:
                continue
            for line in data.splitlines():
                record = _json_dict(line.decode("utf-8", "replace"))
                alert = record.get("alert")
                if not isinstance(alert, dict) or alert.get("id") != alert_id or record.get("key") in done:
                    continue
                at_ms = alert.get("timestamp_ms")
                rows.append(DeliveryRow(str(record.get("sink") or ""), str(alert.get("notification") or ""), "pending",
                                        None, 0, 0, "", at_ms if isinstance(at_ms, int) else 0))  # fmt: skip
        return rows

    # --- integrations and aggregates ----------------------------------------------------------------------

    def integration_health(self, lookback_ms: int = 86_400_000) -> HealthOverview:
        """Each integration's health from its stored checks (``health`` rows) over the last ``lookback_ms``;
        see the module docstring for the statuses."""
        if isinstance(lookback_ms, bool) or not isinstance(lookback_ms, int) or lookback_ms <= 0:
            raise ValueError(f"lookback_ms: a positive integer (ms), got {lookback_ms!r}")
        now = self._now_ms()
        since = now - lookback_ms
        cur = self.index.cursor()
        try:
            overall = cur.execute(
                "SELECT integration, max(timestamp_ms), max(timestamp_ms) FILTER (WHERE ok) FROM health"
                " GROUP BY integration"
            ).fetchall()
            recent = {
                row[0]: row[1:]
                for row in cur.execute(
                    "SELECT integration, count(*), count(*) FILTER (WHERE NOT ok), coalesce(sum(records), 0),"
                    " min(timestamp_ms), max(timestamp_ms) FROM health WHERE timestamp_ms >= ? GROUP BY integration",
                    [since],
                ).fetchall()
            }
            newest = cur.execute(
                "SELECT integration, bool_or(NOT ok) FROM (SELECT integration, ok, row_number() OVER (PARTITION BY"
                " integration ORDER BY timestamp_ms DESC) AS n FROM health) WHERE n <= ? GROUP BY integration",
                [DEGRADED_CHECKS],
            ).fetchall()
            failures: dict[str, list[HealthFailure]] = {}
            for name, at_ms, message in cur.execute(
                "SELECT integration, timestamp_ms, message FROM (SELECT *, row_number() OVER (PARTITION BY"
                " integration ORDER BY timestamp_ms DESC) AS n FROM health WHERE NOT ok AND timestamp_ms >= ?)"
                " WHERE n <= 5 ORDER BY integration, timestamp_ms DESC",
                [since],
            ).fetchall():
                failures.setdefault(name, []).append(HealthFailure(at_ms, message))
            latest = {
                name: (latency, freshness)
                for name, latency, freshness in cur.execute(
                    "SELECT integration, arg_max(latency_ms, timestamp_ms), arg_max(freshness_ms, timestamp_ms)"
                    " FROM health GROUP BY integration"
                ).fetchall()
            }
        finally:
            cur.close()
        failing = dict(newest)
        integrations = []
        for name, last_check, last_success in sorted(overall):
            checks, failed, records, first, last = recent.get(name, (0, 0, 0, None, None))
            latency, freshness = latest.get(name, (None, None))
            interval = (last - first) / (checks - 1) if checks >= 2 and last > first else None
            stale_after = 3 * interval if interval else lookback_ms
            if now - last_check > stale_after:
                status = "stale"
            elif failing.get(name):
                status = "degraded"
            else:
                status = "healthy"
            integrations.append(
                IntegrationHealth(
                    name=name,
                    status=status,
                    last_check_ms=last_check,
                    last_success_ms=last_success,
                    latency_ms=latency if latency is not None and math.isfinite(latency) else None,
                    freshness_ms=freshness if freshness is not None and freshness >= 0 else None,
                    records=int(records),
                    checks=checks,
                    failed_checks=failed,
                    recent_failures=failures.get(name, []),
                )
            )
        status = "degraded" if any(i.status != "healthy" for i in integrations) else "healthy"
        return HealthOverview(status, now, integrations)

    def aggregates(
        self,
        metric: str,
        start_ms: int,
        end_ms: int,
        source: str | None = None,
        tags: dict[str, str] | None = None,
        aggregation: str = "mean",
        limit: int = 10_000,
    ) -> list[AggregatePoint]:
        """Series-windows of ``metric`` starting in [start_ms, end_ms) whose tags hold every key and value of
        ``tags`` (and of ``source``), valued by ``aggregation`` (one of :data:`AGGREGATIONS`; ``rate`` is the
        sum per second of the window); ordered by window, source and tags; at most ``limit``."""
        if not isinstance(metric, str) or not metric:
            raise ValueError("metric: a non-empty string")
        _check_range(start_ms, end_ms)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation: one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit: an integer from 1 to {MAX_LIMIT}, got {limit!r}")
        if source is not None and not isinstance(source, str):
            raise ValueError("source: a string or null")
        if tags is not None and not isinstance(tags, dict):
            raise ValueError("tags: an object of strings or null")
        value = {
            "rate": "sum / ((window_end_ms - window_start_ms) / 1000.0)",
            "count": "CAST(count AS DOUBLE)",
        }.get(aggregation, f'"{aggregation}"')  # a name of AGGREGATIONS, checked above
        sql = (
            f"SELECT window_start_ms, source, tags, {value} FROM aggregates"
            " WHERE name = ? AND window_start_ms >= ? AND window_start_ms < ?"
        )
        params: list = [metric, start_ms, end_ms]
        if source is not None:
            sql += " AND source = ?"
            params.append(source)
        conditions, tag_params = _tag_conditions(tags or {})
        sql += conditions + " ORDER BY window_start_ms, source, tags LIMIT ?"
        return [
            AggregatePoint(w, s, _json_dict(t), float(v) if v is not None else math.nan)
            for w, s, t, v in self._query(sql, [*params, *tag_params, limit])
        ]


def _is_prometheus(rule: object) -> bool:
    return getattr(rule, "type", "") == "prometheus"


def _alert_row(row: tuple) -> AlertRow:
    (ident, rule, name, severity, state, summary, model, environment, team, source, metric, group_json, starts,
     last, resolved, current, peak, threshold, ack_by, ack_at) = row  # fmt: skip
    return AlertRow(
        id=ident, rule=rule, name=name, severity=severity, state=state, summary=summary, model_id=model,
        environment=environment, team=team or "", source=source, metric=metric, group=_json_dict(group_json),
        starts_at_ms=starts, last_at_ms=last, resolved_at_ms=resolved, current_value=current, peak_value=peak,
        threshold=threshold, acknowledged_by=ack_by, acknowledged_at_ms=ack_at,
    )  # fmt: skip


def _with_ack(row: AlertRow, ack: tuple[str, int] | None) -> AlertRow:
    if ack is None:
        return row
    from dataclasses import replace

    return replace(row, acknowledged_by=ack[0], acknowledged_at_ms=ack[1])


def _marker(at_ms: int, event_type: str, source: str, data: dict) -> ChangeMarker | None:
    if event_type == "model_version_status":
        keys = ("version", "change", "alias", "to_stage", "stage")
        title = describe_change({k: data.get(k) for k in keys})
        model = data.get("model_name")
        return ChangeMarker(at_ms, "model_version", f"{model}: {title}" if model else title, source)
    repository = data.get("repository") or ""
    if event_type == "push":
        activity = {"kind": "push", **{k: data[k] for k in ("branch", "pusher", "after") if data.get(k) is not None}}
        return ChangeMarker(at_ms, "push", f"{repository}: {describe_deploy(activity)}".lstrip(": "), source)
    if data.get("status") not in (None, "completed") and not data.get("conclusion"):
        return None  # a run still queued or in progress
    keys = ("workflow", "run_number", "conclusion", "actor")
    activity = {"kind": "workflow_run", **{k: data[k] for k in keys if data.get(k) is not None}}
    kind = "deploy" if "deploy" in str(data.get("workflow") or "").lower() else "ci_run"
    return ChangeMarker(at_ms, kind, f"{repository}: {describe_deploy(activity)}".lstrip(": "), source)
