"""Enrichment: the context folded from events, what an alert gets, ownership tags, owner-aware routing, config."""

import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.config import parse_config
from airis_mon.enrichment import EnrichmentConfig
from airis_mon.errors import ConfigError
from airis_mon.routing import DefaultRoute, Route
from airis_mon.schema import Alert, Event, metrics_to_table
from tests.conftest import DAY_MS
from transforms.enrich import EnrichAlerts, EnrichEvents, EnrichmentContext, EnrichPoints, alert_context
from transforms.enrich.transform import enrich_points_table
from transforms.rules.notify import RouteAlerts

MIN = 60_000
OWNERSHIP = EnrichmentConfig.model_validate({
    "lookback": "2h",
    "ownership": [{
        "model": "fraud", "aliases": ["fraud-endpoint"], "registry_model": "fraud-detector", "team": "risk-ml",
        "owner": "jdoe", "slack": "risk-slack", "slack_channel": "#risk-ml", "pagerduty": "risk-pager",
        "repository": "acme/fraud",
    }],
})  # fmt: skip


def event(minute: float, event_type: str, data: dict, source: str = "test") -> Event:
    return Event(DAY_MS + int(minute * MIN), event_type, source, "info", json.dumps(data))


def alert(model_id: str = "fraud", starts_minute: float = 60, severity: str = "high", notification="trigger") -> Alert:
    starts = DAY_MS + int(starts_minute * MIN)
    return Alert(
        "a1", "p95_latency", severity, "p95 latency 300 ms > 250 ms", "", starts + MIN, "tensorflow_serving",
        model_id, "prod", "threshold", 250.0, 300.0, 300.0, 60.0, "firing", notification, starts, 0,
        "p95_latency", "inference_latency", "{}", "{}", False,
    )  # fmt: skip


USERS = event(0, "user_sync", {"count": 2, "users": [
    {"user_id": "1", "username": "jdoe", "email": "Jane.Doe@example.com", "display_name": "Jane Doe",
     "department": "Risk", "title": "ML Engineer", "groups": ["ml"]},
    {"user_id": "2", "username": "alice", "email": "alice@example.com", "display_name": "Alice", "department": "",
     "title": "", "groups": []},
]})  # fmt: skip
ALIAS = event(37, "model_version_status", {"model_name": "fraud-detector", "version": "12",
                                           "change": "model_version_alias.created", "alias": "champion",
                                           "aliases": ["champion"], "stage": "None", "run_id": "r12"})  # fmt: skip
OLD_VERSION = event(-200, "model_version_status", {"model_name": "fraud-detector", "version": "11",
                                                   "change": "model_version.created"})  # fmt: skip
RUN = event(40, "workflow_run", {"repository": "acme/fraud", "workflow": "deploy", "run_number": 481,
                                 "status": "completed", "conclusion": "success", "actor": "alice"})  # fmt: skip
RUNNING = event(59, "workflow_run", {"repository": "acme/fraud", "workflow": "deploy", "run_number": 482,
                                     "status": "in_progress", "conclusion": None})  # fmt: skip
LATE_PUSH = event(61, "push", {"repository": "acme/fraud", "branch": "main", "pusher": "bob", "after": "ab" * 20})


def context_of(*events: Event) -> EnrichmentContext:
    context = EnrichmentContext()
    for e in events:
        context.add(e)
    return context


def test_an_owned_alert_gets_its_owner_and_what_changed_within_the_lookback():
    context = context_of(USERS, OLD_VERSION, ALIAS, RUN, RUNNING, LATE_PUSH)
    details = alert_context(alert(), context, OWNERSHIP)
    assert details["summary"] == (
        "p95_latency breached 23 min after model v12 became champion; "
        "deployed by run #481 of deploy (success, by alice)"
    )
    assert details["owner"] == {"username": "jdoe", "display_name": "Jane Doe", "email": "Jane.Doe@example.com",
                                "department": "Risk", "title": "ML Engineer"}  # fmt: skip
    assert (details["team"], details["slack_channel"], details["ownership"]) == ("risk-ml", "#risk-ml", "fraud")
    assert (details["change"]["version"], details["change"]["minutes_before"]) == ("12", 23)
    assert details["deploy"]["run_number"] == 481  # not the run still in progress, nor the push after the start
    assert details["registry"] == {"model": "fraud-detector", "version": "12", "stage": "None",
                                   "aliases": ["champion"], "run_id": "r12"}  # v12 is newer than v11  # fmt: skip


