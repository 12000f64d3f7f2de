"""BigQueryFeed with the official google-cloud-bigquery client against a loopback BigQuery peer: rows loaded by
the BigQuery sink's own row conversion come back into the console's index, and the console answers from them as
from the same records stored as Parquet; incremental pulls, re-run duplicates, errors, the config."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from google.api_core.exceptions import BadRequest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from airis_mon.config import parse_config
from airis_mon.errors import ConfigError
from airis_mon.schema import Event, HealthRecord, canonical_tags
from console.bigquery_feed import BigQueryFeed, BigQueryFeedError
from console.index import FEED_FILE_ID
from console.queries import ConsoleStore
from console.records import AlertFilter
from sinks.bigquery.schema import EVENT_TIME, RUN_KEY, TABLES
from sinks.bigquery.transform import record_rows, table_rows
from sinks.parquet.transform import PARQUET_KINDS
from tests.console.test_queries import CONFIG, MIN, T0, agg, alert, write
from tests.sinks.receivers import Receiver, Recorded

PROJECT, DATASET, PREFIX = "proj-1", "airis", "airis_mon_"
RUN = "run0a1b2c"
NOW_S = (T0 + 50 * MIN) / 1000
_SHAPE = re.compile(
    r"SELECT (?P<columns>(?:`\w+`, )*`\w+`) FROM `(?P<table>[\w.-]+)` WHERE event_time >= @since ORDER BY event_time"
)


def _error(status: int, reason: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = {"error": {"code": status, "message": message, "errors": [{"message": message, "domain": "global",
                                                                    "reason": reason}],
                      "status": {400: "INVALID_ARGUMENT", 404: "NOT_FOUND"}.get(status, "UNAVAILABLE")}}  # fmt: skip
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class BigQueryPeer(Receiver):
    """A loopback BigQuery REST peer for ``jobs.query`` (``POST /bigquery/v2/projects/P/queries``), what the
    client's ``query_and_wait`` sends.

    It holds each table (``project.dataset.name``) as a DuckDB table of the sink's columns (the kind's Arrow
    schema, ``event_time`` TIMESTAMPTZ, ``run_key``) and answers only the one SQL shape the feed sends,
    ``SELECT `c1`, ... FROM `p.d.t` WHERE event_time >= @since ORDER BY event_time``: it runs that in DuckDB with
    the backquoted table name replaced by its DuckDB table, the columns double-quoted and ``@since`` bound to the
    TIMESTAMP query parameter. Any other SQL shape, a missing or mistyped ``since`` parameter, legacy SQL gets
    BigQuery's 400 error body (``invalidQuery``); an unknown table its 404 (``notFound``). The answer is one page
    (``jobComplete``, ``totalRows``, no ``pageToken``) in BigQuery's JSON row encoding: ``rows: [{"f": [{"v":
    ...}]}]``, INTEGER and FLOAT as strings, BOOLEAN ``"true"``/``"false"``, TIMESTAMP as int64 microseconds
    when ``formatOptions.useInt64Timestamp`` is set (else float seconds), NULL as null. While ``fail`` is set,
    every query gets that answer instead. ``queries``: (table, since, rows answered) per answered query.
    """

    def __init__(self):
        self.db = duckdb.connect(":memory:")
        self.tables: dict[str, str] = {}
        self.fail: tuple[int, dict[str, str], bytes] | None = None
        self.queries: list[tuple[str, datetime, int]] = []
        self._db_lock = threading.Lock()
        super().__init__(self._answer)

    @staticmethod
    def _schema(kind: str) -> pa.Schema:
        arrow = TABLES[kind].arrow_schema
        return arrow.append(pa.field(EVENT_TIME, pa.timestamp("ms", tz="UTC"))).append(pa.field(RUN_KEY, pa.string()))

    def append(self, kind: str, rows: list[dict], prefix: str = PREFIX) -> None:
        """Append BigQuery row dicts (as the sink produces them) to ``PROJECT.DATASET.PREFIXkind``."""
        name = f"{PROJECT}.{DATASET}.{prefix}{kind}"
        table = pa.Table.from_pylist(rows, schema=self._schema(kind))
        with self._db_lock:
            if name not in self.tables:
                self.tables[name] = f"t{len(self.tables)}_{kind}"
                self.db.register("empty", pa.Table.from_pylist([], schema=self._schema(kind)))
                self.db.execute(f"CREATE TABLE {self.tables[name]} AS SELECT * FROM empty")
                self.db.unregister("empty")
            self.db.register("batch", table)
            self.db.execute(f"INSERT INTO {self.tables[name]} SELECT * FROM batch")
            self.db.unregister("batch")

    def _answer(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        if request.method != "POST" or request.path.split("?")[0] != f"/bigquery/v2/projects/{PROJECT}/queries":
            return _error(404, "notFound", f"Not found: {request.method} {request.path}")
        if self.fail is not None:
            return self.fail
        body = json.loads(request.body)
        shape = _SHAPE.fullmatch(body.get("query", ""))
        params = body.get("queryParameters") or []
        if body.get("useLegacySql") is not False or shape is None:
            return _error(400, "invalidQuery", "Syntax error: this peer answers only the feed's query shape")
        if [(p.get("name"), p.get("parameterType", {}).get("type")) for p in params] != [("since", "TIMESTAMP")]:
            return _error(400, "invalidQuery", "Query parameter 'since' not found or not a TIMESTAMP")
        since = datetime.fromisoformat(params[0]["parameterValue"]["value"])
        table = shape["table"]
        if table not in self.tables:
            return _error(404, "notFound", f"Not found: Table {table} was not found in location US")
        kind = self.tables[table].split("_", 1)[1]
        columns = [c.strip("`") for c in shape["columns"].split(", ")]
        types = {f["name"]: f["type"] for f in TABLES[kind].table_schema()["fields"]}
        if any(c not in types for c in columns):
            return _error(400, "invalidQuery", "Unrecognized name")
        with self._db_lock:
            found = self.db.execute(
                f"SELECT {', '.join(chr(34) + c + chr(34) for c in columns)} FROM {self.tables[table]}"
                f" WHERE event_time >= ? ORDER BY event_time",
                [since],
            ).fetchall()
        micros = bool(body.get("formatOptions", {}).get("useInt64Timestamp"))
        rows = [{"f": [{"v": _encode(value, micros)} for value in row]} for row in found]
        self.queries.append((table, since, len(rows)))
        answer = {
            "kind": "bigquery#queryResponse",
            "schema": {"fields": [{"name": c, "type": types[c], "mode": "NULLABLE"} for c in columns]},
            "jobReference": {"projectId": PROJECT, "jobId": f"job_{len(self.queries)}", "location": "US"},
            "totalRows": str(len(rows)),
            "totalBytesProcessed": "0",
            "jobComplete": True,
            "cacheHit": False,
        }
        if rows:
            answer["rows"] = rows
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()


def _encode(value: object, micros: bool) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
        us = delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds
        return str(us) if micros else f"{us / 1e6:.6f}"
    return str(value)


# --- the records, stored both ways ---------------------------------------------------------------------------

ALERTS = [
    alert("A", T0 + 12 * MIN, "trigger"), alert("A", T0 + 20 * MIN, "repeat", value=320.0),
    alert("A", T0 + 25 * MIN, "resolve", value=200.0, resolved=T0 + 25 * MIN),
    alert("B", T0 + 30 * MIN, "trigger", rule="mean_latency", severity="warning", model="churn",
          group=canonical_tags({"model_id": "churn"}), context={"team": "growth"}, starts=T0 + 28 * MIN),
]  # fmt: skip
AGGREGATES = [
    agg(T0 + 10 * MIN, {"model_id": "fraud", "instance": "i0"}, 10, 1000.0, 240.0),
    agg(T0 + 10 * MIN, {"model_id": "fraud", "instance": "i1"}, 30, 9000.0, 280.0),
    agg(T0 + 11 * MIN, {"model_id": "fraud", "instance": "i0"}, 20, 4000.0, 260.0),
    agg(T0 + 12 * MIN, {"model_id": "fraud", "instance": "i1"}, 5, 2000.0, 300.0),
    agg(T0 + 10 * MIN, {"model_id": "churn", "instance": "i0"}, 7, 7000.0, 999.0),
]
EVENTS = [
    Event(T0 + 6 * MIN, "workflow_run", "github", "info", json.dumps(
        {"repository": "acme/fraud", "workflow": "Deploy prod", "run_number": 48, "status": "completed",
         "conclusion": "success", "actor": "alice"})),
    Event(T0 + 9 * MIN, "push", "github", "info", json.dumps(
        {"repository": "acme/fraud", "branch": "main", "pusher": "bob", "after": "1a2b3c4d5e"})),
]  # fmt: skip
HEALTH = [HealthRecord(T0 + i * MIN, "mlflow", True, "ok", 10.0 + i, 500, 3) for i in range(50)]
HEALTH += [HealthRecord(T0 + i * MIN, "github", i < 48, "ok" if i < 48 else f"HTTP 503 #{i}", 20.0, -1, 1)
           for i in range(50)]  # fmt: skip


def _aggregate_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=PARQUET_KINDS["aggregates"][0])


def load_bigquery(peer: BigQueryPeer, alerts=ALERTS, aggregates=AGGREGATES, events=EVENTS, health=HEALTH) -> None:
    """What the BigQuery sink would have appended for these records (its own row conversion)."""
    peer.append("alerts", list(record_rows(alerts, "alerts", RUN)))
    peer.append("aggregates", list(table_rows(_aggregate_table(aggregates), "aggregates", RUN)))
    peer.append("events", list(record_rows(events, "events", RUN)))
    peer.append("health", list(record_rows(health, "health", RUN)))


@pytest.fixture
def peer():
    with BigQueryPeer() as server:
        yield server


def client_for(peer: BigQueryPeer) -> bigquery.Client:
    return bigquery.Client(
        project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": peer.url}
    )


def fed_store(tmp_path: Path, peer: BigQueryPeer, **feed_options) -> ConsoleStore:
    feed_options.setdefault("lookback_ms", 3650 * 86_400_000)  # the records are of 2026-11-28
    feed = BigQueryFeed(PROJECT, DATASET, PREFIX, client=client_for(peer), timeout_s=2.0, **feed_options)
    empty = tmp_path / "empty-output"
    empty.mkdir(exist_ok=True)
    return ConsoleStore(empty, parse_config(CONFIG, tmp_path), tmp_path / "fed.duckdb", clock=lambda: NOW_S, feed=feed)


def parquet_store(tmp_path: Path) -> ConsoleStore:
    out = tmp_path / "parquet-output"
    write(out, "alerts", "r1", ALERTS)
    write(out, "aggregates", "r1", AGGREGATES)
    write(out, "events", "r1", EVENTS)
    write(out, "health", "r1", HEALTH)
    return ConsoleStore(out, parse_config(CONFIG, tmp_path), tmp_path / "pq.duckdb", clock=lambda: NOW_S)


def answers(store: ConsoleStore) -> dict:
    """Everything the console's pages ask, for comparing two stores."""
    detail = {ident: store.alert(ident) for ident in ("A", "B", "nope")}
    return {
        "alerts": store.alerts(AlertFilter()),
        "resolved": store.alerts(AlertFilter(state="resolved")),
        "options": store.filter_options(),
        "detail": detail,
        "series": {i: store.series(detail[i], T0, T0 + 60 * MIN) for i in ("A", "B")},
        "changes": store.changes(detail["A"], T0, T0 + 60 * MIN),
        "health": store.integration_health(lookback_ms=3_600_000),
        "aggregates": store.aggregates("latency", T0, T0 + 60 * MIN, aggregation="p95"),
    }


