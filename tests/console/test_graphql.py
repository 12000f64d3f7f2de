"""The console's GraphQL API (console.graphql_api): the real schema executed against a real ConsoleStore over a
store written by benchmarks.console_data, with a real Acknowledger and SilenceStore on a tmp dir."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
import requests

from airis_mon.config import parse_config
from airis_mon.timeutil import ms_to_iso
from benchmarks.console_data import store_document, write_store
from console.chart import chart_range
from console.graphql_api import MAX_ALIASES, ConsoleContext, schema
from console.records import AlertFilter, Principal
from pipelines.console import build_services
from tests.console.console_server import ConsoleServer

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "console" / "schema.graphql"
READER = Principal(name="viewer", role="read")
ADMIN = Principal(name="oncall", role="admin")


class Clock:
    """The test's wall clock (epoch ms), set to the store's end."""

    def __init__(self, now_ms: int):
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A written store, the services the console builds over it (gateway spool for silences), a clock."""
    root = tmp_path_factory.mktemp("graphql")
    output = root / "output"
    shape = write_store(output, series=24, windows=90, alerts=40, seed=7)
    document = store_document(shape.models, shape.window_s)
    document["integrations"] = [{"type": "gateway", "name": "gw", "spool": str(root / "spool")}]
    document["console"] = {}
    config = parse_config(document, root)
    clock = Clock(shape.end_ms + 60_000)
    services = build_services(config, output, clock=lambda: clock.now / 1000)
    services.store.refresh()
    return shape, services, clock


def run(world, query: str, principal: Principal = READER, **variables) -> dict:
    """Execute ``query`` as ``principal``; the result as a dict (``data``, ``errors`` with extensions)."""
    _, services, clock = world
    context = ConsoleContext(
        store=services.store,
        acknowledger=services.acknowledger,
        silences=services.silences,
        principal=principal,
        now_ms=clock,
    )
    result = asyncio.run(schema.execute(query, variable_values=variables or None, context_value=context))
    answer: dict = {"data": result.data}
    if result.errors:
        answer["errors"] = [e.formatted for e in result.errors]
    return answer


def ok(answer: dict) -> dict:
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def error_of(answer: dict) -> dict:
    assert answer.get("errors"), f"expected an error, got {answer['data']}"
    return answer["errors"][0]


def test_committed_schema_is_the_codes_schema():
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == schema.as_str() + "\n", (
        "console/schema.graphql is stale; regenerate it with:\n"
        "  python -m console.graphql_api > console/schema.graphql\n"
        "(the same text as: strawberry export-schema console.graphql_api:schema)"
    )


def test_no_type_has_a_secret_field():
    names = []
    for name, kind in schema._schema.type_map.items():
        if not name.startswith("__"):
            names.append(name)
            names += list(getattr(kind, "fields", None) or {})
    assert "acknowledgedBy" in names and "createdBy" in names  # the walk sees the fields
    for word in ("token", "secret", "password", "url", "routingkey", "webhook", "apikey", "signing"):
        assert not [n for n in names if word in n.lower()], word


ALERTS = """
query($filter: AlertFilterInput, $limit: Int!, $offset: Int!) {
  alerts(filter: $filter, limit: $limit, offset: $offset) {
    total counts { firing pending resolved }
    alerts { id rule name severity state team startsAtMs startsAt lastAtMs resolvedAtMs threshold peakValue
             group { name value } acknowledgedBy acknowledgedAtMs }
  }
}"""


def test_alerts_are_what_the_store_says(world):
    _, services, _ = world
    data = ok(run(world, ALERTS, limit=1000, offset=0))["alerts"]
    page = services.store.alerts(AlertFilter(limit=1000))
    assert data["total"] == page.total == len(data["alerts"]) > 0
    assert [a["id"] for a in data["alerts"]] == [row.id for row in page.alerts]
    assert data["counts"] == {state: page.counts[state] for state in ("firing", "pending", "resolved")}
    by_id = {row.id: row for row in page.alerts}
    for alert in data["alerts"]:
        row = by_id[alert["id"]]
        assert alert["startsAtMs"] == row.starts_at_ms > 2**31  # 64-bit epoch ms, not a 32-bit Int
        assert alert["state"] == row.state and alert["rule"] == row.rule and alert["team"] == row.team
        assert alert["group"] == [{"name": k, "value": v} for k, v in sorted(row.group.items())]
        assert alert["acknowledgedBy"] == row.acknowledged_by
    states = Counter(a["state"] for a in data["alerts"])
    assert states["firing"] == data["counts"]["firing"]