def test_an_alias_of_the_model_and_the_owner_by_email_resolve_the_same_way():
    by_email = OWNERSHIP.model_copy(update={"ownership": [OWNERSHIP.ownership[0].model_copy(
        update={"owner": "jane.doe@example.com"})]})  # fmt: skip
    details = alert_context(alert("fraud-endpoint"), context_of(USERS, ALIAS), by_email)
    assert details["owner"]["username"] == "jdoe" and details["change"]["alias"] == "champion"


def test_changes_outside_the_lookback_or_after_the_start_are_not_context():
    context = context_of(ALIAS, RUN, LATE_PUSH)
    assert "summary" not in alert_context(alert(starts_minute=61 + 121), context, OWNERSHIP)  # all > 2 h before
    before_everything = alert_context(alert(starts_minute=30), context, OWNERSHIP)
    assert "change" not in before_everything and "deploy" not in before_everything
    push_only = alert_context(alert(starts_minute=65), context_of(LATE_PUSH), OWNERSHIP)
    assert push_only["summary"] == f"p95_latency breached 4 min after a push to main by bob ({'ab' * 3}a)"


def test_missing_enrichment_never_drops_anything():
    assert alert_context(alert("nobody-owns-me"), context_of(USERS, ALIAS), OWNERSHIP) == {"model": "nobody-owns-me"}
    details = alert_context(alert(), EnrichmentContext(), OWNERSHIP)
    assert details["owner"] == {"username": "jdoe"} and details["owner_in_directory"] is False
    assert "summary" not in details


def test_a_newer_user_sync_wins_whatever_the_order_events_arrive_in():
    renamed = event(10, "user_sync", {"users": [{"username": "jdoe", "display_name": "Jane D. Doe"}]})
    for order in ((USERS, renamed), (renamed, USERS)):
        assert context_of(*order).user("jdoe")["display_name"] == "Jane D. Doe"
    merged = context_of(renamed).merge(context_of(USERS))
    assert merged.user("jdoe")["display_name"] == "Jane D. Doe"


def test_enrich_alerts_in_a_pipeline_with_and_without_context_events():
    with TestPipeline() as pipeline:
        events = pipeline | "Events" >> beam.Create([USERS, ALIAS, RUN, event(1, "deploy", {})])
        alerts = pipeline | "Alerts" >> beam.Create([alert(), alert("other")])
        enriched = alerts | EnrichAlerts(OWNERSHIP, events)
        summaries = enriched | beam.Map(lambda a: (a.model_id, json.loads(a.context).get("summary", "")))
        assert_that(summaries, equal_to([
            ("fraud", "p95_latency breached 23 min after model v12 became champion; "
                      "deployed by run #481 of deploy (success, by alice)"),
            ("other", ""),
        ]))  # fmt: skip
    with TestPipeline() as pipeline:
        no_events = pipeline | "NoEvents" >> beam.Create([]).with_output_types(Event)
        kept = pipeline | "Alerts" >> beam.Create([alert()]) | EnrichAlerts(OWNERSHIP, no_events)
        assert_that(kept | beam.Map(lambda a: json.loads(a.context)["team"]), equal_to(["risk-ml"]))


def test_points_and_events_of_owned_models_carry_the_team():
    from airis_mon.schema import Metric

    table = metrics_to_table([
        Metric(DAY_MS, "tfs", "latency", 1.0, "ms", '{"model_name":"fraud"}'),
        Metric(DAY_MS, "tfs", "latency", 2.0, "ms", '{"model_name":"other"}'),
        Metric(DAY_MS, "sm", "latency", 3.0, "ms", '{"endpoint_name":"fraud-endpoint","team":"set-upstream"}'),
    ])  # fmt: skip
    with TestPipeline() as pipeline:
        points = pipeline | "Points" >> beam.Create([table]) | EnrichPoints(OWNERSHIP)
        tags = points | beam.FlatMap(lambda t: t.column("tags").to_pylist())
        assert_that(tags, equal_to([
            '{"model_name":"fraud","owner":"jdoe","team":"risk-ml"}', '{"model_name":"other"}',
            '{"endpoint_name":"fraud-endpoint","owner":"jdoe","team":"set-upstream"}',
        ]), label="tags")  # fmt: skip
        events = pipeline | "Events" >> beam.Create([ALIAS, RUN, event(0, "deploy", {"model_name": "x"})])
        owners = events | EnrichEvents(OWNERSHIP) | beam.Map(lambda e: json.loads(e.data).get("ownership"))
        expected = {"model": "fraud", "team": "risk-ml", "owner": "jdoe"}
        assert_that(owners, equal_to([expected, expected, None]), label="events")
    assert enrich_points_table(table, EnrichmentConfig()) is table  # no ownership map: untouched, no work


