"""The ``kubeflow`` source against a loopback fake of the KFP v2beta1 REST API,
driven by the official ``kfp.Client`` (see ``kfp_fake.py``)."""

from __future__ import annotations

import functools
import json
import pickle
import socket
import time

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from pydantic import SecretStr

from airis_mon.errors import PermanentError, TransientError
from airis_mon.retry import RetryConfig
from airis_mon.schema import tags_from_json
from sources.kubeflow import KubeflowConfig, ReadFromKubeflow
from sources.kubeflow.client import KubeflowClient
from sources.kubeflow.poller import KubeflowPoller
from sources.polling import PollSettings
from tests.sources.kubeflow.kfp_fake import KfpFake, make_run, make_task

FAST = RetryConfig(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.002)
NOW = int(time.time()) * 1000  # whole seconds, like the server's run timestamps
HOUR = 3_600_000


@pytest.fixture(scope="module")
def server():
    with KfpFake() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    return server


def config(fake: KfpFake, **overrides) -> KubeflowConfig:
    values = {"name": "kfp", "host": fake.url, "environment": "test", "poll": PollSettings(retry=FAST)}
    return KubeflowConfig(**(values | overrides))


def make_poller(fake: KfpFake, **overrides) -> KubeflowPoller:
    poller = KubeflowPoller(config(fake, **overrides))
    poller.setup()
    return poller


def metrics(payloads: list[dict], name: str) -> list[tuple[int, float, dict]]:
    """(timestamp, value, tags) of every point called ``name``."""
    return [
        (p["timestamp"], m["value"], m["tags"])
        for p in payloads
        if "metrics" in p
        for m in p["metrics"]
        if m["name"] == name
    ]


def events(payloads: list[dict]) -> list[dict]:
    return [p for p in payloads if p.get("event_type") == "pipeline_run_state"]


def test_pages_over_more_runs_than_one_page_and_stops_at_the_lookback(fake):
    fake.pipelines["p1"] = "Train"
    fresh = [make_run(f"new-{i}", f"run {i}", "p1", "RUNNING", NOW - i * 60_000) for i in range(7)]
    old = [make_run(f"old-{i}", f"old {i}", "p1", "SUCCEEDED", NOW - 30 * HOUR - i * 60_000, NOW - 29 * HOUR)
           for i in range(5)]  # fmt: skip
    fake.runs = old + fresh  # the server sorts, not the list order
    payloads = make_poller(fake, page_size=3).poll(NOW)

    listed = [query for path, query in fake.requests if path == "/apis/v2beta1/runs"]
    assert [q["page_size"] for q in listed] == ["3", "3", "3"]  # 12 runs, 4 pages; the 3rd reaches the old ones
    assert {q["sort_by"] for q in listed} == {"created_at desc"}
    assert (
        listed[0]["page_token"] == "" and listed[1]["page_token"] and listed[2]["page_token"] != listed[1]["page_token"]
    )
    assert metrics(payloads, "run_count") == [
        (NOW, 7, {"pipeline": "Train", "state": "RUNNING", "environment": "test"})
    ]
    assert metrics(payloads, "pipeline_duration") == []  # the finished runs are all older than the window


def test_durations_are_exact_and_stamped_when_the_run_and_step_ended(fake):
    created = NOW - 2 * HOUR
    tasks = [
        make_task("t1", "load-data", "SUCCEEDED", created + 1_000, created + 2_250, created + 15_000),  # 12.75 s
        make_task("t2", "train", "SUCCEEDED", created + 16_000, None, created + 700_500),  # never "started": create
        make_task("t3", "evaluate", "SKIPPED", created + 701_000, created + 701_000, None),  # no end: no duration
    ]
    fake.pipelines["p1"] = "Fraud training"
    fake.runs = [make_run("r1", "nightly-42", "p1", "SUCCEEDED", created, created + 754_000, tasks, "exp-9")]
    payloads = make_poller(fake).poll(NOW)

    assert metrics(payloads, "pipeline_duration") == [
        (created + 754_000, 754.0, {"pipeline": "Fraud training", "run_name": "nightly-42", "state": "SUCCEEDED",
                                    "experiment_id": "exp-9", "environment": "test"}),
    ]  # fmt: skip
    step = {"pipeline": "Fraud training", "state": "SUCCEEDED", "environment": "test"}
    assert metrics(payloads, "step_duration") == [
        (created + 15_000, 12.75, step | {"step": "load-data"}),
        (created + 700_500, 684.5, step | {"step": "train"}),
    ]
    units = {m["name"]: m["unit"] for p in payloads if "metrics" in p for m in p["metrics"]}
    assert units == {"pipeline_duration": "s", "step_duration": "s", "run_count": "count", "success_rate": "ratio"}


