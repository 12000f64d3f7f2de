import json
import math

from airis_mon.payloads import parse_payload
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