def count(store: ConsoleStore, kind: str) -> int:
    return store._query(f"SELECT count(*) FROM {kind}")[0][0]


# --- tests -----------------------------------------------------------------------------------------------------


def test_fed_index_answers_as_the_parquet_store(tmp_path: Path, peer: BigQueryPeer):
    load_bigquery(peer)
    fed, stored = fed_store(tmp_path, peer), parquet_store(tmp_path)
    assert fed.refresh() == len(ALERTS) + len(AGGREGATES) + len(EVENTS) + len(HEALTH)
    stored.refresh()
    got, want = answers(fed), answers(stored)
    assert got == want
    # the answers are not trivially empty
    assert [row.id for row in got["alerts"].alerts] == ["B", "A"] and got["detail"]["A"].alert.state == "resolved"
    assert (
        got["series"]["A"] and got["changes"] and {i.name for i in got["health"].integrations} == {"mlflow", "github"}
    )
    # one query per kind, of the feed's one shape, on the sink's tables; nothing came from files
    kinds = ("aggregates", "alerts", "events", "health")
    assert sorted(q[0] for q in peer.queries) == [f"{PROJECT}.{DATASET}.{PREFIX}{k}" for k in kinds]
    assert fed._query("SELECT DISTINCT file_id FROM alerts") == [(FEED_FILE_ID,)]
    assert fed._query("SELECT count(*) FROM loaded_files") == [(0,)]