def test_success_rate_and_run_count_per_pipeline(fake):
    fake.pipelines["pa"] = "A"  # "pb" is unknown to the server (404): its id names it
    spec = {"pipelineInfo": {"name": "c-from-spec"}, "root": {}, "schemaVersion": "2.1.0"}
    t = NOW - HOUR
    fake.runs = [
        *[make_run(f"a{i}", f"a{i}", "pa", "SUCCEEDED", t + i * 1000, t + i * 1000 + 60_000) for i in range(3)],
        make_run("a3", "a3", "pa", "FAILED", t + 3000, t + 63_000, error="OOMKilled"),
        make_run("a4", "a4", "pa", "RUNNING", t + 4000),
        make_run("b0", "b0", "pb", "CANCELED", t, t + 10_000),
        make_run("b1", "b1", "pb", "SUCCEEDED", t + 1000, t + 11_000),
        make_run("b2", "b2", "pb", "SKIPPED", t + 2000, t + 2000),
        make_run("c0", "c0", None, "RUNNING", t, pipeline_spec=spec),
    ]
    payloads = make_poller(fake).poll(NOW)

    rates = {tags["pipeline"]: value for _, value, tags in metrics(payloads, "success_rate")}
    assert rates == {"A": 0.75, "pb": 0.5}  # SKIPPED not counted; no finished run in c-from-spec: no rate
    counts = {(tags["pipeline"], tags["state"]): value for _, value, tags in metrics(payloads, "run_count")}
    assert counts == {("A", "SUCCEEDED"): 3, ("A", "FAILED"): 1, ("A", "RUNNING"): 1, ("pb", "CANCELED"): 1,
                      ("pb", "SUCCEEDED"): 1, ("pb", "SKIPPED"): 1, ("c-from-spec", "RUNNING"): 1}  # fmt: skip
    assert fake.paths("/apis/v2beta1/pipelines/") == ["/apis/v2beta1/pipelines/pa", "/apis/v2beta1/pipelines/pb"]


def test_state_change_events_come_on_the_second_poll_only_for_runs_that_changed(fake):
    fake.pipelines["p1"] = "Train"
    t = NOW - HOUR
    fake.runs = [make_run(f"r{i}", f"run-{i}", "p1", "RUNNING", t + i * 1000) for i in range(4)]
    fake.runs.append(make_run("done", "done", "p1", "SUCCEEDED", t, t + 5000))
    poller = make_poller(fake)
    first = poller.poll(NOW)
    assert events(first) == []  # baseline: nothing is known to have changed
    assert [v for _, v, _ in metrics(first, "pipeline_duration")] == [5.0]

    fake.set_state("r0", "SUCCEEDED", t + 120_000, finished=True)
    fake.set_state("r1", "FAILED", t + 121_000, finished=True, error="task train failed: exit code 137")
    fake.set_state("r2", "CANCELED", t + 122_000, finished=True)
    fake.runs.append(make_run("r9", "run-9", "p1", "PENDING", t + 200_000))
    second = poller.poll(NOW + 60_000)

    got = [(e["timestamp"], e["severity"], e["data"]["run_id"], e["data"]["from_state"], e["data"]["to_state"])
           for e in events(second)]  # fmt: skip
    assert got == [
        (t + 120_000, "info", "r0", "RUNNING", "SUCCEEDED"),
        (t + 121_000, "error", "r1", "RUNNING", "FAILED"),
        (t + 122_000, "warning", "r2", "RUNNING", "CANCELED"),
        (t + 200_000, "info", "r9", None, "PENDING"),  # appeared since the last poll
    ]
    failed = events(second)[1]
    assert failed["source"] == "kubeflow"
    assert failed["data"] == {"run_id": "r1", "display_name": "run-1", "pipeline": "Train", "experiment_id": "exp-1",
                              "environment": "test", "from_state": "RUNNING", "to_state": "FAILED",
                              "error": "task train failed: exit code 137"}  # fmt: skip
    durations = {tags["run_name"]: v for _, v, tags in metrics(second, "pipeline_duration")}
    assert durations == {"run-0": 120.0, "run-1": 120.0, "run-2": 120.0}  # "done" is not repeated

    third = poller.poll(NOW + 120_000)
    assert events(third) == [] and metrics(third, "pipeline_duration") == []


