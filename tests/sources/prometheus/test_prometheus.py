"""The ``prometheus`` source against a loopback endpoint serving recorded vendor samples.

Expected rates and quantiles are computed by hand from the recordings (see
``testdata/``); quantiles follow Prometheus' ``histogram_quantile``: the rank
``q * observations`` falls in a bucket ``(lower, upper]`` holding ``n`` of them
after ``below`` smaller ones, and the estimate is
``lower + (upper - lower) * (rank - below) / n``.
"""

from __future__ import annotations

import json
import math
import socket
import time

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.errors import PermanentError, TransientError
from airis_mon.payloads import parse_payload
from airis_mon.retry import RetryConfig
from sources.prometheus import PrometheusConfig, ReadFromPrometheus
from sources.prometheus.exposition import ExpositionConverter, histogram_quantile, infer_unit, parse_exposition
from sources.prometheus.poller import PrometheusPoller
from tests.sources.prometheus.exposition_server import ExpositionServer, recording

FAST = RetryConfig(max_attempts=2, initial_backoff_s=0.001, max_backoff_s=0.002)
T0 = 1_795_824_000.0  # epoch s of the first scrape


def config(*urls: str, **extra) -> PrometheusConfig:
    targets = [{"url": url, "labels": {"environment": "test"}} for url in urls]
    return PrometheusConfig.model_validate({"name": "scrape", "targets": targets, "poll": {"retry": FAST}, **extra})


def clock(*seconds: float):
    """The poller's clock: T0 + each offset in turn (one reading per successful scrape)."""
    readings = iter(T0 + s for s in seconds)
    return lambda: next(readings)


def points_of(payloads: list[dict]) -> dict[tuple, tuple[float, str]]:
    """{(name, sorted tag items): (value, unit)} over the metrics payloads."""
    out = {}
    for payload in payloads:
        for point in payload.get("metrics", []):
            out[(point["name"], tuple(sorted(point["tags"].items())))] = (point["value"], point["unit"])
    return out


def value(points: dict, name: str, **tags) -> tuple[float, str]:
    """The one point named ``name`` whose tags include ``tags``."""
    found = [v for (n, t), v in points.items() if n == name and set(tags.items()) <= set(t)]
    assert len(found) == 1, f"{name} {tags}: {len(found)} points among {sorted({n for n, _ in points})}"
    return found[0]


def names(points: dict) -> set[str]:
    return {name for name, _ in points}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(poller: PrometheusPoller, *poll_times_ms: int) -> list[list[dict]]:
    poller.setup()
    try:
        return [poller.poll(now_ms) for now_ms in poll_times_ms]
    finally:
        poller.teardown()


# --- the estimator ----------------------------------------------------------------------------------------------


def test_histogram_quantile_follows_prometheus():
    buckets = [(1.0, 2), (2.0, 6), (4.0, 8), (math.inf, 8)]
    assert histogram_quantile(0.5, buckets) == 1.5  # rank 4: 2 below in (1, 2] holding 4 -> 1 + 1 * 2/4
    assert histogram_quantile(0.25, buckets) == 1.0  # rank 2: the first bucket starts at 0 -> 0 + 1 * 2/2
    assert histogram_quantile(0.1, buckets) == pytest.approx(0.4)  # rank 0.8 in (0, 1]
    assert histogram_quantile(0.99, [(1.0, 1), (2.0, 1), (math.inf, 5)]) == 2.0  # in +Inf: the highest finite bound
    assert histogram_quantile(0.5, [(-1.0, 3), (0.0, 4), (math.inf, 4)]) == -1.0  # non-positive first bound
    assert math.isnan(histogram_quantile(0.5, [(1.0, 2), (2.0, 4)]))  # no +Inf bucket
    assert math.isnan(histogram_quantile(0.5, [(1.0, 0), (math.inf, 0)]))  # no observation
    assert histogram_quantile(0.5, [(math.inf, 4), (1.0, 2), (2.0, 3)]) == 1.0  # unordered input is sorted
    assert histogram_quantile(0.5, [(1.0, 3), (2.0, 2), (math.inf, 4)]) == pytest.approx(2 / 3)  # made monotonic


