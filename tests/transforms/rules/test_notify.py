"""Silences and routing."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.config import parse_config
from airis_mon.errors import ConfigError
from airis_mon.routing import DefaultRoute, Route, Silence, route_sinks
from tests.transforms.rules.scenarios import GROUP, T0, series, threshold_rule
from transforms.rules.engine import evaluate
from transforms.rules.notify import ApplySilences, RouteAlerts, silence

PAGE_ONLY_CRITICAL_AND_HIGH = (
    Route.model_validate(
        {"name": "page", "match": {"severity": ["critical", "high"]}, "sinks": ["pager"], "continue": True}
    ),
    Route.model_validate(
        {"name": "fraud", "match": {"labels": {"model_name": {"regex": "fraud.*"}}}, "sinks": ["fraud-chat"]}
    ),
)
DEFAULT = DefaultRoute(sinks=["feed"])


def alerts(severity="high", **rule):
    return evaluate(threshold_rule(severity=severity, **rule), GROUP, series(11, 11, 1))[
        0
    ]  # trigger at 1, resolve at 2


@pytest.mark.parametrize(
    "severity, labels, expected",
    [
        ("critical", {"model_name": "churn"}, ["pager"]),
        ("high", {"model_name": "fraud-v2"}, ["pager", "fraud-chat"]),  # continue: true
        ("warning", {"model_name": "fraud-v2"}, ["fraud-chat"]),
        ("warning", {"model_name": "churn"}, ["feed"]),  # the default route
    ],
)
def test_page_only_for_critical_and_high_is_a_route(severity, labels, expected):
    assert route_sinks(PAGE_ONLY_CRITICAL_AND_HIGH, DEFAULT, severity, labels) == expected


def test_a_silence_matches_labels_and_time_and_marks_the_alert():
    trigger, resolve = alerts()
    window = Silence.model_validate(
        {"name": "m", "matchers": {"model_name": "fraud", "severity": {"regex": "high|critical"}},
         "starts_at": T0 + 60_000, "ends_at": "2026-11-28T00:02:00Z"}
    )  # fmt: skip
    assert silence(trigger, [window]).silenced  # trigger at minute 1: inside
    assert not silence(resolve, [window]).silenced  # resolve at minute 2: ends_at is exclusive
    other = Silence.model_validate(
        {"name": "o", "matchers": {"model_name": "churn"}, "starts_at": T0, "ends_at": T0 + 10**9}
    )
    assert not silence(trigger, [other]).silenced


def test_silenced_alerts_are_kept_but_not_routed():
    trigger, resolve = alerts()
    everything = Silence.model_validate(
        {"name": "all", "matchers": {"rule": "latency"}, "starts_at": T0, "ends_at": T0 + 90_000}
    )
    with TestPipeline() as pipeline:
        stored = pipeline | beam.Create([trigger, resolve]) | ApplySilences([everything])
        routed = stored | RouteAlerts([], DefaultRoute(sinks=["feed"]))
        assert_that(stored | "Flags" >> beam.Map(lambda a: (a.notification, a.silenced)),
                    equal_to([("trigger", True), ("resolve", False)]), label="stored")  # fmt: skip
        assert_that(routed | "Sinks" >> beam.Map(lambda r: (r[0], r[1].notification)), equal_to([("feed", "resolve")]),
                    label="routed")  # fmt: skip


def test_routes_may_only_name_configured_notification_sinks(tmp_path):
    document = {
        "sinks": [{"name": "storage", "type": "parquet"}, {"name": "feed", "type": "notification_log"}],
        "routes": [{"name": "r", "sinks": ["feed", "pagerduty", "storage"]}],
        "default_route": {"sinks": ["nope"]},
        "silences": [
            {
                "name": "s",
                "matchers": {"a": "b"},
                "starts_at": "2026-11-28T02:00:00Z",
                "ends_at": "2026-11-28T01:00:00Z",
            }
        ],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(document, tmp_path)
    assert caught.value.problems == [
        "silences[0]: Value error, ends_at must be after starts_at",
        "routes[0].sinks[1]: names no notification sink (known: feed)",
        "routes[0].sinks[2]: names no notification sink (known: feed)",
        "default_route.sinks[0]: names no notification sink (known: feed)",
    ]