def test_a_state_file_keeps_new_pollers_from_repeating_events(fake, tmp_path):
    state_file = tmp_path / "state" / "kfp.json"
    t = NOW - HOUR
    fake.runs = [make_run("r0", "run-0", "p1", "RUNNING", t), make_run("r1", "run-1", "p1", "RUNNING", t + 1000)]
    make_poller(fake, state_file=str(state_file)).poll(NOW)  # baseline, saved
    fake.set_state("r0", "FAILED", t + 60_000, finished=True)

    first = make_poller(fake, state_file=str(state_file)).poll(NOW + 60_000)
    assert [e["data"]["run_id"] for e in events(first)] == ["r0"]
    assert len(metrics(first, "pipeline_duration")) == 1

    again = make_poller(fake, state_file=str(state_file)).poll(NOW + 120_000)  # e.g. the next bounded run
    assert events(again) == [] and metrics(again, "pipeline_duration") == []

    fake.set_state("r1", "SUCCEEDED", t + 180_000, finished=True)
    later = make_poller(fake, state_file=str(state_file)).poll(NOW + 180_000)
    assert [(e["data"]["run_id"], e["data"]["to_state"]) for e in events(later)] == [("r1", "SUCCEEDED")]

    saved = json.loads(state_file.read_text())
    assert saved["runs"]["r1"] == {"state": "SUCCEEDED", "finished_ms": t + 180_000, "created_ms": t + 1000}
    assert sorted(p.name for p in state_file.parent.iterdir()) == ["kfp.json"]  # no temp file left behind


def test_a_corrupt_state_file_is_a_permanent_error(fake, tmp_path):
    state_file = tmp_path / "kfp.json"
    state_file.write_text("{not json")
    with pytest.raises(PermanentError, match="not a kubeflow state file"):
        make_poller(fake, state_file=str(state_file)).poll(NOW)


def test_task_details_are_read_from_the_run_when_the_listing_has_none(fake):
    t = NOW - HOUR
    tasks = [make_task("t1", "train", "SUCCEEDED", t, t + 1000, t + 31_000)]
    fake.runs = [make_run("r1", "run-1", "p1", "SUCCEEDED", t, t + 40_000, tasks), make_run("r2", "run-2", "p1",
                 "RUNNING", t + 1000)]  # fmt: skip
    fake.list_details = False
    payloads = make_poller(fake).poll(NOW)
    assert [v for _, v, _ in metrics(payloads, "step_duration")] == [30.0]
    assert fake.paths("/apis/v2beta1/runs/") == ["/apis/v2beta1/runs/r1"]  # only the newly finished run


def test_vendor_errors_are_translated(fake):
    client = KubeflowClient(fake.url, timeout_s=0.2)
    client.connect()
    fake.fail_with = 503
    with pytest.raises(TransientError, match="list_runs: HTTP 503 upstream connect error"):
        client.list_runs(0, 10)
    fake.fail_with = 403
    with pytest.raises(PermanentError, match="list_runs: HTTP 403 Failed to authorize"):
        client.list_runs(0, 10)
    fake.fail_with = None
    fake.delay_s = 1.0
    with pytest.raises(TransientError, match=r"list_runs: .*[Tt]imeout"):
        client.list_runs(0, 10)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(TransientError, match="healthz: MaxRetryError"):
        KubeflowClient(closed).connect()


def test_the_namespace_and_experiment_reach_the_server(fake):
    client = KubeflowClient(fake.url, namespace="team-ml")
    client.list_runs(0, 5)
    assert fake.requests[0][0] == "/apis/v2beta1/healthz"  # checked even though the SDK skips it with a namespace
    assert fake.requests[1][1]["namespace"] == "team-ml"
    KubeflowClient(fake.url, experiment_id="exp-7").list_runs(0, 5)
    assert fake.requests[-1][1]["experiment_id"] == "exp-7"


