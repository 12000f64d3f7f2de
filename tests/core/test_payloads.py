import json
import math

import pytest
from pydantic import ValidationError

from airis_mon.payloads import (
    MAX_NESTING,
    TimestampRange,
    parse_payload,
    payload_problems,
    point_dead_letter,
    unprocessable_fields,
)
from tests.conftest import DAY_MS, metrics_payload


def test_metrics_payload_becomes_raw_points_with_canonical_tags():
    payload = metrics_payload("2026-11-28T00:00:00Z", "tf", ("inference_latency", 41.5, "ms", {"b": 2, "a": "x"}))
    points, events, dead = parse_payload(payload)
    assert points == [(DAY_MS, "tf", "inference_latency", 41.5, "ms", '{"a":"x","b":"2"}')]
    assert events == [] and dead == []


def test_a_bad_point_costs_only_that_point_and_its_dead_letter_is_a_replayable_payload():
    payload = metrics_payload(DAY_MS, "tf", ("good", 1, "ms", {}), ("bad", "fast", "ms", {}), ("", 2, "ms", {}))
    points, _, dead = parse_payload(payload, component="test")
    assert [p[2] for p in points] == ["good"]
    assert len(dead) == 2
    assert dead[0].reason.startswith("metrics[1].value:")
    assert dead[1].reason.startswith("metrics[2].name:")
    assert dead[0].component == "test"
    assert dead[0].timestamp_ms == DAY_MS
    replay = json.loads(dead[0].original)
    assert replay == {
        "timestamp": DAY_MS,
        "source": "tf",
        "metrics": [{"name": "bad", "value": "fast", "unit": "ms", "tags": {}}],
    }


def test_nan_passes_parsing_so_that_normalize_rejects_it_per_point():
    points, _, dead = parse_payload(metrics_payload(DAY_MS, "tf", ("x", math.nan, "ms", {})))
    assert dead == [] and math.isnan(points[0][3])


def test_envelope_errors_reject_the_whole_payload_and_name_the_field():
    _, _, dead = parse_payload({"timestamp": "yesterday", "source": "tf", "metrics": [{"name": "x", "value": 1}]})
    assert len(dead) == 1 and dead[0].reason.startswith("timestamp:")
    assert dead[0].timestamp_ms == 0  # unknown event time
    _, _, dead = parse_payload({"timestamp": DAY_MS, "metrics": []})
    assert "source: Field required" in dead[0].reason
    assert "metrics: List should have at least 1 item" in dead[0].reason


def test_unknown_keys_are_rejected_not_silently_dropped():
    _, _, dead = parse_payload(
        {"timestamp": DAY_MS, "source": "s", "metrics": [{"name": "x", "value": 1, "colour": "red"}]}
    )
    assert dead[0].reason.startswith("metrics[0].colour: Extra inputs are not permitted")


def test_events_parse_and_unknown_severities_go_to_the_dead_letter():
    ok = {"timestamp": DAY_MS, "event_type": "deploy", "source": "gh", "severity": "warning", "data": {"run": 481}}
    _, events, dead = parse_payload(ok)
    assert dead == []
    assert events[0].severity == "warning" and json.loads(events[0].data) == {"run": 481}
    _, events, dead = parse_payload({**ok, "severity": "fatal"})
    assert events == []
    assert dead[0].reason.startswith("severity: Input should be 'info', 'warning', 'error' or 'critical'")
    assert json.loads(dead[0].original)["severity"] == "fatal"


def test_a_payload_of_neither_kind_is_a_dead_letter():
    _, _, dead = parse_payload([1, 2, 3])
    assert "neither a metrics payload" in dead[0].reason


NOW_MS = DAY_MS + 3 * 86_400_000  # the clock these tests check against


def _event(timestamp=DAY_MS, **extra) -> dict:
    return {"timestamp": timestamp, "event_type": "deploy", "source": "ci", "severity": "info", **extra}


@pytest.mark.parametrize(
    "timestamp, reason",
    [
        (1e30, "timestamp: Value error, more than 86400 s ahead of the clock"),
        (10**25, "timestamp: Value error, more than 86400 s ahead of the clock"),
        (1e266, "timestamp: Value error, more than 86400 s ahead of the clock"),
        (-1e266, "timestamp: Value error, before 1970-01-01T00:00:00.000Z, the earliest accepted time"),
        ("1969-12-31T23:59:59Z", "timestamp: Value error, before 1970-01-01T00:00:00.000Z"),
        (NOW_MS + 86_400_001, "timestamp: Value error, more than 86400 s ahead of the clock"),
        ("2999-01-01T00:00:00Z", "timestamp: Value error, more than 86400 s ahead of the clock"),
        (False, "timestamp: Value error, not a timestamp: a boolean"),
        (True, "timestamp: Value error, not a timestamp: a boolean"),
        (math.inf, "timestamp: Value error, not a finite timestamp"),
        ("1e400", "timestamp: Value error, not a finite timestamp"),
    ],
)
def test_timestamps_outside_the_accepted_range_or_booleans_are_dead_letters_of_both_kinds(timestamp, reason):
    metrics = metrics_payload(timestamp, "tf", ("x", 1.0, "ms", {}))
    for payload in (metrics, _event(timestamp)):
        points, events, dead = parse_payload(payload, now_ms=NOW_MS)
        assert (points, events, len(dead)) == ([], [], 1)
        assert dead[0].reason.startswith(reason)
        assert dead[0].timestamp_ms == 0  # the time is unknown: stored as such, not as a date
        assert json.dumps(payload, allow_nan=True, sort_keys=True) == dead[0].original


