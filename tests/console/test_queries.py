"""ConsoleStore on real Parquet files (the storage kinds' schemas) and real DuckDB: states, filters, counts, the
alert page's queries, integration health, aggregates."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airis_mon.config import parse_config
from airis_mon.schema import Alert, AlertState, Event, HealthRecord, canonical_tags
from benchmarks.console_data import store_config, write_store
from console.queries import ConsoleStore
from console.records import AlertFilter, DeliveryRow, SeriesPoint, Span
from sinks.parquet.transform import PARQUET_KINDS

T0 = 1_795_824_000_000  # 2026-11-28T00:00:00Z
MIN = 60_000
GROUP = canonical_tags({"model_id": "fraud"})
INJECTION = "x' OR '1'='1"
DROP = "robert'); DROP TABLE alerts;--"


def write(output: Path, kind: str, name: str, rows: list) -> None:
    schema = PARQUET_KINDS[kind][0]
    table = pa.Table.from_pylist([r._asdict() if hasattr(r, "_asdict") else r for r in rows], schema=schema)
    folder = output / kind / "date=2026-11-28"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"part-{name}.parquet")


def alert(ident: str, at: int, notification: str, *, rule: str = "p95_latency", severity: str = "high",
          model: str = "fraud", group: str = GROUP, context: dict | None = None, value: float = 300.0,
          starts: int = T0 + 10 * MIN, resolved: int = 0) -> Alert:  # fmt: skip
    return Alert(
        id=ident, name=f"{rule} high", severity=severity, summary=f"{rule} {notification}", description="too slow",
        timestamp_ms=at, source="tfserving", model_id=model, environment="prod", alert_type="threshold",
        threshold=250.0, current_value=value, peak_value=value, duration_s=(at - starts) / 1000,
        status="resolved" if notification == "resolve" else "firing", notification=notification,
        starts_at_ms=starts, resolved_at_ms=resolved, rule=rule, metric="latency", group=group,
        labels=canonical_tags({"env": "prod"}), silenced=False,
        context=json.dumps(context if context is not None else {"team": "risk", "summary": "p95 breached after v3"}),
    )  # fmt: skip


def agg(start: int, tags: dict, count: int, total: float, p95: float, name: str = "latency") -> dict:
    return {"window_start_ms": start, "window_end_ms": start + MIN, "source": "tfserving", "name": name,
            "unit": "ms", "tags": canonical_tags(tags), "count": count, "sum": total, "min": 1.0,
            "max": p95 + 10, "mean": total / count, "p50": total / count, "p95": p95, "p99": p95 + 5}  # fmt: skip


CONFIG = {
    "aggregation": {"window_seconds": 60},
    "rules": [
        {"name": "p95_latency", "metric": "latency", "aggregation": "p95", "window": 120, "group_by": ["model_id"],
         "comparator": ">", "threshold": 250, "severity": "high"},
        {"name": "mean_latency", "metric": "latency", "aggregation": "mean", "group_by": ["model_id"],
         "comparator": ">", "threshold": 250, "severity": "warning"},
        {"name": "slow_instance", "metric": "latency", "aggregation": "max", "comparator": ">", "threshold": 250,
         "severity": "critical"},
    ],
    "enrichment": {"ownership": [{"model": "fraud", "team": "risk", "registry_model": "fraud-model",
                                  "repository": "acme/fraud"}]},
}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> ConsoleStore:
    out = tmp_path / "out"
    write(out, "alerts", "live1c00000001", [
        # A: resolved (trigger, repeat, resolve)
        alert("A", T0 + 12 * MIN, "trigger"), alert("A", T0 + 20 * MIN, "repeat", value=320.0),
        alert("A", T0 + 25 * MIN, "resolve", value=200.0, resolved=T0 + 25 * MIN),
        # B: firing, another team, an SQL-looking team name
        alert("B", T0 + 30 * MIN, "trigger", rule="mean_latency", severity="warning", model="churn",
              group=canonical_tags({"model_id": "churn"}), context={"team": DROP}, starts=T0 + 28 * MIN),
    ])  # fmt: skip
    write(out, "alerts", "live1c00000002", [
        # E: firing, team only in its labels (empty context), no alert_states
        alert("E", T0 + 40 * MIN, "trigger", rule="slow_instance", severity="critical", model="",
              group=canonical_tags({"instance": "i9"}), context={}, starts=T0 + 39 * MIN)._replace(
            labels=canonical_tags({"team": "infra"})),
    ])  # fmt: skip
    states = [
        AlertState(T0 + 11 * MIN, "A", "p95_latency", "tfserving", GROUP, "pending", T0 + 10 * MIN, 260.0),
        AlertState(T0 + 12 * MIN, "A", "p95_latency", "tfserving", GROUP, "firing", T0 + 10 * MIN, 300.0),
        AlertState(T0 + 24 * MIN, "A", "p95_latency", "tfserving", GROUP, "firing", T0 + 10 * MIN, 320.0),
        # D: pending once, then gone (not in the newest evaluation): not an alert
        AlertState(T0 + 24 * MIN, "D", "p95_latency", "tfserving", GROUP, "pending", T0 + 23 * MIN, 260.0),
        # C: pending in the newest evaluation, no notification
        AlertState(T0 + 45 * MIN, "C", "p95_latency", "tfserving", GROUP, "pending", T0 + 44 * MIN, 270.0),
    ]
    write(out, "alert_states", "live1c00000002", states)
    aggregates = [
        agg(T0 + 10 * MIN, {"model_id": "fraud", "instance": "i0"}, 10, 1000.0, 240.0),
        agg(T0 + 10 * MIN, {"model_id": "fraud", "instance": "i1"}, 30, 9000.0, 280.0),
        agg(T0 + 11 * MIN, {"model_id": "fraud", "instance": "i0"}, 20, 4000.0, 260.0),
        agg(T0 + 12 * MIN, {"model_id": "fraud", "instance": "i1"}, 5, 2000.0, 300.0),
        agg(T0 + 10 * MIN, {"model_id": "churn", "instance": "i0"}, 7, 7000.0, 999.0),  # another model
        agg(T0 + 10 * MIN, {"model_id": "fraud", "instance": "i0"}, 9, 9.0, 999.0, name="other_metric"),
        agg(T0 + 40 * MIN, {"instance": "i9"}, 2, 10.0, 8.0),
        agg(T0 + 40 * MIN, {"instance": "i9", "zone": "b"}, 2, 10.0, 800.0),  # more tags: not E's series
    ]
    for shard in (0, 1):
        write(out, "aggregates", f"live1c00000001-s00{shard}", aggregates[shard::2])
    events = [
        Event(T0 + 5 * MIN, "model_version_status", "mlflow", "info", json.dumps(
            {"model_name": "fraud-model", "version": "3", "change": "model_version_alias.created",
             "alias": "champion"})),
        Event(T0 + 6 * MIN, "workflow_run", "github", "info", json.dumps(
            {"repository": "acme/fraud", "workflow": "Deploy prod", "run_number": 48, "status": "completed",
             "conclusion": "success", "actor": "alice"})),
        Event(T0 + 7 * MIN, "workflow_run", "github", "info", json.dumps(
            {"repository": "acme/fraud", "workflow": "tests", "run_number": 49, "status": "completed",
             "conclusion": "failure"})),
        Event(T0 + 8 * MIN, "workflow_run", "github", "info", json.dumps(
            {"repository": "acme/fraud", "workflow": "deploy", "run_number": 50, "status": "in_progress"})),
        Event(T0 + 9 * MIN, "push", "github", "info", json.dumps(
            {"repository": "acme/fraud", "branch": "main", "pusher": "bob", "after": "1a2b3c4d5e"})),
        Event(T0 + 9 * MIN, "push", "github", "info", json.dumps({"repository": "acme/other", "branch": "main"})),
        Event(T0 + 9 * MIN, "model_version_status", "mlflow", "info", json.dumps({"model_name": "churn"})),
        Event(T0 + 9 * MIN, "deploy", "github", "info", "{}"),
    ]  # fmt: skip
    write(out, "events", "live1c00000001", events)
    health = [HealthRecord(T0 + i * MIN, "mlflow", True, "ok", 10.0 + i, 500, 3) for i in range(50)]
    health += [HealthRecord(T0 + i * MIN, "github", i < 48, "ok" if i < 48 else f"HTTP 503 #{i}", 20.0, -1, 1)
               for i in range(50)]  # fmt: skip
    health += [HealthRecord(T0 + i * MIN, "ldap", True, "ok", 5.0, 100, 2) for i in range(0, 30, 5)]
    write(out, "health", "live1c00000001", health)
    history = [
        {"key": "k1", "sink": "slack", "alert_id": "A", "rule": "p95_latency", "notification": "trigger",
         "outcome": "delivered", "status": 200, "attempts": 1, "retries": 0, "reason": "", "at_ms": T0 + 12 * MIN + 5},
        {"key": "k2", "sink": "pagerduty", "alert_id": "A", "rule": "p95_latency", "notification": "trigger",
         "outcome": "dead_lettered", "status": 400, "attempts": 1, "retries": 0, "reason": "HTTP 400",
         "at_ms": T0 + 12 * MIN + 9},
        {"key": "k3", "sink": "slack", "alert_id": "B", "rule": "mean_latency", "notification": "trigger",
         "outcome": "delivered", "status": 200, "attempts": 2, "retries": 1, "reason": "", "at_ms": T0 + 30 * MIN},
    ]  # fmt: skip
    (out / "notification_history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    acks = [
        {"type": "ack", "alert_id": "B", "by": "ana", "via": "slack", "at_ms": T0 + 31 * MIN},
        {"type": "ack", "alert_id": "B", "by": "bo", "via": "console", "at_ms": T0 + 32 * MIN},
        {"type": "delivery", "alert_id": "B", "sink": "slack", "notification": "slack_update", "outcome": "delivered",
         "status": 200, "attempts": 1, "retries": 0, "reason": "", "at_ms": T0 + 31 * MIN + 100},
        {"type": "note", "alert_id": "B", "by": "eve", "at_ms": 1},
    ]  # fmt: skip
    (out / "acknowledgements.jsonl").write_text("".join(json.dumps(a) + "\n" for a in acks))
    outbox = out / "state" / "outbox"
    outbox.mkdir(parents=True)
    repeat = alert("A", T0 + 20 * MIN, "repeat", value=320.0)._asdict()
    (outbox / "c00000003.jsonl").write_text(
        json.dumps({"key": "k1", "sink": "slack", "alert": alert("A", T0 + 12 * MIN, "trigger")._asdict()}) + "\n"
        + json.dumps({"key": "k9", "sink": "slack", "alert": repeat}) + "\n"
    )  # fmt: skip
    config = parse_config(CONFIG, tmp_path)
    console = ConsoleStore(out, config, tmp_path / "index.duckdb", clock=lambda: (T0 + 50 * MIN) / 1000)
    console.refresh()
    yield console
    console.close()


def test_states_counts_and_order(store: ConsoleStore):
    page = store.alerts(AlertFilter())
    assert [(row.id, row.state) for row in page.alerts] == [
        ("C", "pending"), ("E", "firing"), ("B", "firing"), ("A", "resolved"),
    ]  # fmt: skip
    assert page.counts == {"firing": 2, "pending": 1, "resolved": 1} and page.total == 4
    a = {row.id: row for row in page.alerts}
    assert (a["A"].starts_at_ms, a["A"].last_at_ms, a["A"].resolved_at_ms) == (
        T0 + 10 * MIN,
        T0 + 25 * MIN,
        T0 + 25 * MIN,
    )
    assert (a["A"].peak_value, a["A"].current_value, a["A"].team, a["A"].group) == (
        320.0,
        200.0,
        "risk",
        {"model_id": "fraud"},
    )
    assert (a["B"].acknowledged_by, a["B"].acknowledged_at_ms) == ("ana", T0 + 31 * MIN)  # the first ack counts
    assert a["A"].acknowledged_by is None
    assert a["E"].team == "infra"  # from the labels when the context has none
    assert (a["C"].severity, a["C"].team, a["C"].model_id, a["C"].starts_at_ms) == (
        "high",
        "risk",
        "fraud",
        T0 + 44 * MIN,
    )
    assert "D" not in a  # pending in an older evaluation only


def test_filters_paging_and_counts_over_the_whole_filter(store: ConsoleStore):
    firing = store.alerts(AlertFilter(state="firing"))
    assert [row.id for row in firing.alerts] == ["E", "B"] and firing.total == 2
    assert firing.counts == {"firing": 2, "pending": 1, "resolved": 1}
    assert [r.id for r in store.alerts(AlertFilter(state="pending")).alerts] == ["C"]
    assert [r.id for r in store.alerts(AlertFilter(team="risk")).alerts] == ["C", "A"]
    assert [r.id for r in store.alerts(AlertFilter(model="churn")).alerts] == ["B"]
    assert [r.id for r in store.alerts(AlertFilter(rule="p95_latency", severity="high")).alerts] == ["C", "A"]
    assert [r.id for r in store.alerts(AlertFilter(resolved_since_ms=T0 + 26 * MIN)).alerts] == ["C", "E", "B"]
    second = store.alerts(AlertFilter(limit=2, offset=1))
    assert [r.id for r in second.alerts] == ["E", "B"] and second.total == 4
    with pytest.raises(ValueError, match="state"):
        store.alerts(AlertFilter(state="open"))
    with pytest.raises(ValueError, match="limit"):
        store.alerts(AlertFilter(limit=0))


def test_sql_looking_values_are_plain_values(store: ConsoleStore):
    assert store.alerts(AlertFilter(team=INJECTION)).total == 0
    assert store.alerts(AlertFilter(rule=INJECTION, state="resolved")).alerts == []
    assert [r.id for r in store.alerts(AlertFilter(team=DROP)).alerts] == ["B"]
    assert store.alert(INJECTION) is None
    assert store.deliveries(INJECTION) == []
    assert store.aggregates("latency", T0, T0 + 60 * MIN, tags={"model_id": INJECTION}) == []
    assert store.alerts(AlertFilter()).total == 4  # the tables are all still there


def test_alert_detail(store: ConsoleStore):
    detail = store.alert("A")
    assert detail.alert.state == "resolved"
    assert (detail.description, detail.alert_type, detail.labels) == ("too slow", "threshold", {"env": "prod"})
    assert detail.context["team"] == "risk" and detail.context_sentence == "p95 breached after v3"
    assert (detail.aggregation, detail.window_s) == ("p95", 120)
    assert [(n.notification, n.timestamp_ms) for n in detail.notifications] == [
        ("trigger", T0 + 12 * MIN), ("repeat", T0 + 20 * MIN), ("resolve", T0 + 25 * MIN),
    ]  # fmt: skip
    assert (store.alert("B").aggregation, store.alert("B").window_s) == ("mean", 60)
    pending = store.alert("C")
    assert pending.alert.state == "pending" and pending.notifications == []
    assert store.alert("D") is None and store.alert("nope") is None


def test_series_combines_the_group_as_the_rule_does(store: ConsoleStore):
    detail = store.alert("A")  # p95 over 2-minute windows, group model_id=fraud: max of the parts' p95
    assert store.series(detail, T0, T0 + 60 * MIN) == [
        SeriesPoint(T0 + 10 * MIN, 280.0),  # windows 10 and 11 (i0, i1): max(240, 280, 260); churn's 999 left out
        SeriesPoint(T0 + 12 * MIN, 300.0),
    ]
    mean = store.alert("B")  # mean_latency of churn: count-weighted
    assert store.series(mean, T0, T0 + 60 * MIN) == [SeriesPoint(T0 + 10 * MIN, 1000.0)]
    # a rule without group_by charts exactly the alert's series, not one with more tags
    assert store.series(store.alert("E"), T0, T0 + 60 * MIN) == [SeriesPoint(T0 + 40 * MIN, 18.0)]  # max, not 810
    assert store.series(detail, T0 + 30 * MIN, T0 + 60 * MIN) == []


def test_series_mean_by_hand(store: ConsoleStore, tmp_path: Path):
    from dataclasses import replace

    detail = replace(store.alert("A"), aggregation="mean", window_s=60)
    assert store.series(detail, T0, T0 + 60 * MIN) == [
        SeriesPoint(T0 + 10 * MIN, (1000.0 + 9000.0) / 40),
        SeriesPoint(T0 + 11 * MIN, 200.0),
        SeriesPoint(T0 + 12 * MIN, 400.0),
    ]


def test_spans_from_alert_states_or_derived(store: ConsoleStore):
    assert store.spans(store.alert("A")) == [
        Span("pending", T0 + 10 * MIN, T0 + 11 * MIN),
        Span("firing", T0 + 11 * MIN, T0 + 25 * MIN),
    ]
    # B: no alert_states rows: pending from its start to the trigger, firing until now
    assert store.spans(store.alert("B")) == [
        Span("pending", T0 + 28 * MIN, T0 + 30 * MIN),
        Span("firing", T0 + 30 * MIN, T0 + 50 * MIN),
    ]
    assert store.spans(store.alert("C")) == [Span("pending", T0 + 44 * MIN, T0 + 45 * MIN)]


def test_changes_of_the_alerts_model_and_repository(store: ConsoleStore):
    changes = store.changes(store.alert("A"), T0, T0 + 60 * MIN)
    assert [(c.at_ms, c.kind, c.title) for c in changes] == [
        (T0 + 5 * MIN, "model_version", "fraud-model: model v3 became champion"),
        (T0 + 6 * MIN, "deploy", "acme/fraud: run #48 of Deploy prod (success, by alice)"),
        (T0 + 7 * MIN, "ci_run", "acme/fraud: run #49 of tests (failure)"),
        (T0 + 9 * MIN, "push", "acme/fraud: a push to main by bob (1a2b3c4)"),
    ]
    assert store.changes(store.alert("A"), T0 + 6 * MIN, T0 + 8 * MIN)[0].kind == "deploy"
    assert [c.title for c in store.changes(store.alert("B"), T0, T0 + 60 * MIN)] == [
        "churn: the model changed (unknown change)"
    ]
    with pytest.raises(ValueError, match="end_ms"):
        store.changes(store.alert("A"), T0 + 1, T0)


def test_deliveries_with_acknowledgements_and_pending_outbox_lines(store: ConsoleStore):
    assert store.deliveries("A") == [
        DeliveryRow("slack", "trigger", "delivered", 200, 1, 0, "", T0 + 12 * MIN + 5),
        DeliveryRow("pagerduty", "trigger", "dead_lettered", 400, 1, 0, "HTTP 400", T0 + 12 * MIN + 9),
        DeliveryRow("slack", "repeat", "pending", None, 0, 0, "", T0 + 20 * MIN),  # k9; k1 is recorded already
    ]
    assert store.deliveries("B") == [
        DeliveryRow("slack", "trigger", "delivered", 200, 2, 1, "", T0 + 30 * MIN),
        DeliveryRow("slack", "slack_update", "delivered", 200, 1, 0, "", T0 + 31 * MIN + 100),
    ]
    assert store.alert("A").deliveries == store.deliveries("A")


def test_integration_health_statuses(store: ConsoleStore):
    health = store.integration_health(lookback_ms=3_600_000)
    by_name = {i.name: i for i in health.integrations}
    assert health.overall_status == "degraded" and health.as_of_ms == T0 + 50 * MIN
    mlflow, github, ldap = by_name["mlflow"], by_name["github"], by_name["ldap"]
    assert (mlflow.status, mlflow.checks, mlflow.failed_checks, mlflow.records) == ("healthy", 50, 0, 150)
    assert (mlflow.last_check_ms, mlflow.last_success_ms, mlflow.latency_ms, mlflow.freshness_ms) == (
        T0 + 49 * MIN, T0 + 49 * MIN, 59.0, 500)  # fmt: skip
    assert (github.status, github.failed_checks, github.last_success_ms, github.freshness_ms) == (
        "degraded",
        2,
        T0 + 47 * MIN,
        None,
    )
    assert [f.message for f in github.recent_failures] == ["HTTP 503 #49", "HTTP 503 #48"]
    assert ldap.status == "stale"  # every 5 min, silent for 25 min
    later = ConsoleStore(store.output, store.config, None, clock=lambda: (T0 + 400 * MIN) / 1000)
    later.refresh()
    assert {i.name: i.status for i in later.integration_health().integrations} == dict.fromkeys(
        ("github", "ldap", "mlflow"), "stale")  # fmt: skip
    with pytest.raises(ValueError, match="lookback_ms"):
        store.integration_health(0)


def test_aggregates_query(store: ConsoleStore):
    points = store.aggregates("latency", T0, T0 + 11 * MIN, tags={"model_id": "fraud"}, aggregation="p95")
    assert [(p.window_start_ms, p.tags["instance"], p.value) for p in points] == [
        (T0 + 10 * MIN, "i0", 240.0), (T0 + 10 * MIN, "i1", 280.0),
    ]  # fmt: skip
    rate = store.aggregates("latency", T0 + 10 * MIN, T0 + 11 * MIN, source="tfserving", aggregation="rate", limit=1)
    assert len(rate) == 1 and rate[0].value == pytest.approx(7000.0 / 60)  # churn's, first by tags
    assert store.aggregates("latency", T0, T0 + 60 * MIN, source="nope") == []
    with pytest.raises(ValueError, match="aggregation"):
        store.aggregates("latency", T0, T0 + MIN, aggregation="mean; DROP TABLE aggregates")
    with pytest.raises(ValueError, match="limit"):
        store.aggregates("latency", T0, T0 + MIN, limit=0)


def test_filter_options(store: ConsoleStore):
    options = store.filter_options()
    assert options["severity"] == ["critical", "high", "warning"]
    assert options["rule"] == ["mean_latency", "p95_latency", "slow_instance"]
    assert options["team"] == sorted(["infra", "risk", DROP])
    assert options["model"] == ["churn", "fraud"]


def test_a_generated_store_answers_its_shape(tmp_path: Path):
    shape = write_store(tmp_path / "out", series=30, windows=90, alerts=120, seed=7)
    store = ConsoleStore(shape.output, store_config(shape), None, clock=lambda: shape.end_ms / 1000)
    store.refresh()
    page = store.alerts(AlertFilter(limit=1000))
    assert page.counts == {state: Counter(shape.states.values())[state] for state in ("firing", "pending", "resolved")}
    assert {row.id: row.state for row in page.alerts} == shape.states
    assert {row.id: row.acknowledged_by for row in page.alerts if row.acknowledged_by} == shape.acknowledged
    pending = sum(1 for alert_id in shape.alert_ids for row in store.deliveries(alert_id) if row.outcome == "pending")
    assert pending == shape.pending_outbox
    for alert_id in shape.alert_ids[:20]:
        detail = store.alert(alert_id)
        assert detail is not None and store.spans(detail)
        if detail.alert.state != "pending":
            assert store.series(detail, detail.alert.starts_at_ms - 600_000, detail.alert.last_at_ms)
    store.close()


def test_the_output_of_a_batch_run(small_day: Path):
    """pipelines.main on a small recorded day: the store answers what the run wrote (alerts-RUN.jsonl, the
    aggregates, the health rows)."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.main", "--runner", "DirectRunner", "--config",
         str(small_day / "config.yaml")],
        cwd=repo, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = small_day / "out"
    from airis_mon.config import load_config

    config = load_config(small_day / "config.yaml")
    store = ConsoleStore(out, config, None, clock=lambda: (T0 + 86_400_000) / 1000)
    store.refresh()
    lines = [json.loads(line) for path in out.glob("alerts-*.jsonl") for line in path.read_text().splitlines()]
    expected = {a["id"]: "resolved" if any(b["id"] == a["id"] and b["notification"] == "resolve" for b in lines)
                else "firing" for a in lines}  # fmt: skip
    page = store.alerts(AlertFilter())
    assert {row.id: row.state for row in page.alerts} == expected and expected
    latency = next(row for row in page.alerts if row.rule == "latency")
    detail = store.alert(latency.id)
    assert (detail.aggregation, detail.window_s) == ("p95", 60)
    assert len(detail.notifications) == sum(1 for a in lines if a["id"] == latency.id)
    aggregates = pq.read_table(out / "aggregates").to_pylist()
    by_hand = sorted(
        (r["window_start_ms"], r["p95"])
        for r in aggregates
        if r["name"] == "inference_latency" and json.loads(r["tags"]) == latency.group and r["source"] == latency.source
    )
    assert [(p.window_start_ms, p.value) for p in store.series(detail, T0, T0 + 3_600_000)] == by_hand and by_hand
    health = store.integration_health()
    report = json.loads((out / "health_report.json").read_text())
    assert [i.name for i in health.integrations] == sorted(report["integrations"])
    assert all(i.checks >= 1 for i in health.integrations)
    store.close()
