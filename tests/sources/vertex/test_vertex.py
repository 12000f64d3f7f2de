"""The Vertex AI source against loopback peers: a gRPC Cloud Monitoring fake and a REST Vertex AI fake."""

from __future__ import annotations

import json
import pickle
import time

import apache_beam as beam
import grpc
import pytest
from apache_beam.testing.util import assert_that, equal_to
from google.cloud import monitoring_v3

from airis_mon.errors import PermanentError, TransientError
from airis_mon.retry import RetryConfig
from airis_mon.schema import tags_from_json
from sources.polling import PollSettings
from sources.vertex import ReadFromVertex, VertexConfig
from sources.vertex.client import (
    ERROR_COUNT,
    PREDICTION_COUNT,
    PREDICTION_LATENCIES,
    REPLICAS,
    VertexClient,
    distribution_quantile,
)
from sources.vertex.poller import VertexPoller, load_next_start, poll_window
from tests.sources.vertex.vertex_fakes import EndpointsFake, MonitoringFake, series

P, L = "p", "us-central1"
FAST = RetryConfig(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.002)

# Explicit bounds [10, 20, 50, 100] ms: 0 below 10, 10 in [10,20), 60 in [20,50), 28 in [50,100), 2 above.
EXPLICIT = {
    "count": 100,
    "bucket_options": {"explicit_buckets": {"bounds": [10, 20, 50, 100]}},
    "bucket_counts": [0, 10, 60, 28, 2],
}
# By hand: p50 rank 50 -> [20,50) holds ranks 10..70 -> 20 + 30*40/60 = 40;
# p95 rank 95 -> [50,100) holds 70..98 -> 50 + 50*25/28; p99 rank 99 -> overflow bucket -> its lower edge 100.
EXPLICIT_Q = {"p50": 40.0, "p95": 50 + 50 * 25 / 28, "p99": 100.0}
# Exponential scale 1, growth 2, 4 finite buckets: [1,2) 2, [2,4) 4, [4,8) 8, [8,16) 6 (overflow count omitted).
EXPONENTIAL = {
    "count": 20,
    "bucket_options": {"exponential_buckets": {"num_finite_buckets": 4, "growth_factor": 2.0, "scale": 1.0}},
    "bucket_counts": [0, 2, 4, 8, 6],
}
# By hand: p50 rank 10 -> [4,8) holds 6..14 -> 4 + 4*4/8 = 6; p95 rank 19 -> [8,16) holds 14..20 -> 8 + 8*5/6;
# p99 rank 19.8 -> 8 + 8*5.8/6.
EXPONENTIAL_Q = {"p50": 6.0, "p95": 8 + 8 * 5 / 6, "p99": 8 + 8 * 5.8 / 6}


def dist(spec: dict) -> monitoring_v3.TypedValue:
    return monitoring_v3.TypedValue(distribution_value=spec).distribution_value


@pytest.fixture(scope="module")
def peers():
    monitoring, endpoints = MonitoringFake(), EndpointsFake(P, L, page_size=1)
    yield monitoring, endpoints
    monitoring.stop()
    endpoints.stop()


@pytest.fixture
def fakes(peers):
    monitoring, endpoints = peers
    monitoring.series, monitoring.requests, monitoring.abort = [], [], None
    endpoints.endpoints, endpoints.paths, endpoints.status = [], [], 200
    endpoints.add(P, L, "111", "fraud", {"m1": "fraud-v1", "m2": "fraud-v2"})
    endpoints.add(P, L, "222", "churn", {"m3": "churn-v1"})
    return monitoring, endpoints


def make_config(fakes, **extra) -> VertexConfig:
    monitoring, endpoints = fakes
    settings = {
        "name": "vertex-test",
        "project": P,
        "location": L,
        "monitoring_endpoint": monitoring.address,
        "aiplatform_endpoint": endpoints.url,
        "environment": "test",
        "poll": PollSettings(retry=FAST),
    }
    return VertexConfig(**{**settings, **extra})


def seed(monitoring: MonitoringFake, end: int) -> None:
    """Two endpoints' series with points at ``end`` and ``end - 60`` (newest first, as Cloud Monitoring lists)."""
    monitoring.series = [
        series(PREDICTION_COUNT, "111", "m1", [(end, {"int64_value": 40}), (end - 60, {"int64_value": 30})]),
        series(PREDICTION_COUNT, "111", "m2", [(end, {"int64_value": 5})]),
        series(PREDICTION_COUNT, "222", "m3", [(end, {"int64_value": 7})]),
        series(ERROR_COUNT, "111", "m1", [(end, {"int64_value": 2})]),
        series(PREDICTION_LATENCIES, "111", "m1", [(end, {"distribution_value": EXPLICIT})]),
        series(PREDICTION_LATENCIES, "222", "m3", [(end, {"distribution_value": EXPONENTIAL})]),
        series(REPLICAS, "222", "m3", [(end, {"double_value": 2.0})], metric_kind="GAUGE"),
        series(PREDICTION_COUNT, "999", "mx", [(end, {"int64_value": 1})]),  # not an endpoint of the location
    ]