def test_alerts_filter_and_paging(world):
    _, services, _ = world
    firing = ok(run(world, ALERTS, filter={"state": "firing"}, limit=1000, offset=0))["alerts"]
    assert firing["alerts"] and {a["state"] for a in firing["alerts"]} == {"firing"}
    assert firing["total"] == services.store.alerts(AlertFilter(state="firing", limit=1000)).total
    everything = ok(run(world, ALERTS, limit=1000, offset=0))["alerts"]["alerts"]
    second = ok(run(world, ALERTS, limit=5, offset=5))["alerts"]
    assert [a["id"] for a in second["alerts"]] == [a["id"] for a in everything[5:10]]
    rule = everything[0]["rule"]
    by_rule = ok(run(world, ALERTS, filter={"rule": rule}, limit=1000, offset=0))["alerts"]["alerts"]
    assert by_rule and {a["rule"] for a in by_rule} == {rule}


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"limit": 1001, "offset": 0}, "limit"),
        ({"limit": 0, "offset": 0}, "limit"),
        ({"limit": 10, "offset": -1}, "offset"),
        ({"limit": 10, "offset": 0, "filter": {"state": "burning"}}, "filter.state"),
        ({"limit": 10, "offset": 0, "filter": {"team": "x" * 300}}, "filter.team"),
    ],
)
def test_bad_alert_arguments_name_the_field(world, variables, field):
    error = error_of(run(world, ALERTS, **variables))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert field in error["message"]


DETAIL = """
query($id: String!) {
  alert(id: $id) {
    alert { id state threshold startsAtMs }
    description aggregation windowS contextSentence context labels { name value }
    notifications { notification timestampMs currentValue silenced }
    defaultStartMs defaultEndMs
    series { windowStartMs value }
    spans { state startMs endMs }
    changes { atMs kind title source }
    deliveries { sink notification outcome status attempts atMs }
  }
}"""


def _episode(world, state: str, acknowledged: bool | None = None) -> str:
    shape, _, _ = world
    for alert_id in shape.alert_ids:
        if shape.states.get(alert_id) == state and (
            acknowledged is None or (alert_id in shape.acknowledged) == acknowledged
        ):
            return alert_id
    raise AssertionError(f"the generated store has no {state} episode (acknowledged={acknowledged})")


def test_alert_detail_and_its_nested_fields_are_the_stores(world):
    _, services, clock = world
    alert_id = _episode(world, "resolved")
    data = ok(run(world, DETAIL, id=alert_id))["alert"]
    detail = services.store.alert(alert_id)
    start, end = chart_range(detail, clock())
    assert (data["defaultStartMs"], data["defaultEndMs"]) == (start, end)
    assert data["alert"]["id"] == alert_id and data["alert"]["state"] == detail.alert.state
    assert data["context"] == json.loads(json.dumps(detail.context))
    assert data["contextSentence"] == detail.context_sentence
    assert data["windowS"] == detail.window_s and data["aggregation"] == detail.aggregation
    assert [n["notification"] for n in data["notifications"]] == [n.notification for n in detail.notifications]
    series = services.store.series(detail, start, end)
    assert series, "the episode's series is empty"
    assert [(p["windowStartMs"], p["value"]) for p in data["series"]] == [(p.window_start_ms, p.value) for p in series]
    assert [(s["state"], s["startMs"], s["endMs"]) for s in data["spans"]] == [
        (s.state, s.start_ms, s.end_ms) for s in services.store.spans(detail)
    ]
    assert [(c["atMs"], c["kind"], c["title"]) for c in data["changes"]] == [
        (c.at_ms, c.kind, c.title) for c in services.store.changes(detail, start, end)
    ]
    deliveries = services.store.deliveries(alert_id)
    assert deliveries, "the episode has no deliveries"
    assert [(d["sink"], d["notification"], d["outcome"], d["atMs"]) for d in data["deliveries"]] == [
        (d.sink, d.notification, d.outcome, d.at_ms) for d in deliveries
    ]
    notifications = ok(run(world, "query($id: String!) { notifications(alertId: $id) { sink atMs } }", id=alert_id))
    assert [(d["sink"], d["atMs"]) for d in notifications["notifications"]] == [(d.sink, d.at_ms) for d in deliveries]