@pytest.mark.parametrize(
    ("model", "severity", "expected"),
    [
        ("fraud", "critical", ["risk-slack", "risk-pager", "central-pager"]),
        ("fraud", "warning", ["risk-slack"]),
        ("other", "critical", ["central-pager"]),
        ("other", "warning", ["feed"]),
    ],
)
def test_owned_alerts_go_to_the_team_and_the_rest_follows_routes_or_the_default(model, severity, expected):
    routes = (Route.model_validate({"name": "page", "match": {"severity": ["critical"]}, "sinks": ["central-pager"]}),)
    with TestPipeline() as pipeline:
        routed = (
            pipeline
            | beam.Create([alert(model, severity=severity)])
            | RouteAlerts(routes, DefaultRoute(sinks=["feed"]), OWNERSHIP)
            | beam.Map(lambda pair: pair[0])
        )
        assert_that(routed, equal_to(expected))


def test_ownership_config_errors_name_the_entry():
    sinks = [{"name": "risk-slack", "type": "notification_log", "path": "x.jsonl"}]
    document = {"sinks": sinks, "enrichment": {"ownership": [{"model": "fraud", "slack": "risk-slack",
                                                              "pagerduty": "missing"}]}}  # fmt: skip
    with pytest.raises(ConfigError) as error:
        parse_config(document, __import__("pathlib").Path("."))
    problems = "\n".join(error.value.problems)
    assert "enrichment.ownership[0].slack: names no slack sink" in problems
    assert "enrichment.ownership[0].pagerduty: names no pagerduty sink (known: none configured)" in problems
    with pytest.raises(ConfigError, match="owned twice"):
        parse_config({"enrichment": {"ownership": [{"model": "a"}, {"model": "b", "aliases": ["a"]}]}},
                     __import__("pathlib").Path("."))  # fmt: skip


def test_streaming_the_context_is_a_side_input_refreshed_by_events_and_the_newest_refresh_wins():
    """Refreshes (accumulating panes, one per context event) of the context side input: enrichment must not
    fail on several panes and must use the newest. (The local runner holds the alerts back until the side
    input has fired, so both alerts see the last refresh, the one that includes the deploy run.)"""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.testing.test_stream import TestStream

    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    stamped = beam.window.TimestampedValue
    first, second = alert(), alert()._replace(id="a2")
    stream = (
        TestStream(output_tags={"events", "alerts"})
        .add_elements([stamped(e, e.timestamp_ms / 1000) for e in (USERS, ALIAS)], tag="events")
        .advance_processing_time(301)
        .add_elements([stamped(first, first.timestamp_ms / 1000)], tag="alerts")
        .add_elements([stamped(RUN, RUN.timestamp_ms / 1000)], tag="events")
        .advance_processing_time(301)
        .add_elements([stamped(second, second.timestamp_ms / 1000)], tag="alerts")
        .advance_watermark_to_infinity(tag="events")
        .advance_watermark_to_infinity(tag="alerts")
    )
    full = ("p95_latency breached 23 min after model v12 became champion; "
            "deployed by run #481 of deploy (success, by alice)")  # fmt: skip
    with beam.Pipeline(options=options) as pipeline:
        streams = pipeline | stream
        enriched = streams["alerts"] | EnrichAlerts(OWNERSHIP, streams["events"], streaming=True)
        seen = enriched | beam.Map(lambda a: (a.id, json.loads(a.context)["summary"], json.loads(a.context)["team"]))
        assert_that(seen, equal_to([("a1", full, "risk-ml"), ("a2", full, "risk-ml")]))