def test_incremental_pull_reads_only_newer_rows(tmp_path: Path, peer: BigQueryPeer):
    load_bigquery(peer)
    overlap = 5 * MIN
    fed = fed_store(tmp_path, peer, overlap_ms=overlap)
    fed.refresh()
    first = len(peer.queries)
    later = [alert("F", T0 + 55 * MIN, "trigger", rule="slow_instance", severity="critical", starts=T0 + 54 * MIN)]
    load_bigquery(peer, alerts=later, aggregates=[], events=[], health=[])
    fed.refresh()
    second = {table.rsplit("_", 1)[-1]: (since, rows) for table, since, rows in peer.queries[first:]}
    newest_alert = T0 + 30 * MIN  # B's trigger, the newest alert row held before
    since = datetime.fromtimestamp((newest_alert - overlap) / 1000, tz=timezone.utc)
    assert second["alerts"] == (since, 3)  # A's resolve (at since), B's trigger again; F new
    assert second["health"][1] == 2 * 6  # minutes 44..49 of both integrations, again (newest 49 - overlap 5)
    assert count(fed, "alerts") == len(ALERTS) + 1 and count(fed, "health") == len(HEALTH)
    assert fed.alert("F").alert.state == "firing"
    assert [row.id for row in fed.alerts(AlertFilter()).alerts] == ["F", "B", "A"]