def test_series_takes_a_range_as_epoch_ms_or_iso(world):
    _, services, _ = world
    alert_id = _episode(world, "resolved")
    detail = services.store.alert(alert_id)
    start = detail.alert.starts_at_ms - 600_000
    end = detail.alert.starts_at_ms + 600_000
    query = """query($id: String!, $s: EpochMs, $e: EpochMs) {
        alert(id: $id) { series(start: $s, end: $e) { windowStartMs } } }"""
    by_ms = ok(run(world, query, id=alert_id, s=start, e=end))["alert"]["series"]
    by_iso = ok(run(world, query, id=alert_id, s=ms_to_iso(start), e=ms_to_iso(end)))["alert"]["series"]
    assert by_ms == by_iso == [{"windowStartMs": p.window_start_ms} for p in services.store.series(detail, start, end)]
    assert by_ms and all(start - detail.window_s * 1000 < p["windowStartMs"] < end for p in by_ms)
    backwards = error_of(run(world, query, id=alert_id, s=end, e=start))
    assert backwards["extensions"] == {"code": "BAD_USER_INPUT", "field": "end"}
    too_long = error_of(run(world, query, id=alert_id, s=start, e=start + 40 * 86_400_000))
    assert too_long["extensions"]["field"] == "end"
    not_a_time = error_of(run(world, query, id=alert_id, s="yesterday", e=end))
    assert "$s" in not_a_time["message"]


def test_an_unknown_alert_is_not_found(world):
    error = error_of(run(world, DETAIL, id="no-such-episode"))
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "id"}


def test_integration_health_is_the_stores(world):
    _, services, _ = world
    query = """query($l: DurationMs!) { integrationHealth(lookbackMs: $l) { overallStatus asOfMs
        integrations { name status lastCheckMs lastSuccessMs latencyMs freshnessMs records checks failedChecks
                       recentFailures { atMs message } } } }"""
    data = ok(run(world, query, l=86_400_000))["integrationHealth"]
    overview = services.store.integration_health(lookback_ms=86_400_000)
    assert data["overallStatus"] == overview.overall_status
    assert [(i["name"], i["status"], i["checks"], i["failedChecks"]) for i in data["integrations"]] == [
        (i.name, i.status, i.checks, i.failed_checks) for i in overview.integrations
    ]
    statuses = {i["name"]: i["status"] for i in data["integrations"]}
    assert statuses["github"] == "degraded" and statuses["ldap"] == "stale"  # as benchmarks.console_data writes them
    error = error_of(run(world, query, l=1))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "lookbackMs"}


AGGREGATES = """query($m: String!, $s: EpochMs!, $e: EpochMs!, $src: String, $tags: [TagInput!], $agg: String!) {
  aggregates(metric: $m, start: $s, end: $e, source: $src, tags: $tags, aggregation: $agg) {
    windowStartMs source tags { name value } value } }"""


def test_aggregates_are_the_stores(world):
    shape, services, _ = world
    model = shape.models[0]
    variables = {"m": "model_latency", "s": shape.start_ms, "e": shape.end_ms, "agg": "p95"}
    data = ok(run(world, AGGREGATES, **variables, tags=[{"name": "model_id", "value": model}]))["aggregates"]
    points = services.store.aggregates("model_latency", shape.start_ms, shape.end_ms, tags={"model_id": model},
                                       aggregation="p95")  # fmt: skip
    assert data and len(data) == len(points)
    assert [(p["windowStartMs"], p["value"]) for p in data] == [(p.window_start_ms, p.value) for p in points]
    assert all({"name": "model_id", "value": model} in p["tags"] for p in data)
    error = error_of(run(world, AGGREGATES, **{**variables, "agg": "median"}))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "aggregation"}


def test_filter_options_and_viewer(world):
    _, services, _ = world
    data = ok(run(world, "{ filterOptions { name values } viewer { name role } }"))
    assert {o["name"]: o["values"] for o in data["filterOptions"]} == {
        k: list(v) for k, v in services.store.filter_options().items()
    }
    assert data["viewer"] == {"name": "viewer", "role": "read"}


ACK = "mutation($id: String!) { acknowledge(alertId: $id) { alertId by atMs via first resolved pagerdutySinks } }"
CREATE = """mutation($input: SilenceInput!) { createSilence(input: $input) {
  id state createdBy comment startsAtMs endsAtMs matchers { name value isRegex isEqual } } }"""
EXPIRE = "mutation($id: String!) { expireSilence(id: $id) { id state endsAtMs } }"


def test_a_read_token_cannot_mutate(world):
    _, services, clock = world
    alert_id = _episode(world, "firing", acknowledged=False)
    before = services.acknowledger.store.get(alert_id)
    silence = {"matchers": [{"name": "rule", "value": "p95_latency"}], "endsAt": clock() + 3_600_000, "comment": "x"}
    for query, variables in ((ACK, {"id": alert_id}), (CREATE, {"input": silence}), (EXPIRE, {"id": "any"})):
        error = error_of(run(world, query, READER, **variables))
        assert error["extensions"]["code"] == "FORBIDDEN", error
        assert "admin" in error["message"]
    assert services.acknowledger.store.get(alert_id) == before is None
    assert not any(s.comment == "x" for s in services.silences.all())


