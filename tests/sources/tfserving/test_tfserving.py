"""The ``tfserving`` source against an in-process TensorFlow Serving built from the official stubs
(127.0.0.1), and a loopback Prometheus endpoint serving TF Serving's recorded exposition."""

from __future__ import annotations

import json
import time
from pathlib import Path

import apache_beam as beam
import grpc
import pytest
from apache_beam.testing.util import assert_that, equal_to
from pydantic import ValidationError

from airis_mon.errors import PermanentError, TransientError
from airis_mon.payloads import parse_payload
from airis_mon.retry import RetryConfig
from sources.tfserving import ReadFromTFServing, TFServingConfig
from sources.tfserving.client import TFServingClient, load_stubs
from sources.tfserving.poller import TFServingPoller
from tests.sources.prometheus.exposition_server import ExpositionServer
from tests.sources.tfserving.fake_server import INTERNAL, OK, FakeModel, FakeTFServing

FAST = RetryConfig(max_attempts=2, initial_backoff_s=0.001, max_backoff_s=0.002)
DEADLINE_S = 0.5
PROBE = {"x": {"dtype": "DT_FLOAT", "shape": [1, 4], "values": [0.1, 0.2, 0.3, 0.4]}}
ROOT = Path(__file__).resolve().parents[3]


def fake_models() -> dict[str, FakeModel]:
    signature = {"x": ("DT_FLOAT", [1, 4])}
    return {
        "fraud": FakeModel({13: ("LOADING", OK, ""), 12: ("AVAILABLE", OK, ""), 11: ("AVAILABLE", OK, "")}, signature),
        "slow": FakeModel({3: ("AVAILABLE", OK, "")}, signature, predict_delay_s=DEADLINE_S + 1.0),
        "warming": FakeModel({1: ("LOADING", OK, "")}, signature),
        "broken": FakeModel({4: ("END", INTERNAL, "Failed to load: saved_model.pb truncated")}),
        "locked": FakeModel({1: ("AVAILABLE", OK, "")}, abort_with=grpc.StatusCode.PERMISSION_DENIED),
    }


@pytest.fixture(scope="module")
def api():
    """The official stubs, imported once for the whole module (as a worker does in setup())."""
    return load_stubs()


@pytest.fixture(scope="module")
def server(api):
    fake = FakeTFServing(api, fake_models()).start()
    yield fake
    fake.stop()


def config(target: str, models: list[dict], **extra) -> TFServingConfig:
    document = {"name": "tfs", "target": target, "models": models, "deadline_s": DEADLINE_S,
                "environment": "prod", "poll": {"retry": FAST}, **extra}  # fmt: skip
    return TFServingConfig.model_validate(document)


WATCHED = [
    {"name": "fraud", "probe_input": PROBE},
    {"name": "fraud", "version": 11, "probe_input": PROBE},
    {"name": "ghost", "probe_input": PROBE},
    {"name": "slow", "probe_input": PROBE},
    {"name": "warming", "probe_input": PROBE},
    {"name": "broken"},
]


def poll(cfg: TFServingConfig, *times_ms: int, clock=time.time) -> list[list[dict]]:
    poller = TFServingPoller(cfg, clock)
    poller.setup()
    try:
        return [poller.poll(now_ms) for now_ms in times_ms]
    finally:
        poller.teardown()


def events_of(payloads: list[dict]) -> list[tuple]:
    return [
        (p["event_type"], p["severity"], p["data"]["model_name"], p["data"]["model_version"],
         p["data"].get("state") or p["data"]["grpc_code"])
        for p in payloads if "event_type" in p
    ]  # fmt: skip