def flat(payloads: list[dict]) -> dict[tuple, float]:
    out = {}
    for payload in payloads:
        assert payload["source"] == "gcp_vertex_ai"
        for m in payload["metrics"]:
            tags = m["tags"]
            key = (payload["timestamp"] // 1000, tags["endpoint_id"], tags["deployed_model_id"], m["name"],
                   tags.get("quantile", ""), m["unit"])  # fmt: skip
            assert key not in out
            out[key] = m["value"]
    return out


def test_quantiles_of_explicit_exponential_and_linear_buckets_match_hand_computed_values():
    for spec, expected in ((EXPLICIT, EXPLICIT_Q), (EXPONENTIAL, EXPONENTIAL_Q)):
        got = {label: distribution_quantile(dist(spec), q) for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
        assert got == pytest.approx(expected)
    # Linear offset 0, width 10, 3 finite buckets: [0,10) 5, [10,20) 5 -> p50 = 10, p95 = 10 + 10*4.5/5 = 19.
    linear = dist({"bucket_options": {"linear_buckets": {"num_finite_buckets": 3, "width": 10, "offset": 0}},
                   "bucket_counts": [0, 5, 5]})  # fmt: skip
    assert (distribution_quantile(linear, 0.5), distribution_quantile(linear, 0.95)) == pytest.approx((10.0, 19.0))
    assert distribution_quantile(dist({"bucket_options": EXPLICIT["bucket_options"]}), 0.5) is None


def test_the_window_holds_complete_periods_older_than_the_lag():
    now_ms = 1_000_000 * 1000 + 30_500  # 1_000_030.5 s
    assert poll_window(now_ms, 60, 360, None) == (999_600, 999_660)  # (1_000_030 - 360) // 60 * 60 = 999_660
    assert poll_window(now_ms, 60, 360, 999_480) == (999_480, 999_660)
    assert poll_window(now_ms, 60, 360, 999_660) == (999_660, 999_660)  # nothing new yet


def test_a_poll_reads_every_metric_over_several_pages_with_quantiles_and_tags(fakes):
    monitoring, endpoints = fakes
    now_s = 2_000_000_000
    end = (now_s - 360) // 60 * 60
    seed(monitoring, end)
    poller = VertexPoller(make_config(fakes, page_size=1))
    poller.setup()
    try:
        payloads = poller.poll(now_s * 1000)
    finally:
        poller.teardown()
    assert len(endpoints.paths) == 2 and "pageToken=1" in endpoints.paths[1]  # two REST pages
    tokens = [r.page_token for r in monitoring.requests if r.filter.startswith(f'metric.type = "{PREDICTION_COUNT}"')]
    assert tokens == ["", "1", "2"]  # three series of prediction_count on the two endpoints, one per page
    first = monitoring.requests[0]
    assert first.name == f"projects/{P}" and first.view == monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL
    assert (first.interval.start_time.timestamp(), first.interval.end_time.timestamp()) == (end - 60, end)
    assert 'one_of("111","222")' in first.filter
    expected = {
        (end, "111", "m1", "prediction_count", "", "count"): 40.0,
        (end, "111", "m2", "prediction_count", "", "count"): 5.0,
        (end, "222", "m3", "prediction_count", "", "count"): 7.0,
        (end, "111", "m1", "prediction_error_count", "", "count"): 2.0,
        (end, "222", "m3", "replica_count", "", "count"): 2.0,
        **{(end, "111", "m1", "prediction_latency", q, "ms"): v for q, v in EXPLICIT_Q.items()},
        **{(end, "222", "m3", "prediction_latency", q, "ms"): v for q, v in EXPONENTIAL_Q.items()},
    }
    got = flat(payloads)
    assert got == pytest.approx(expected)
    assert [(p["timestamp"], p["metrics"][0]["tags"]["endpoint_id"]) for p in payloads] == [
        (end * 1000, "111"), (end * 1000, "222")]  # fmt: skip
    tags = next(m["tags"] for m in payloads[0]["metrics"] if m["tags"]["deployed_model_id"] == "m2")
    assert tags == {"endpoint_id": "111", "deployed_model_id": "m2", "environment": "test",
                    "endpoint_name": "fraud", "model_name": "fraud-v2"}  # fmt: skip


def test_two_polls_never_count_a_point_twice_and_the_state_file_carries_the_window(fakes, tmp_path):
    monitoring, _ = fakes
    now_s = 2_000_000_000
    end = (now_s - 360) // 60 * 60
    seed(monitoring, end)
    state = str(tmp_path / "state" / "vertex.json")
    config = make_config(fakes, endpoint_ids=["111"], state_file=state)
    first = VertexPoller(config)
    got1 = flat(first.poll(now_s * 1000))
    assert load_next_start(state) == end
    assert json.loads((tmp_path / "state" / "vertex.json").read_text()) == {"version": 1, "next_start_s": end}
    assert {k[1] for k in got1} == {"111"}  # only the configured endpoint
    # Two periods later the new point at end+120 (and one at end+60) arrive; the point at `end` is still served
    # by the peer (its interval is inclusive) but was read already.
    monitoring.series.append(
        series(PREDICTION_COUNT, "111", "m1", [(end + 120, {"int64_value": 9}), (end + 60, {"int64_value": 8})])
    )
    second = VertexPoller(config)  # a new poller: the window continues from the state file
    got2 = flat(second.poll((now_s + 120) * 1000))
    assert monitoring.requests[-1].interval.start_time.timestamp() == end
    assert got2 == {(end + 60, "111", "m1", "prediction_count", "", "count"): 8.0,
                    (end + 120, "111", "m1", "prediction_count", "", "count"): 9.0}  # fmt: skip
    assert not set(got1) & set(got2)
    assert second.poll((now_s + 150) * 1000) == []  # no complete period yet: no call, no change
    assert load_next_start(state) == end + 120


def test_vendor_errors_become_permanent_or_transient(fakes):
    monitoring, endpoints = fakes
    client = VertexClient(P, L, monitoring.address, endpoints.url)
    try:
        monitoring.abort = grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(PermanentError, match="PermissionDenied"):
            client.list_time_series(PREDICTION_COUNT, 0, 60, 60)
        monitoring.abort = grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(TransientError, match="ResourceExhausted"):
            client.list_time_series(PREDICTION_COUNT, 0, 60, 60)
        monitoring.abort = grpc.StatusCode.UNAVAILABLE
        with pytest.raises(TransientError, match="ServiceUnavailable"):
            client.list_time_series(PREDICTION_COUNT, 0, 60, 60)
        endpoints.status = 403
        with pytest.raises(PermanentError, match=r"Forbidden|PermissionDenied"):
            client.list_endpoints()
        endpoints.status = 429
        with pytest.raises(TransientError):
            client.list_endpoints()
    finally:
        client.close()


def test_permission_denied_is_an_unhealthy_record_after_one_attempt(fakes):
    monitoring, _ = fakes
    monitoring.abort = grpc.StatusCode.PERMISSION_DENIED
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromVertex(make_config(fakes))
        assert_that(out["health"] | beam.Map(lambda h: (h.ok, h.message.split(": ")[0])),
                    equal_to([(False, "poll failed after 1 attempt(s)")]))  # fmt: skip
        assert_that(out["points"], equal_to([]), label="no points")
    assert len(monitoring.requests) == 1


def test_quota_exhaustion_is_retried_then_an_unhealthy_record(fakes):
    monitoring, _ = fakes
    monitoring.abort = grpc.StatusCode.RESOURCE_EXHAUSTED
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromVertex(make_config(fakes))
        health = out["health"] | beam.Map(lambda h: (h.ok, h.message.split(": ")[0], "ResourceExhausted" in h.message))
        assert_that(health, equal_to([(False, "poll failed after 3 attempt(s)", True)]))
    assert len(monitoring.requests) == 3


def test_end_to_end_through_a_bounded_pipeline(fakes, tmp_path):
    monitoring, _ = fakes
    end = (int(time.time()) - 360) // 60 * 60
    seed(monitoring, end)
    state = tmp_path / "vertex.json"
    state.write_text(json.dumps({"version": 1, "next_start_s": end - 600}))  # earlier windows were read
    config = make_config(fakes, state_file=str(state))
    pickle.loads(pickle.dumps(config))
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromVertex(config)
        rows = out["points"] | beam.FlatMap(
            lambda t: zip(
                t.column("name").to_pylist(), t.column("value").to_pylist(), t.column("tags").to_pylist(), strict=True
            )
        )
        counts = (
            rows
            | beam.Filter(lambda r: r[0] == "prediction_count")
            | beam.Map(lambda r: (tags_from_json(r[2])["deployed_model_id"], r[1]))
        )
        assert_that(counts, equal_to([("m1", 30.0), ("m1", 40.0), ("m2", 5.0), ("m3", 7.0)]), label="counts")
        p50 = (
            rows
            | "p50" >> beam.Filter(lambda r: tags_from_json(r[2]).get("quantile") == "p50")
            | "ep" >> beam.Map(lambda r: (tags_from_json(r[2])["endpoint_id"], r[0], round(r[1], 6)))
        )
        assert_that(p50, equal_to([("111", "prediction_latency", 40.0), ("222", "prediction_latency", 6.0)]),
                    label="p50")  # fmt: skip
        assert_that(out["dead_letters"], equal_to([]), label="dead")
        assert_that(out["health"] | beam.Map(lambda h: (h.integration, h.ok, h.records)),
                    equal_to([("vertex-test", True, 12)]), label="health")  # fmt: skip
    assert load_next_start(str(state)) >= end