def test_units_come_from_overrides_help_text_vendor_and_suffix():
    help_text = "Torchserve prometheus counter metric with unit: Microseconds"
    assert infer_unit("ts_inference_latency_microseconds", help_text) == "Microseconds"
    assert infer_unit("vllm:e2e_request_latency_seconds") == "s"
    assert infer_unit("nv_inference_request_duration_us") == "us"
    assert infer_unit(":tensorflow:serving:request_latency") == "us"
    assert infer_unit(":tensorflow:serving:request_count") == ""
    assert infer_unit("nv_gpu_memory_used_bytes") == "bytes"
    assert infer_unit("process_cpu_seconds_total") == "s"
    assert infer_unit("my_latency", overrides={"my_latency": "ms"}) == "ms"
    assert infer_unit("vllm:num_requests_running") == ""  # fmt: skip


# --- vendors, scrape after scrape -------------------------------------------------------------------------------


def test_torchserve_counters_become_rates_and_a_restart_is_a_counter_reset():
    with ExpositionServer({"/metrics": ["torchserve_1.prom", "torchserve_2.prom", "torchserve_3.prom"]}) as server:
        first, second, third = run(PrometheusPoller(config(server.url + "/metrics"), clock(0, 10, 15)), 1, 2, 3)
    model = {"model_name": "resnet-18", "model_version": "default", "environment": "test"}
    p1, p2, p3 = points_of(first), points_of(second), points_of(third)
    assert not any(name.endswith("_rate") for name in names(p1))  # one scrape: no rate yet
    assert value(p1, "MemoryUsed", Level="Host") == (8245.62109375, "Megabytes")  # unit from the HELP text
    assert value(p1, "HandlerTime", ModelName="resnet-18") == (41.27, "ms")
    assert value(p1, "up") == (1.0, "")
    # 10 s later: requests 10 -> 30, inference time 500000 -> 1500000 µs, queue 1200.5 -> 3200.5 µs
    assert value(p2, "ts_inference_requests_rate", **model) == (2.0, "per_second")
    assert value(p2, "ts_inference_latency_microseconds_rate", **model) == (100_000.0, "Microseconds/s")
    assert value(p2, "ts_queue_latency_microseconds_rate", **model) == (200.0, "Microseconds/s")
    assert value(p2, "Requests2XX_rate", Level="Host") == (2.0, "per_second")
    # 5 s later the server restarted: 4 requests, 200000 µs, 400 µs since the restart
    assert value(p3, "ts_inference_requests_rate", **model) == (0.8, "per_second")
    assert value(p3, "ts_inference_latency_microseconds_rate", **model) == (40_000.0, "Microseconds/s")
    assert value(p3, "ts_queue_latency_microseconds_rate", **model) == (80.0, "Microseconds/s")
    instance = server.url.removeprefix("http://")
    assert all(dict(tags)["instance"] == instance for _, tags in p3)
    assert [(p["timestamp"], p["source"]) for p in first + second + third] == [(1, "prometheus"), (2, "prometheus"),
                                                                               (3, "prometheus")]  # fmt: skip