def test_a_poll_reports_version_states_probe_latency_and_per_model_failures(server):
    payloads = poll(config(server.target, WATCHED), 1_000)[0]
    assert events_of(payloads) == [
        ("model_version_status", "warning", "fraud", "13", "LOADING"),
        ("model_version_status", "info", "fraud", "12", "AVAILABLE"),
        ("model_version_status", "info", "fraud", "11", "AVAILABLE"),
        ("model_version_status", "info", "fraud", "11", "AVAILABLE"),
        ("model_status_failed", "error", "ghost", "", "NOT_FOUND"),
        ("model_version_status", "info", "slow", "3", "AVAILABLE"),
        ("inference_probe_failed", "error", "slow", "", "DEADLINE_EXCEEDED"),
        ("model_version_status", "warning", "warming", "1", "LOADING"),
        ("model_version_status", "error", "broken", "4", "END"),
    ]
    [broken] = [p["data"] for p in payloads if p.get("data", {}).get("model_name") == "broken"]
    assert (broken["error_code"], broken["error_message"]) == ("INTERNAL", "Failed to load: saved_model.pb truncated")
    [ghost] = [p["data"] for p in payloads if p.get("event_type") == "model_status_failed"]
    assert ghost["details"] == "Could not find any versions of model ghost" and ghost["target"] == server.target
    [metrics] = [p for p in payloads if "metrics" in p]
    assert metrics["source"] == "tensorflow_serving" and metrics["timestamp"] == 1_000
    latencies = [(m["name"], m["unit"], m["tags"]) for m in metrics["metrics"]]
    tags = {"model_name": "fraud", "framework": "tensorflow", "environment": "prod"}
    assert latencies == [("inference_latency", "ms", {**tags, "model_version": "12"}),  # the latest answered
                         ("inference_latency", "ms", {**tags, "model_version": "11"})]  # fmt: skip
    assert all(0 < m["value"] < DEADLINE_S * 1000 for m in metrics["metrics"])
    for payload in payloads:
        points, events, dead = parse_payload(payload)
        assert dead == [] and len(points) + len(events) >= 1


def test_the_probe_sends_the_configured_tensor_and_skips_models_without_an_available_version(server):
    before = len(server.predictions)
    poll(config(server.target, WATCHED), 1_000)
    probed = server.predictions[before:]
    assert [(r.model_spec.name, r.model_spec.version.value if r.model_spec.HasField("version") else None)
            for r in probed] == [("fraud", None), ("fraud", 11), ("slow", None)]  # fmt: skip
    tensor = probed[0].inputs["x"]
    assert (tensor.dtype, [d.size for d in tensor.tensor_shape.dim]) == (server.api.types_pb2.DT_FLOAT, [1, 4])
    assert list(tensor.float_val) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert probed[0].model_spec.signature_name == "serving_default"


def test_tensor_protos_for_other_dtypes(api):
    client = TFServingClient("127.0.0.1:1", DEADLINE_S)  # no call is made
    try:
        cfg = config("127.0.0.1:1", [{"name": "m", "probe_input": {
            "ids": {"dtype": "DT_INT64", "shape": [2], "values": [7, 8]},
            "text": {"dtype": "DT_STRING", "shape": [1, 1], "values": ["héllo"]},
            "mask": {"dtype": "DT_BOOL", "shape": [3], "values": [True]},
        }}])  # fmt: skip
        probe = cfg.models[0].probe_input
        ids, text, mask = (client.tensor_proto(probe[name]) for name in ("ids", "text", "mask"))
    finally:
        client.close()
    assert (api.types_pb2.DataType.Name(ids.dtype), list(ids.int64_val)) == ("DT_INT64", [7, 8])
    assert (list(text.string_val), [d.size for d in text.tensor_shape.dim]) == (["héllo".encode()], [1, 1])
    assert list(mask.bool_val) == [True]


def test_the_servers_prometheus_metrics_are_scraped_with_the_prometheus_parsers(server):
    path = "/monitoring/prometheus/metrics"
    with ExpositionServer({path: ["tfserving_1.prom", "tfserving_2.prom"]}) as http:
        cfg = config(server.target, [{"name": "fraud"}], prometheus_url=http.url + path)
        readings = iter([100.0, 110.0])
        _, second = poll(cfg, 1_000, 2_000, clock=lambda: next(readings))
    [metrics] = [p for p in second if "metrics" in p]
    points = {(m["name"], m["tags"].get("status") or m["tags"].get("quantile") or m["tags"].get("entrypoint")):
              (m["value"], m["unit"]) for m in metrics["metrics"]}  # fmt: skip
    assert points[(":tensorflow:serving:request_count_rate", "OK")] == (10.0, "per_second")  # 500 -> 600 in 10 s
    assert points[(":tensorflow:serving:request_latency", "0.5")] == (pytest.approx(1983.59 + 1586.88 * 10 / 50), "us")
    assert not [name for name, _ in points if not name.startswith(":tensorflow:serving:")]  # internals left out
    assert {m["tags"]["environment"] for m in metrics["metrics"]} == {"prod"}
    assert {m["tags"]["framework"] for m in metrics["metrics"]} == {"tensorflow"}