def test_a_rerun_appending_duplicates_is_not_counted_twice(tmp_path: Path, peer: BigQueryPeer):
    load_bigquery(peer)
    load_bigquery(peer)  # the same batch input run again: BigQuery appends every row again, same run_key
    fed, stored = fed_store(tmp_path, peer), parquet_store(tmp_path)
    fed.refresh()
    stored.refresh()
    assert sum(rows for _, _, rows in peer.queries) == 2 * (len(ALERTS) + len(AGGREGATES) + len(EVENTS) + len(HEALTH))
    assert answers(fed) == answers(stored)
    assert count(fed, "alerts") == len(ALERTS) and count(fed, "aggregates") == len(AGGREGATES)
    load_bigquery(peer)  # a third copy arriving after the first pull: also dropped
    fed.refresh()
    assert answers(fed) == answers(stored) and count(fed, "health") == len(HEALTH)


@pytest.mark.parametrize(
    ("answer", "says"),
    [(_error(400, "invalidQuery", "Unrecognized name: run_key"), r"\(HTTP 400\): .*Unrecognized name: run_key"),
     (_error(404, "notFound", "Not found: Dataset proj-1:airis"), r"\(HTTP 404\): .*Not found: Dataset"),
     (_error(503, "backendError", "Backend error"), r"after retrying for 2 s \(HTTP 503\): .*Backend error")],
)  # fmt: skip
def test_a_failed_query_leaves_the_index_as_it_was(tmp_path: Path, peer: BigQueryPeer, answer, says):
    load_bigquery(peer)
    fed = fed_store(tmp_path, peer)
    fed.refresh()
    before = answers(fed)
    load_bigquery(peer, alerts=[alert("F", T0 + 55 * MIN, "trigger")], aggregates=[], events=[], health=[])
    peer.fail = answer
    with pytest.raises(BigQueryFeedError, match=says) as raised:
        fed.refresh()
    assert f"`{PROJECT}.{DATASET}.{PREFIX}aggregates`" in str(raised.value)  # the first kind pulled
    assert answers(fed) == before
    peer.fail = None
    fed.refresh()
    assert fed.alert("F") is not None