def test_triton_counters_gauges_and_summary_quantiles():
    with ExpositionServer({"/metrics": ["triton_1.prom", "triton_2.prom"]}) as server:
        first, second = run(PrometheusPoller(config(server.url + "/metrics", source="triton"), clock(0, 10)), 1, 2)
    model = {"model": "densenet_onnx", "version": "1"}
    p1, p2 = points_of(first), points_of(second)
    assert value(p1, "nv_gpu_utilization", gpu_uuid="GPU-7a9c9f44-ff57-1177-e21a-1740a8cf1a65") == (0.42, "")
    assert value(p1, "nv_gpu_memory_used_bytes") == (2241855488.0, "bytes")
    assert value(p1, "nv_inference_request_summary_us", quantile="0.5", **model) == (3900.0, "us")
    assert value(p1, "nv_inference_request_summary_us_mean", **model) == (4000.0, "us")  # 4000000 µs / 1000
    # 10 s later: 1000 -> 1250 successes, 4000000 -> 5250000 µs, queue 200000 -> 262500 µs
    assert value(p2, "nv_inference_request_success_rate", **model) == (25.0, "per_second")
    assert value(p2, "nv_inference_request_failure_rate", reason="BACKEND", **model) == (0.0, "per_second")
    assert value(p2, "nv_inference_request_duration_us_rate", **model) == (125_000.0, "us/s")
    assert value(p2, "nv_inference_queue_duration_us_rate", **model) == (6250.0, "us/s")
    assert value(p2, "nv_gpu_utilization") == (0.57, "")
    assert value(p2, "nv_inference_request_summary_us_count_rate", **model) == (25.0, "per_second")
    assert value(p2, "nv_inference_request_summary_us_mean", **model) == (5000.0, "us")  # 1250000 µs / 250
    assert value(p2, "nv_inference_request_summary_us", quantile="0.99", **model) == (7900.0, "us")
    assert not [t for n, t in p2 if n == "nv_inference_request_summary_us" and ("quantile", "0.5") in t]  # NaN
    assert {p["source"] for p in first + second} == {"triton"}


def test_vllm_histogram_quantiles_are_over_the_bucket_increase_since_the_previous_scrape():
    with ExpositionServer({"/metrics": ["vllm_1.prom", "vllm_2.prom", "vllm_3.prom"]}) as server:
        first, second, third = run(PrometheusPoller(config(server.url + "/metrics"), clock(0, 10, 15)), 1, 2, 3)
    model = {"model_name": "meta-llama/Llama-3.1-8B-Instruct", "engine": "0"}
    latency = "vllm:e2e_request_latency_seconds"
    p1, p2 = points_of(first), points_of(second)
    assert not [n for n in names(p1) | names(p2) if n.endswith("_created")]  # creation timestamps are dropped
    # first scrape, everything since the start; cumulative le: .3:2 .5:5 .8:9 1:12 1.5:14 2:15 2.5:15 5:16 +Inf:16
    assert value(p1, latency, quantile="0.5", **model)[0] == pytest.approx(0.5 + 0.3 * (8 - 5) / 4)  # 0.725
    assert value(p1, latency, quantile="0.95", **model)[0] == pytest.approx(2.5 + 2.5 * (15.2 - 15) / 1)  # 3.0
    assert value(p1, latency, quantile="0.99", **model)[0] == pytest.approx(2.5 + 2.5 * (15.84 - 15) / 1)  # 4.6
    assert value(p1, f"{latency}_mean", **model) == (pytest.approx(14.2 / 16), "s")
    assert f"{latency}_count_rate" not in names(p1)
    # increase over 10 s, cumulative le: .8:2 1:4 1.5:10 2:16 2.5:18 5:20 +Inf:20 (sum +30 s)
    assert value(p2, latency, quantile="0.5", **model) == (pytest.approx(1.0 + 0.5 * (10 - 4) / 6), "s")  # 1.5
    assert value(p2, latency, quantile="0.95", **model) == (pytest.approx(2.5 + 2.5 * (19 - 18) / 2), "s")  # 3.75
    assert value(p2, latency, quantile="0.99", **model) == (pytest.approx(2.5 + 2.5 * (19.8 - 18) / 2), "s")  # 4.75
    assert value(p2, f"{latency}_count_rate", **model) == (2.0, "per_second")
    assert value(p2, f"{latency}_mean", **model) == (pytest.approx(1.5), "s")
    assert value(p2, "vllm:prompt_tokens_rate", **model) == (360.0, "per_second")  # 1200 -> 4800 tokens in 10 s
    assert value(p2, "vllm:num_requests_running", **model) == (5.0, "")
    # 5 s later the server restarted: everything it counted since is new; cumulative le: .5:1 .8:2 1:3 1.5:4 +Inf:4
    p3 = points_of(third)
    assert value(p3, latency, quantile="0.5", **model) == (pytest.approx(0.5 + 0.3 * (2 - 1) / 1), "s")  # 0.8
    assert value(p3, f"{latency}_count_rate", **model) == (0.8, "per_second")  # 4 observations in 5 s
    assert value(p3, f"{latency}_mean", **model) == (pytest.approx(3.1 / 4), "s")
    assert value(p3, "vllm:prompt_tokens_rate", **model) == (20.0, "per_second")  # 100 tokens in 5 s