def test_the_token_is_sent_as_a_bearer_token_and_never_shown(fake):
    cfg = config(fake, token=SecretStr("s3cret-token"))
    make_poller(fake, token=cfg.token).poll(NOW)
    assert set(fake.authorization) == {"Bearer s3cret-token"}
    assert "s3cret-token" not in repr(cfg) and "s3cret-token" not in str(cfg.model_dump())


def test_config_resolves_the_state_file_and_the_factory_pickles(tmp_path):
    cfg = KubeflowConfig.model_validate(
        {"name": "kfp", "type": "kubeflow", "host": "http://127.0.0.1:1", "state_file": "state/kfp.json"},
        context={"base_dir": str(tmp_path)},
    )
    assert cfg.state_file == str(tmp_path / "state" / "kfp.json")
    assert (cfg.page_size, cfg.lookback_s) == (100, 86_400)
    restored = pickle.loads(pickle.dumps(functools.partial(KubeflowPoller, cfg)))()
    assert isinstance(restored, KubeflowPoller)
    with pytest.raises(ValueError, match="extra"):
        KubeflowConfig(name="kfp", host="http://127.0.0.1:1", pagesize=5)


# --- end to end through Beam ----------------------------------------------------------------------


def _run_durations(table) -> list[tuple[str, float]]:
    """(run_name, value) of the pipeline_duration points of one Arrow batch."""
    columns = (table.column(c).to_pylist() for c in ("name", "value", "tags"))
    return [
        (tags_from_json(tags)["run_name"], v) for n, v, tags in zip(*columns, strict=True) if n == "pipeline_duration"
    ]


@pytest.mark.slow
def test_end_to_end_bounded_runs_report_durations_events_and_health(fake, tmp_path):
    fake.pipelines["p1"] = "Train"
    t = NOW - HOUR
    tasks = [make_task("t1", "train", "SUCCEEDED", t, t + 2000, t + 62_000)]
    fake.runs = [make_run("r0", "run-0", "p1", "SUCCEEDED", t, t + 90_000, tasks),
                 make_run("r1", "run-1", "p1", "RUNNING", t + 1000)]  # fmt: skip
    cfg = config(fake, state_file=str(tmp_path / "kfp.json"))

    with beam.Pipeline() as pipeline:  # first bounded run: the baseline
        out = pipeline | "Read" >> ReadFromKubeflow(cfg)
        points = out["points"] | beam.FlatMap(
            lambda table: zip(table.column("name").to_pylist(), table.column("value").to_pylist(), strict=True)
        )
        assert_that(points, equal_to([("pipeline_duration", 90.0), ("step_duration", 60.0), ("run_count", 1.0),
                                      ("run_count", 1.0), ("success_rate", 1.0)]), label="points")  # fmt: skip
        assert_that(out["events"], equal_to([]), label="no events")
        assert_that(out["health"] | beam.Map(lambda h: (h.integration, h.ok, h.records)),
                    equal_to([("kfp", True, 5)]), label="health")  # fmt: skip

    fake.set_state("r1", "FAILED", t + 300_000, finished=True, error="exit code 1")
    with beam.Pipeline() as pipeline:  # second bounded run: the change, once
        out = pipeline | "Read" >> ReadFromKubeflow(cfg)
        assert_that(
            out["events"] | beam.Map(lambda e: (e.event_type, e.severity, e.timestamp_ms, json.loads(e.data)["error"])),
            equal_to([("pipeline_run_state", "error", t + 300_000, "exit code 1")]),
            label="events",
        )
        durations = out["points"] | beam.FlatMap(_run_durations)
        assert_that(durations, equal_to([("run-1", 299.0)]), label="durations")
        assert_that(out["dead_letters"], equal_to([]), label="no dead letters")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "attempts", "reason"),
    [
        (503, 3, "gave up after 3 attempts: healthz: HTTP 503 upstream connect error"),
        (403, 1, "permanent failure: healthz: HTTP 403 Failed to authorize the request"),
    ],
)
def test_an_unreachable_or_forbidden_server_is_an_unhealthy_record_not_a_crash(fake, status, attempts, reason):
    fake.fail_with = status
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromKubeflow(config(fake))
        expected = f"poll failed after {attempts} attempt(s): {reason}"
        health = out["health"] | beam.Map(lambda h: (h.ok, h.message.startswith(expected)))
        assert_that(health, equal_to([(False, True)]), label="health")
        assert_that(out["events"], equal_to([]), label="events")
    assert fake.paths() == ["/apis/v2beta1/healthz"] * attempts