def test_an_unreachable_bigquery_is_a_clear_error(tmp_path: Path):
    with BigQueryPeer() as gone:
        client = client_for(gone)
    feed = BigQueryFeed(PROJECT, DATASET, client=client, timeout_s=0.5)
    with pytest.raises(BigQueryFeedError, match=r"BigQuery query of `proj-1\.airis\.airis_mon_alerts` failed"):
        feed.pull("alerts", T0)


def test_the_peer_refuses_other_sql(peer: BigQueryPeer):
    load_bigquery(peer)
    with pytest.raises(BadRequest, match="only the feed's query shape"):
        client_for(peer).query_and_wait(f"SELECT * FROM `{PROJECT}.{DATASET}.{PREFIX}alerts`", job_retry=None)


def test_feed_arguments_and_rows_of_another_source(tmp_path: Path, peer: BigQueryPeer):
    with pytest.raises(ValueError, match="dataset"):
        BigQueryFeed(PROJECT, "a`b")
    with pytest.raises(ValueError, match="overlap_ms"):
        BigQueryFeed(PROJECT, DATASET, overlap_ms=-1)
    with pytest.raises(ValueError, match="kind"):
        BigQueryFeed(PROJECT, DATASET).sql("alert_states")
    load_bigquery(peer)
    load_bigquery(peer, alerts=[alert("Z", T0 + 5 * MIN, "trigger")], aggregates=AGGREGATES[:1], events=EVENTS[:1],
                  health=HEALTH[:1])  # fmt: skip
    for kind in ("alerts", "aggregates", "events", "health"):  # the same rows under another table prefix
        peer.tables[f"{PROJECT}.{DATASET}.other_{kind}"] = peer.tables[f"{PROJECT}.{DATASET}.{PREFIX}{kind}"]
    fed = fed_store(tmp_path, peer)
    fed.refresh()
    assert fed.alert("Z") is not None
    fed.index.feed = BigQueryFeed(PROJECT, DATASET, "other_", client=client_for(peer), lookback_ms=3650 * 86_400_000)
    fed.refresh()  # another source: the rows of the first one go, not doubled
    assert count(fed, "alerts") == len(ALERTS) + 1
    fed.index.feed = None
    fed.refresh()  # no feed: the kinds come from (no) files again
    assert count(fed, "alerts") == 0


def test_console_bigquery_config_passes_a_feed(tmp_path: Path):
    from pipelines.console import build_services

    document = {**CONFIG, "console": {"bigquery": {"project": PROJECT, "dataset": DATASET}}}
    config = parse_config(document, tmp_path)
    services = build_services(config, tmp_path / "out")
    feed = services.store.index.feed
    assert isinstance(feed, BigQueryFeed)
    assert (feed.project, feed.dataset, feed.table_prefix) == (PROJECT, DATASET, "airis_mon_")
    services.store.close()
    assert build_services(parse_config({**CONFIG, "console": {}}, tmp_path), tmp_path / "o2").store.index.feed is None
    with pytest.raises(ConfigError, match=r"console\.bigquery\.dataset"):
        parse_config({**CONFIG, "console": {"bigquery": {"project": PROJECT, "dataset": "a`b"}}}, tmp_path)