def test_bucket_increases_give_a_histogram_to_drift_rules_and_are_off_by_default():
    with ExpositionServer({"/metrics": ["vllm_1.prom", "vllm_2.prom"]}) as server:
        with_buckets = config(server.url + "/metrics", bucket_increases=True)
        first, second = run(PrometheusPoller(with_buckets, clock(0, 10)), 1, 2)
        _, plain = run(PrometheusPoller(config(server.url + "/metrics"), clock(0, 10)), 1, 2)
    model = {"model_name": "meta-llama/Llama-3.1-8B-Instruct", "engine": "0"}
    name = "vllm:e2e_request_latency_seconds_bucket_increase"
    p2 = points_of(second)
    # the increase over 10 s, cumulative per le (as in the quantile test above): .8:2 1:4 1.5:10 2:16 +Inf:20
    assert value(p2, name, le="0.8", **model) == (2.0, "")
    assert value(p2, name, le="1.5", **model) == (10.0, "")
    assert value(p2, name, le="+Inf", **model) == (20.0, "")
    assert name not in names(points_of(plain))
    assert name not in names(points_of(first))  # the first scrape has no increase yet


def test_tensorflow_serving_request_count_and_latency_in_microseconds():
    with ExpositionServer({"/monitoring/prometheus/metrics": ["tfserving_1.prom", "tfserving_2.prom"]}) as server:
        url = server.url + "/monitoring/prometheus/metrics"
        _, second = run(PrometheusPoller(config(url, include=[":tensorflow:serving:.*"]), clock(0, 10)), 1, 2)
    points = points_of(second)
    assert names(points) == {
        ":tensorflow:serving:request_count_rate", ":tensorflow:serving:request_latency",
        ":tensorflow:serving:request_latency_count_rate", ":tensorflow:serving:request_latency_mean",
        "up", "scrape_duration_seconds",
    }  # fmt: skip
    rate = ":tensorflow:serving:request_count_rate"
    assert value(points, rate, model_name="fraud", status="OK") == (10.0, "per_second")  # 500 -> 600
    assert value(points, rate, status="INVALID_ARGUMENT") == (pytest.approx(0.2), "per_second")  # 5 -> 7
    grpc = {"model_name": "fraud", "API": "Predict", "entrypoint": "GRPC"}
    # 100 new requests: 40 in (1102, 1983.59], 50 in (1983.59, 3570.47], 10 in (3570.47, 6426.84] µs
    latency = ":tensorflow:serving:request_latency"
    assert value(points, latency, quantile="0.5", **grpc) == (pytest.approx(1983.59 + 1586.88 * 10 / 50), "us")
    assert value(points, latency, quantile="0.95", **grpc) == (pytest.approx(3570.47 + 2856.37 * 5 / 10), "us")
    assert value(points, latency, quantile="0.99", **grpc) == (pytest.approx(3570.47 + 2856.37 * 9 / 10), "us")
    assert value(points, f"{latency}_mean", **grpc) == (2500.0, "us")  # 250000 µs / 100
    assert value(points, f"{latency}_count_rate", **grpc) == (10.0, "per_second")
    rest = {"API": "predict", "entrypoint": "REST"}
    assert value(points, f"{latency}_count_rate", **rest) == (0.0, "per_second")
    assert not [t for n, t in points if n == latency and ("entrypoint", "REST") in t]  # no request: no quantile


