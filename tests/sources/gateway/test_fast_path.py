"""The metrics fast path (msgspec) accepts a subset of what the full path (orjson + pydantic) accepts.

``fast_metrics_count`` restates the metrics payload's rules for speed; if it ever accepted a body the
contract refuses, the gateway would store it. Hypothesis generates bodies around every rule (types,
lengths, unknown fields, timestamps at and beyond the range, booleans, numeric strings, nesting in tags,
NaN) and checks: accepted fast => accepted by the full path, with the same number of points.
"""

import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from airis_mon.contract import MetricsPayload, TimestampRange
from sources.gateway.bodies import Body, GatewayError, fast_metrics_count, validated

NOW_MS = 1_795_824_000_000
RANGE = TimestampRange(not_before="2000-01-01T00:00:00Z", max_future_s=3600)
CONTEXT = RANGE.context(now_ms=NOW_MS, exact=True)  # the gateway's rules

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                    st.text(max_size=5))  # fmt: skip


def mostly(valid, *edges):
    """Values that are valid three times in four, else one of the edge cases (so most bodies are one
    mistake away from valid, where a missing rule would show)."""
    return st.one_of(valid, valid, valid, st.one_of(*edges))


def text_of(lengths: tuple[int, int]):
    low, high = lengths
    return mostly(st.text(st.characters(codec="utf-8"), min_size=low, max_size=min(high, 12)),
                  st.text(min_size=0, max_size=0), st.text(min_size=high, max_size=high),
                  st.text(min_size=high + 1, max_size=high + 1), scalars)  # fmt: skip


tag_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=2),
                                                           st.dictionaries(st.text(max_size=3), inner, max_size=2)),
                          max_leaves=4)  # fmt: skip
timestamps = mostly(
    st.integers(NOW_MS - 10**9, NOW_MS + 10**6),
    st.sampled_from(
        [
            NOW_MS + 3_600_000,
            NOW_MS + 3_600_001,
            946_684_800_000,
            946_684_799_999,
            946_684_800,
            1_795_824_000,
            2**63 - 1,
            2**63,
            -1,
            0,
        ]
    ),
    scalars,
    st.just("2026-12-01T00:00:00Z"),
)
values = mostly(st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False)),
                scalars, st.just("1.5"), st.just(1e308), st.integers(2**63, 2**64))  # fmt: skip


@st.composite
def points(draw):
    point = {"name": draw(text_of((1, 256))), "value": draw(values)}
    if draw(st.booleans()):
        point["unit"] = draw(text_of((0, 64)))
    if draw(st.booleans()):
        point["tags"] = draw(mostly(st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
                                    st.dictionaries(st.text(max_size=4), tag_values, max_size=3), scalars))  # fmt: skip
    if draw(st.integers(0, 9)) == 0:
        point[draw(st.text(max_size=4))] = draw(scalars)
    return point


@st.composite
def bodies(draw):
    metrics = draw(mostly(st.lists(points(), min_size=1, max_size=3), st.lists(points(), max_size=0), scalars))
    document = {"timestamp": draw(timestamps), "source": draw(text_of((1, 256))), "metrics": metrics}
    for key in draw(st.lists(st.sampled_from(["timestamp", "source", "metrics"]), max_size=1)):
        if draw(st.integers(0, 4)) == 0:
            del document[key]
    if draw(st.integers(0, 9)) == 0:
        document[draw(st.text(max_size=4))] = draw(scalars)
    return json.dumps(document, allow_nan=True).encode()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_what_the_fast_path_accepts_the_contract_accepts(raw):
    count = fast_metrics_count(raw, CONTEXT)
    event("fast path" if count is not None else "full path")
    if count is None:
        return
    try:
        payload = validated(MetricsPayload, Body(raw), CONTEXT)
    except GatewayError as error:
        raise AssertionError(f"fast path accepted what the contract refuses: {error.details}") from None
    assert len(payload.metrics) == count


def test_the_fast_path_takes_the_common_body():
    point = {"name": "latency", "value": 12, "unit": "ms", "tags": {"model": "a", "replica": 3}}
    raw = json.dumps({"timestamp": NOW_MS, "source": "tfs", "metrics": [point] * 100}).encode()
    assert fast_metrics_count(raw, CONTEXT) == 100


def test_nesting_in_a_tag_leaves_the_fast_path_and_the_contract_refuses_it():
    deep: list = []
    for _ in range(70):
        deep = [deep]
    raw = json.dumps(
        {"timestamp": NOW_MS, "source": "tfs", "metrics": [{"name": "x", "value": 1, "tags": {"t": deep}}]}
    )
    assert fast_metrics_count(raw.encode(), CONTEXT) is None
    try:
        validated(MetricsPayload, Body(raw.encode()), CONTEXT)
    except GatewayError as error:
        assert error.status == 400 and "nested more than 64 levels deep" in error.details[0]["message"]
    else:
        raise AssertionError("a tag nested 70 levels deep was accepted")