def test_a_failed_scrape_is_an_event_not_a_failed_poll(server):
    with ExpositionServer({"/other": ["tfserving_1.prom"]}) as http:
        cfg = config(server.target, [{"name": "fraud"}], prometheus_url=http.url + "/monitoring/prometheus/metrics")
        payloads = poll(cfg, 1_000)[0]
    failed = [p["data"] for p in payloads if p.get("event_type") == "scrape_failed"]
    assert [d["error"] for d in failed] == [f"GET {http.url}/monitoring/prometheus/metrics: HTTP 404"]


def test_a_refusing_server_is_a_permanent_failure(server):
    with pytest.raises(PermanentError, match="PERMISSION_DENIED"):
        poll(config(server.target, [{"name": "locked"}]), 1_000)


def test_an_unreachable_server_fails_the_poll_with_a_transient_error(api):
    stopped = FakeTFServing(api, fake_models()).start()
    stopped.stop()
    with pytest.raises(TransientError, match=f"GetModelStatus\\(fraud\\) on {stopped.target}: UNAVAILABLE"):
        poll(config(stopped.target, WATCHED), 1_000)


def test_through_beam_points_events_and_a_healthy_record(server):
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromTFServing(config(server.target, WATCHED))
        points = out["points"] | beam.FlatMap(lambda t: t.to_pylist())
        assert_that(
            points | beam.Map(lambda r: (r["source"], r["name"], r["unit"], json.loads(r["tags"])["model_version"])),
            equal_to([("tensorflow_serving", "inference_latency", "ms", "12"),
                      ("tensorflow_serving", "inference_latency", "ms", "11")]),
            label="points",
        )  # fmt: skip
        kinds = out["events"] | beam.Map(lambda e: (e.event_type, e.severity, json.loads(e.data)["model_name"]))
        assert_that(
            kinds | beam.Filter(lambda k: k[0] != "model_version_status"),
            equal_to([("model_status_failed", "error", "ghost"), ("inference_probe_failed", "error", "slow")]),
            label="failures",
        )
        assert_that(out["dead_letters"], equal_to([]), label="dead")
        assert_that(out["health"] | beam.Map(lambda h: (h.integration, h.ok, h.records)),
                    equal_to([("tfs", True, 2 + 9)]), label="health")  # fmt: skip


def test_through_beam_a_stopped_server_is_an_unhealthy_record_not_a_crashed_run(api):
    stopped = FakeTFServing(api, fake_models()).start()
    stopped.stop()
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromTFServing(config(stopped.target, WATCHED))
        assert_that(out["health"] | beam.Map(lambda h: (h.ok, h.records, "UNAVAILABLE" in h.message,
                                                          h.message.split(":")[0])),
                    equal_to([(False, 0, True, "poll failed after 2 attempt(s)")]), label="health")  # fmt: skip
        assert_that(out["events"], equal_to([]), label="events")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"target": "tf-serving"}, "must be host:port"),
        ({"target": "http://tf:8500"}, "must be host:port"),
        ({"prometheus_url": "tf:8501/metrics"}, "absolute http"),
        ({"models": [{"name": "m", "probe_input": {"x": {"dtype": "DT_FLOAT", "shape": [2, 2], "values": [1, 2]}}}]},
         "holds 4 values"),
        ({"models": [{"name": "m", "probe_input": {"x": {"dtype": "DT_HALF", "shape": [1], "values": [1]}}}]},
         "probe_input.x.dtype"),
        ({"models": [{"name": "m", "probe_input": {"x": {"dtype": "DT_INT32", "shape": [1], "values": [1.5]}}}]},
         "must be integers"),
        ({"models": [{"name": "m"}, {"name": "m"}]}, "may appear once"),
        ({"deadline_s": 0}, "greater than 0"),
    ],
)  # fmt: skip
def test_config_problems_are_reported(change, problem):
    document = {"name": "tfs", "target": "127.0.0.1:8500", "models": [{"name": "m"}], **change}
    with pytest.raises(ValidationError, match=problem):
        TFServingConfig.model_validate(document)