def test_filters_unit_overrides_and_label_conflicts():
    text = (
        '# TYPE my_latency gauge\nmy_latency{instance="pod-1"} 12\n'
        "# TYPE other gauge\nother 1\n# TYPE go_goroutines gauge\ngo_goroutines 9\n"
        "# TYPE jobs_total counter\njobs_total 3\n"
    )
    converter = ExpositionConverter({"instance": "10.0.0.1:9090"}, units={"my_latency": "ms"},
                                    include=["my_.*", "go_.*", "jobs_total"], exclude=["go_.*"])  # fmt: skip
    converter.convert(parse_exposition(text), T0)
    points = converter.convert(parse_exposition(text.replace("jobs_total 3", "jobs_total 9")), T0 + 2)
    instance = {"instance": "10.0.0.1:9090"}
    assert points == [
        {"name": "my_latency", "value": 12.0, "unit": "ms", "tags": {"exported_instance": "pod-1", **instance}},
        {"name": "jobs_rate", "value": 3.0, "unit": "per_second", "tags": instance},  # (9 - 3) / 2 s
    ]


def test_every_payload_passes_the_public_contract():
    with ExpositionServer({"/a": ["vllm_1.prom", "vllm_2.prom"], "/b": ["triton_1.prom", "triton_2.prom"]}) as server:
        polls = run(PrometheusPoller(config(server.url + "/a", server.url + "/b"), clock(0, 0, 10, 10)), 1, 2)
    for payloads in polls:
        assert len(payloads) == 2  # one per target
        for payload in payloads:
            good, events, dead = parse_payload(payload)
            assert (len(good), events, dead) == (len(payload["metrics"]), [], [])


# --- failures ---------------------------------------------------------------------------------------------------


def test_http_errors_timeouts_and_refused_connections_are_classified():
    routes = {"/500": [(500, b"oops")], "/429": [(429, b"slow down")], "/404": [(404, b"no")],
              "/slow": [("sleep", 1.0, "vllm_1.prom")], "/garbage": [(200, b"this is { not exposition\n")]}  # fmt: skip
    with ExpositionServer(routes) as server:
        cases = {path: server.url + path for path in routes} | {"refused": f"http://127.0.0.1:{free_port()}/metrics"}
        outcomes = {}
        for path, url in cases.items():
            poller = PrometheusPoller(config(url, timeout_s=0.2))
            with pytest.raises((TransientError, PermanentError)) as raised:
                run(poller, 1)
            outcomes[path] = (type(raised.value).__name__, str(raised.value).split(": ", 1)[1][:20])
    assert outcomes == {
        "/500": ("TransientError", "HTTP 500"),
        "/429": ("TransientError", "HTTP 429"),
        "/404": ("PermanentError", "HTTP 404"),
        "/slow": ("TransientError", "no answer within 0.2"),
        "/garbage": ("PermanentError", "not Prometheus expos"),
        "refused": ("TransientError", "connection failed (C"),
    }


def test_credentials_are_sent_but_never_shown(monkeypatch):
    monkeypatch.setenv("SCRAPE_TOKEN", "s3cret")
    with ExpositionServer({"/metrics": [(401, b"unauthorized")]}) as server:
        with_user = server.url.replace("http://", "http://user:pw@") + "/metrics?token=abc"
        for url, extra in ((server.url + "/metrics", {"bearer_token": {"env": "SCRAPE_TOKEN"}}), (with_user, {})):
            with pytest.raises(PermanentError) as raised:
                run(PrometheusPoller(config(url, **extra)), 1)
            assert str(raised.value) == f"GET {server.url}/metrics: HTTP 401"
        sent = [request.headers["authorization"] for request in server.requests]
    assert sent == ["Bearer s3cret", "Basic dXNlcjpwdw=="]  # user:pw