def test_the_edges_of_the_accepted_range_are_accepted():
    for timestamp in (0, NOW_MS + 86_400_000):
        points, _, dead = parse_payload(metrics_payload(timestamp, "tf", ("x", 1.0, "ms", {})), now_ms=NOW_MS)
        assert dead == [] and points[0][0] == timestamp


def test_a_configured_range_is_applied_and_named_in_the_reason():
    accepted = TimestampRange(not_before="2026-11-28T00:00:00Z", max_future_s=60)
    assert accepted.not_before == DAY_MS
    _, events, _ = parse_payload(_event(DAY_MS), timestamps=accepted, now_ms=DAY_MS)
    assert len(events) == 1
    _, _, early = parse_payload(_event(DAY_MS - 1), timestamps=accepted, now_ms=DAY_MS)
    assert early[0].reason == "timestamp: Value error, " + (
        "before 2026-11-28T00:00:00.000Z, the earliest accepted time (timestamps.not_before)"
    )
    _, _, late = parse_payload(_event(DAY_MS + 60_001), timestamps=accepted, now_ms=DAY_MS)
    assert "more than 60 s ahead of the clock" in late[0].reason


def test_a_range_config_refuses_nonsense():
    with pytest.raises(ValidationError):
        TimestampRange(max_future_s=-1)
    with pytest.raises(ValidationError):
        TimestampRange(not_before="yesterday")
    with pytest.raises(ValidationError):
        TimestampRange(max_future_s=math.inf)


@pytest.mark.parametrize(
    "data, field",
    [
        ({"latency": math.inf}, "data.latency"),  # 1e400 decodes to inf
        ({"a": [1, math.nan]}, "data.a[1]"),
        ({"b": {"c": -math.inf}}, "data.b.c"),
    ],
)
def test_non_finite_numbers_in_event_data_are_dead_letters_naming_the_field(data, field):
    _, events, dead = parse_payload(_event(data=data))
    assert events == []
    assert dead[0].reason == f"{field}: must be a finite number"
    assert dead[0].timestamp_ms == DAY_MS


def test_non_finite_numbers_in_tags_cost_only_their_point():
    payload = metrics_payload(DAY_MS, "tf", ("good", 1.0, "", {}), ("bad", 1.0, "", {"k": math.inf}))
    points, _, dead = parse_payload(payload)
    assert [p[2] for p in points] == ["good"]
    assert dead[0].reason.startswith("metrics[1].tags.k: must be a finite number")
    assert json.loads(dead[0].original)["metrics"][0]["name"] == "bad"


def test_text_with_lone_surrogates_and_deep_nesting_are_dead_letters():
    _, _, dead = parse_payload(_event(data={"\ud800": "x", "ok": "\udc00"}))
    reason = "data.\\ud800: must be valid Unicode text (no lone surrogates); data.ok: must be valid Unicode text"
    assert dead[0].reason.startswith(reason)
    dead[0].reason.encode("utf-8")  # storable: the reason itself is valid UTF-8
    deep: list = []
    for _ in range(MAX_NESTING + 5):
        deep = [deep]
    _, _, dead = parse_payload(_event(data={"a": deep}))
    assert dead[0].reason == "data.a" + "[0]" * (MAX_NESTING - 2) + f": nested more than {MAX_NESTING} levels deep"
    shallow: list = []  # the payload, data and MAX_NESTING - 2 lists: MAX_NESTING levels
    for _ in range(MAX_NESTING - 3):
        shallow = [shallow]
    assert parse_payload(_event(data={"a": shallow}))[2] == []
    assert parse_payload(_event(data={"a": [shallow]}))[2] != []


def test_unprocessable_fields_are_found_in_document_order_at_any_depth():
    value = {"a": math.nan, "b": [1.0, {"c": math.inf}], "\ud800": "ok", "d": "\udfff"}
    assert [field for field, _ in unprocessable_fields(value, prefix="x")] == ["x.a", "x.b[1].c", "x.\\ud800", "x.d"]
    deep: list = []
    for _ in range(100_000):  # far deeper than recursion could go
        deep = [deep]
    assert len(unprocessable_fields(deep)) == 1


def test_payload_problems_joins_validation_errors_and_unprocessable_values_once_per_field():
    from airis_mon.payloads import EventPayload

    body = {"timestamp": math.nan, "event_type": "", "source": "ci", "severity": "info", "data": {"x": math.nan}}
    try:
        EventPayload.model_validate(body)
    except ValidationError as error:
        problems = payload_problems(error, body)
    assert [line.split(":")[0] for line in problems] == ["timestamp", "event_type", "data.x"]


def test_a_point_row_becomes_a_replayable_one_point_dead_letter():
    dead = point_dead_letter((float(DAY_MS), "tf", "lat", math.nan, "ms", '{"m":"a"}'), "value: bad", "test")
    assert (dead.timestamp_ms, dead.component, dead.reason) == (DAY_MS, "test", "value: bad")
    original = json.loads(dead.original)
    assert original["timestamp"] == DAY_MS and original["metrics"][0]["tags"] == {"m": "a"}
    in_seconds = point_dead_letter((DAY_MS / 1000, "tf", "lat", 1.0, "", "{}"), "r", "test")
    assert in_seconds.timestamp_ms == DAY_MS  # any unit, stamped in ms
    beyond = point_dead_letter((10**25 * 1.0, "tf", "lat", 1.0, "", "{}"), "r", "test")
    assert beyond.timestamp_ms == 0