def test_admin_acknowledges_once_and_again_gets_the_first(world):
    _, services, clock = world
    alert_id = _episode(world, "firing", acknowledged=False)
    first = ok(run(world, ACK, ADMIN, id=alert_id))["acknowledge"]
    assert first["alertId"] == alert_id and first["by"] == "oncall" and first["via"] == "api"
    assert first["first"] is True and first["atMs"] == clock()
    stored = services.acknowledger.store.get(alert_id)
    assert (stored.by, stored.at_ms) == ("oncall", first["atMs"])
    clock.now += 5_000
    second = ok(run(world, ACK, Principal(name="someone", role="admin"), id=alert_id))["acknowledge"]
    assert second["first"] is False and second["pagerdutySinks"] == []
    assert (second["by"], second["atMs"]) == ("oncall", first["atMs"])
    services.store.refresh()
    rows = ok(run(world, ALERTS, limit=1000, offset=0))["alerts"]["alerts"]
    (row,) = [a for a in rows if a["id"] == alert_id]
    assert (row["acknowledgedBy"], row["acknowledgedAtMs"]) == ("oncall", first["atMs"])


def test_acknowledging_an_unknown_or_malformed_id(world):
    assert error_of(run(world, ACK, ADMIN, id="0000000000000000"))["extensions"] == {
        "code": "NOT_FOUND",
        "field": "alertId",
    }
    assert error_of(run(world, ACK, ADMIN, id="../etc/passwd"))["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "alertId",
    }


def test_admin_creates_and_expires_a_silence(world):
    _, services, clock = world
    silence = {
        "matchers": [
            {"name": "rule", "value": "p95_latency"},
            {"name": "model_id", "value": "model-0.*", "isRegex": True},
        ],
        "endsAt": clock() + 3_600_000,
        "comment": "maintenance",
    }
    created = ok(run(world, CREATE, ADMIN, input=silence))["createSilence"]
    assert created["state"] == "active" and created["createdBy"] == "oncall"
    assert created["startsAtMs"] == clock() and created["endsAtMs"] == silence["endsAt"]
    assert created["matchers"][1] == {"name": "model_id", "value": "model-0.*", "isRegex": True, "isEqual": True}
    stored = services.silences.get(created["id"])
    assert stored is not None and stored.created_by == "oncall" and stored.comment == "maintenance"
    active = ok(run(world, '{ silences(state: "active") { id createdBy } }'))["silences"]
    assert {"id": created["id"], "createdBy": "oncall"} in active
    clock.now += 1_000
    expired = ok(run(world, EXPIRE, ADMIN, id=created["id"]))["expireSilence"]
    assert expired == {"id": created["id"], "state": "expired", "endsAtMs": clock()}
    assert services.silences.get(created["id"]).ends_at == clock()
    listed = ok(run(world, '{ silences(state: "expired") { id } }'))["silences"]
    assert {"id": created["id"]} in listed
    assert created["id"] not in [s["id"] for s in ok(run(world, '{ silences(state: "active") { id } }'))["silences"]]
    missing = error_of(run(world, EXPIRE, ADMIN, id="no-such-silence"))
    assert missing["extensions"] == {"code": "NOT_FOUND", "field": "id"}


def test_the_client_cannot_choose_created_by(world):
    _, _, clock = world
    silence = {"matchers": [{"name": "rule", "value": "r"}], "endsAt": clock() + 60_000, "comment": "c",
               "createdBy": "someone-else"}  # fmt: skip
    error = error_of(run(world, CREATE, ADMIN, input=silence))
    assert "createdBy" in error["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endsAt": "START"}, "input.endsAt"),  # not after startsAt
        ({"startsAt": "LONG_AGO", "endsAt": "PAST"}, "input.endsAt"),  # not in the future
        ({"matchers": [{"name": "1bad", "value": "x"}]}, "input.matchers[0].name"),
        (
            {"matchers": [{"name": "ok", "value": "x"}, {"name": "m", "value": "(", "isRegex": True}]},
            "input.matchers[1]",
        ),
        ({"matchers": []}, "input.matchers"),
        ({"comment": ""}, "input.comment"),
    ],
)
def test_bad_silences_name_the_field(world, change, field):
    _, services, clock = world
    now = clock()
    silence = {"matchers": [{"name": "rule", "value": "r"}], "startsAt": now, "endsAt": now + 60_000, "comment": "c"}
    for key, value in change.items():
        silence[key] = (
            {"START": now, "PAST": now - 60_000, "LONG_AGO": now - 120_000}.get(value, value)
            if isinstance(value, str)
            else value
        )
    before = len(services.silences.all())
    error = error_of(run(world, CREATE, ADMIN, input=silence))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
    assert len(services.silences.all()) == before