def test_one_failing_target_is_an_event_and_up_0_while_the_others_are_polled():
    with ExpositionServer({"/ok": ["vllm_1.prom"], "/broken": [(503, b"")]}) as server:
        payloads = run(PrometheusPoller(config(server.url + "/ok", server.url + "/broken"), clock(0)), 7)[0]
    events = [p for p in payloads if "event_type" in p]
    assert [(e["event_type"], e["severity"], e["data"]["url"], e["data"]["error"]) for e in events] == [
        ("scrape_failed", "error", f"{server.url}/broken", f"GET {server.url}/broken: HTTP 503")
    ]
    ups = [(m["value"], m["tags"]["instance"]) for p in payloads for m in p.get("metrics", []) if m["name"] == "up"]
    instance = server.url.removeprefix("http://")
    assert ups == [(1.0, instance), (0.0, instance)]


# --- through Beam -----------------------------------------------------------------------------------------------


def test_a_bounded_read_yields_points_and_a_healthy_record():
    with ExpositionServer({"/vllm": ["vllm_1.prom"], "/triton": ["triton_1.prom"]}) as server:
        cfg = config(server.url + "/vllm", server.url + "/triton", source="model-servers")
        with beam.Pipeline() as pipeline:
            out = pipeline | ReadFromPrometheus(cfg)
            rows = out["points"] | beam.FlatMap(lambda t: t.to_pylist())
            wanted = {"vllm:num_requests_running", "nv_gpu_utilization", "up"}
            picked = rows | beam.Filter(lambda r: r["name"] in wanted) | beam.Map(lambda r: (r["name"], r["unit"]))
            expected = [("vllm:num_requests_running", ""), ("nv_gpu_utilization", ""), ("up", ""), ("up", "")]
            assert_that(picked, equal_to(expected), label="points")
            quantiles = (
                rows
                | beam.Filter(lambda r: r["name"] == "vllm:e2e_request_latency_seconds")
                | beam.Map(lambda r: (r["source"], json.loads(r["tags"])["quantile"], r["unit"]))
            )
            expected = [("model-servers", q, "s") for q in ("0.5", "0.95", "0.99")]
            assert_that(quantiles, equal_to(expected), label="quantiles")
            assert_that(out["events"], equal_to([]), label="events")
            assert_that(out["dead_letters"], equal_to([]), label="dead")
            assert_that(out["health"] | beam.Map(lambda h: (h.integration, h.ok)), equal_to([("scrape", True)]),
                        label="health")  # fmt: skip


def test_repeated_polls_yield_rates_through_beam():
    start = int(time.time()) - 10
    with ExpositionServer({"/metrics": ["vllm_1.prom", "vllm_2.prom"]}) as server:
        cfg = config(server.url + "/metrics", poll={"interval_s": 2, "start": start, "stop": start + 6, "retry": FAST})
        with beam.Pipeline() as pipeline:
            out = pipeline | ReadFromPrometheus(cfg)
            names_ = out["points"] | beam.FlatMap(lambda t: t.column("name").to_pylist())
            rates = names_ | beam.Filter(lambda name: name.endswith("_rate"))
            # polls at start, +2, +4 s: the 2nd and 3rd have rates (the poller keeps its state between polls)
            expected = ["vllm:prompt_tokens_rate", "vllm:e2e_request_latency_seconds_count_rate"] * 2
            assert_that(rates, equal_to(expected))


def test_an_unreachable_endpoint_is_an_unhealthy_record_not_a_crashed_run():
    cfg = config(f"http://127.0.0.1:{free_port()}/metrics")
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromPrometheus(cfg)
        assert_that(out["health"] | beam.Map(lambda h: (h.ok, h.message.split(": GET")[0])),
                    equal_to([(False, "poll failed after 2 attempt(s): gave up after 2 attempts")]))  # fmt: skip


def test_recordings_parse_with_prometheus_client():
    for name in ("torchserve_1.prom", "triton_1.prom", "vllm_1.prom", "tfserving_1.prom"):
        assert parse_exposition(recording(name).decode())
