"""Unit tests of the notification policy: matchers, route inheritance, time intervals, inhibition,
the dispatcher's timers and notification log, and the config validation."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from transforms.notify_policy.config import NotificationPolicy, policy_from_document
from transforms.notify_policy.dispatcher import Dispatcher, Incoming
from transforms.notify_policy.matchers import Matcher, matchers_key
from transforms.notify_policy.time_intervals import TimeInterval

S = 1000


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


# --- matchers


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ('severity="critical"', {"severity": "high"}, False),
        ('team!="infra"', {"team": "fraud"}, True),
        ('team!="infra"', {}, True),  # an absent label is ""
        ('team!="infra"', {"team": "infra"}, False),
        ('severity=~"high|critical"', {"severity": "high"}, True),
        ('severity=~"high|critical"', {"severity": "highest"}, False),  # anchored
        ('env!~"dev|test"', {"env": "prod"}, True),
        ('env!~"dev|test"', {"env": "dev"}, False),
        ("env=prod", {"env": "prod"}, True),  # bare value
        ('owner=""', {}, True),
        ('msg="say \\"hi\\""', {"msg": 'say "hi"'}, True),
    ],
)
def test_matchers(text, labels, expected):
    assert Matcher.parse(text).matches(labels) is expected


@pytest.mark.parametrize("text", ["severity", "a~b", 'a=~"("', '1a="x"', 'a="x'])
def test_bad_matchers_are_refused(text):
    with pytest.raises(ValueError):
        Matcher.parse(text)


def test_route_key_is_alertmanagers():
    key = matchers_key([Matcher.parse('team!="infra"'), Matcher.parse('severity=~"high|critical"')])
    assert key == '{severity=~"high|critical",team!="infra"}'


# --- route tree


def _policy(route: dict, **extra) -> NotificationPolicy:
    return NotificationPolicy.model_validate({"route": route, **extra})


def test_children_inherit_receiver_grouping_and_timers_but_not_time_intervals():
    policy = _policy(
        {
            "receiver": "chat",
            "group_by": ["alertname"],
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "1h30m",
            "routes": [
                {
                    "matchers": ['team="a"'],
                    "group_wait": 5,
                    "mute_time_intervals": ["nights"],
                    "routes": [{"matchers": ['severity="critical"'], "receiver": ["pager", "chat"]}],
                }
            ],
        },
        time_intervals=[
            {"name": "nights", "time_intervals": [{"times": [{"start_time": "00:00", "end_time": "06:00"}]}]}
        ],
    )
    [leaf] = policy.compile().match({"team": "a", "severity": "critical"})
    assert leaf.receivers == ("pager", "chat")
    assert (leaf.group_by, leaf.group_wait_s, leaf.group_interval_s, leaf.repeat_interval_s) == (
        ("alertname",),
        5,
        60,
        5400,
    )
    assert leaf.mute == ()  # as in Alertmanager, time intervals belong to the route that names them
    assert leaf.key == '{}/{team="a"}/{severity="critical"}'
    [middle] = policy.compile().match({"team": "a", "severity": "high"})
    assert middle.path == "0.0" and middle.mute[0].name == "nights"


def test_first_matching_child_wins_unless_continue_and_the_root_catches_the_rest():
    route = {
        "receiver": "r",
        "routes": [
            {"matchers": ["a=1"], "receiver": "x", "continue": True},
            {"matchers": ["b=1"], "receiver": "y"},
            {"matchers": ["b=~.*"], "receiver": "z"},
        ],
    }
    root = _policy(route).compile()
    assert [r.receivers for r in root.match({"a": "1", "b": "1"})] == [("x",), ("y",)]
    assert [r.receivers for r in root.match({"b": "1"})] == [("y",)]
    assert [r.receivers for r in root.match({"b": "2"})] == [("z",)]  # b=~.* matches "" too: a child, not the root
    route["routes"][2]["matchers"] = ["b=~.+"]
    assert [r.receivers for r in _policy(route).compile().match({"c": "1"})] == [("r",)]


# --- time intervals


def test_time_interval_fields_and_location():
    weekday_evenings = TimeInterval.model_validate(
        {
            "times": [{"start_time": "17:00", "end_time": "24:00"}],
            "weekdays": ["monday:friday"],
            "location": "Europe/London",
        }
    )
    assert weekday_evenings.contains(_ms("2026-12-01T17:00:00+00:00"))  # Tuesday 17:00 in London (GMT)
    assert not weekday_evenings.contains(_ms("2026-12-01T16:59:59+00:00"))
    assert not weekday_evenings.contains(_ms("2026-12-05T18:00:00+00:00"))  # Saturday
    summer = TimeInterval.model_validate(
        {"times": [{"start_time": "09:00", "end_time": "10:00"}], "location": "Europe/London"}
    )
    assert summer.contains(_ms("2026-07-01T08:30:00+00:00"))  # BST: 09:30 local
    last_days = TimeInterval.model_validate({"days_of_month": ["-2:-1"], "months": ["february"], "years": ["2028"]})
    assert last_days.contains(_ms("2028-02-29T12:00:00+00:00")) and last_days.contains(_ms("2028-02-28T00:00:00+00:00"))
    assert not last_days.contains(_ms("2028-02-27T23:59:00+00:00")) and not last_days.contains(
        _ms("2027-02-28T00:00:00+00:00")
    )


@pytest.mark.parametrize(
    "interval",
    [
        {"weekdays": ["funday"]},
        {"times": [{"start_time": "25:00", "end_time": "26:00"}]},
        {"months": ["13"]},
        {"location": "Mars/Olympus"},
        {"days_of_month": ["0"]},
        {"weekdays": ["friday:monday"]},
    ],
)
def test_bad_time_intervals_are_refused(interval):
    with pytest.raises(ValidationError):
        TimeInterval.model_validate(interval)


# --- dispatcher


def _fire(at_s: float, **labels) -> Incoming:
    return Incoming(int(at_s * S), labels, int(at_s * S))


def _resolve(at_s: float, starts_s: float, **labels) -> Incoming:
    return Incoming(int(at_s * S), labels, int(starts_s * S), int(at_s * S))


def _seen(notifications) -> list[tuple]:
    return [
        (
            n.at_ms / S,
            n.receiver,
            sorted(m["labels"]["id"] for m in n.firing),
            sorted(m["labels"]["id"] for m in n.resolved),
        )
        for n in notifications
    ]


ROUTE = {
    "receiver": "chat",
    "group_by": ["alertname"],
    "group_wait": "2s",
    "group_interval": "10s",
    "repeat_interval": "25s",
}


def test_group_wait_interval_repeat_and_resolve_once():
    alerts = [
        _fire(0, alertname="a", id="1"),
        _fire(1, alertname="a", id="2"),
        _fire(5, alertname="a", id="3"),
        _resolve(15, 0, alertname="a", id="1"),
        _resolve(40, 1, alertname="a", id="2"),
        _resolve(41, 5, alertname="a", id="3"),
    ]
    seen = _seen(Dispatcher(_policy(ROUTE)).run(alerts, 100 * S))
    assert seen == [
        (2, "chat", ["1", "2"], []),  # group_wait after the first alert
        (12, "chat", ["1", "2", "3"], []),  # the next group_interval tick, as 3 joined
        (22, "chat", ["2", "3"], ["1"]),  # 1 resolved: sent once
        # 32: unchanged, repeat_interval (25 s since 22) not yet passed
        (42, "chat", [], ["2", "3"]),  # the last members resolved: the group's final notification
    ]


def test_unchanged_group_repeats_after_repeat_interval_at_a_tick():
    seen = _seen(Dispatcher(_policy(ROUTE)).run([_fire(0, alertname="a", id="1")], 60 * S))
    assert [s[0] for s in seen] == [2, 32]  # 2 + 25 = 27 s: sent at the next tick after it, 32 s


def test_an_alert_that_started_long_before_it_arrived_is_sent_at_once():
    seen = _seen(Dispatcher(_policy(ROUTE)).run([Incoming(100 * S, {"alertname": "a", "id": "1"}, 0)], 101 * S))
    assert seen == [(100, "chat", ["1"], [])]


def test_inhibition_at_flush_time_and_equal_labels():
    policy = _policy(
        ROUTE,
        inhibit_rules=[
            {"source_matchers": ["severity=critical"], "target_matchers": ["severity=warning"], "equal": ["model"]}
        ],
    )
    alerts = [
        _fire(0, alertname="down", severity="critical", model="m1", id="src"),
        _fire(0.5, alertname="slow", severity="warning", model="m1", id="inhibited"),
        _fire(0.5, alertname="slow", severity="warning", model="m2", id="other-model"),
        _resolve(5, 0, alertname="down", severity="critical", model="m1", id="src"),
    ]
    seen = _seen(Dispatcher(policy).run(alerts, 20 * S))
    assert seen == [
        (2, "chat", ["src"], []),
        (2.5, "chat", ["other-model"], []),
        (12, "chat", [], ["src"]),
        (12.5, "chat", ["inhibited", "other-model"], []),
    ]


def test_mute_and_active_time_intervals_hold_back_notifications():
    day0 = _ms("2026-12-01T08:59:00+00:00")
    intervals = [{"name": "office", "time_intervals": [{"times": [{"start_time": "09:00", "end_time": "17:00"}]}]}]
    for kind, expected in (("active_time_intervals", [day0 + 62 * S]), ("mute_time_intervals", [day0 + 2 * S])):
        route = {**ROUTE, "routes": [{"matchers": ["alertname=~.+"], kind: ["office"]}]}
        alerts = [Incoming(day0, {"alertname": "a", "id": "1"}, day0)]
        sent = Dispatcher(_policy(route, time_intervals=intervals)).run(alerts, day0 + 70 * S)
        assert [n.at_ms for n in sent][:1] == expected, kind


def test_state_is_json_and_a_later_horizon_continues_it():
    alerts = [_fire(0, alertname="a", id="1"), _fire(3, alertname="a", id="2"), _resolve(30, 0, alertname="a", id="1")]
    whole = _seen(Dispatcher(_policy(ROUTE)).run(alerts, 60 * S))
    first = Dispatcher(_policy(ROUTE))
    part = _seen(first.run(alerts[:2], 11 * S))  # the 12 s flush is after this horizon
    state = json.loads(json.dumps(first.state()))
    part += _seen(Dispatcher(_policy(ROUTE), state).run(alerts[2:], 60 * S))
    assert part == whole and len(whole) == 3


# --- config


def test_policy_config_problems_name_the_field():
    document = {
        "notification_policy": {
            "receiver": "chat",
            "routes": [
                {"matchers": ['severity=~"("'], "receiver": "nope"},
                {"group_interval": "0s", "mute_time_intervals": ["x"]},
            ],
        },
        "inhibit_rules": [{"source_matchers": [], "target_matchers": ["a=b"]}],
        "routes": [{"name": "old", "sinks": ["chat"]}],
    }
    policy, problems = policy_from_document(document, {"chat"})
    assert policy is None
    text = "\n".join(problems)
    assert "routes: not used with a notification_policy" in text
    assert "notification_policy.routes[0].matchers" in text and "regular expression" in text
    assert "notification_policy.routes[1].group_interval: Value error, must be longer than 0 s" in text
    assert "inhibit_rules[0].source_matchers" in text
    document = {
        "notification_policy": {"receiver": "chat", "routes": [{"receiver": "nope", "mute_time_intervals": ["x"]}]}
    }
    assert policy_from_document(document, {"chat"})[1] == [
        "notification_policy.routes[0].receiver: names no notification sink (known: chat)"
    ]
    document["notification_policy"]["routes"][0]["receiver"] = "chat"
    assert policy_from_document(document, {"chat"})[1] == [
        "notification_policy.routes[0].mute_time_intervals[0]: no time interval named 'x' (known: none)"
    ]