def test_bad_silence_state_names_the_field(world):
    error = error_of(run(world, '{ silences(state: "forever") { id } }'))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "state"}


def test_without_a_gateway_silences_are_empty_and_cannot_be_created(world):
    _, services, clock = world
    context = ConsoleContext(store=services.store, acknowledger=services.acknowledger, silences=None,
                             principal=ADMIN, now_ms=clock)  # fmt: skip
    listed = asyncio.run(schema.execute("{ silences { id } }", context_value=context))
    assert listed.errors is None and listed.data == {"silences": []}
    silence = {"matchers": [{"name": "rule", "value": "r"}], "endsAt": clock() + 60_000, "comment": "c"}
    created = asyncio.run(schema.execute(CREATE, variable_values={"input": silence}, context_value=context))
    assert created.errors[0].extensions["code"] == "UNAVAILABLE"


def test_query_size_limits(world):
    aliases = " ".join(f"a{i}: viewer {{ name }}" for i in range(MAX_ALIASES + 1))
    error = error_of(run(world, "{ " + aliases + " }"))
    assert "alias" in error["message"].lower()
    huge = "{ " + " ".join("viewer { name role }" for _ in range(2000)) + " }"
    assert "token" in error_of(run(world, huge))["message"].lower()
    ok(run(world, "{ " + " ".join(f"a{i}: viewer {{ name }}" for i in range(MAX_ALIASES)) + " }"))


def test_an_unexpected_error_is_masked(world):
    _, services, clock = world

    class Broken:
        def alerts(self, wanted):
            raise RuntimeError("/secret/path/console.duckdb is locked")

    context = ConsoleContext(store=Broken(), acknowledger=services.acknowledger, silences=services.silences,
                             principal=READER, now_ms=clock)  # fmt: skip
    result = asyncio.run(schema.execute("{ alerts { total } }", context_value=context))
    assert result.errors and "secret" not in result.errors[0].message
    assert result.errors[0].message == "Unexpected error."


def test_over_http_bearer_tokens_and_sessions(world, tmp_path):
    """The router as the console mounts it: a real server on loopback, Bearer tokens and a page session."""
    shape, _, _ = world
    (tmp_path / "viewer").write_text("viewer-token-0123456789")
    (tmp_path / "oncall").write_text("oncall-token-0123456789")
    document = store_document(shape.models, shape.window_s)
    document["console"] = {
        "tokens": [
            {"name": "viewer", "token": {"file": str(tmp_path / "viewer")}},
            {"name": "oncall", "token": {"file": str(tmp_path / "oncall")}, "role": "admin"},
        ]
    }
    server = ConsoleServer(document, shape.output, tmp_path)
    try:
        url = f"{server.url}/graphql"

        def post(body: dict, token: str | None = None, **kwargs) -> requests.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return requests.post(url, json=body, headers=headers, timeout=30, **kwargs)

        answer = post(
            {"query": "{ viewer { name role } alerts(limit: 3) { total alerts { id } } }"}, "viewer-token-0123456789"
        )
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        assert data["viewer"] == {"name": "viewer", "role": "read"} and len(data["alerts"]["alerts"]) == 3
        refused = post({"query": ACK, "variables": {"id": shape.alert_ids[0]}}, "viewer-token-0123456789").json()
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert post({"query": "{ viewer { name } }"}).status_code == 401
        assert post({"query": "{ viewer { name } }"}, "wrong-token").status_code == 401
        over_get = requests.get(url, params={"query": "{ viewer { name } }"}, headers={
            "Authorization": "Bearer viewer-token-0123456789"}, timeout=30)  # fmt: skip
        assert over_get.status_code != 200 or "data" not in over_get.text
        assert "graphiql" not in over_get.text.lower()
        session = server.sign_in("oncall-token-0123456789")
        without_csrf = session.post(
            url, json={"query": "{ viewer { name } }"}, headers={"Origin": server.url}, timeout=30
        )
        assert without_csrf.status_code == 403
        with_csrf = session.post(url, json={"query": "{ viewer { name role } }"}, timeout=30,
                                 headers={"Origin": server.url, "X-CSRF-Token": session.csrf})  # fmt: skip
        assert with_csrf.status_code == 200, with_csrf.text
        assert with_csrf.json()["data"]["viewer"] == {"name": "oncall", "role": "admin"}
    finally:
        server.close()
