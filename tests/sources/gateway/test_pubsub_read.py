"""Streaming read of the gateway's Pub/Sub hand-off: a real pipeline against an in-process Subscriber peer."""

import json
import threading
import time
import uuid

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

from airis_mon import streams
from airis_mon.config import parse_config
from sources.gateway.transform import ReadFromGatewaySpool
from tests.conftest import DAY_MS, metrics_payload
from tests.sources.gateway.pubsub_peer import FakeSubscriber

TOPIC = "projects/airis-mon-test/topics/ingest"
SUBSCRIPTION = "projects/airis-mon-test/subscriptions/pipeline"

#: run id -> what the pipeline's collectors received (the local runner runs them in this process)
_RECEIVED: dict[str, dict[str, list]] = {}
_LOCK = threading.Lock()


class _Collect(beam.DoFn):
    def __init__(self, run_id: str, kind: str):
        self._run_id, self._kind = run_id, kind

    def process(self, element):
        rows = element.to_pylist() if self._kind == streams.POINTS else [element]
        with _LOCK:
            _RECEIVED[self._run_id][self._kind].extend(rows)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_streaming_run_parses_and_acknowledges_the_published_records(tmp_path, monkeypatch):
    metrics = metrics_payload(DAY_MS, "ci", ("queue_depth", 7.5, "count", {"queue": "ingest"}))
    event = {"timestamp": DAY_MS + 1, "event_type": "deploy", "source": "ci", "severity": "info", "data": {"v": 3}}
    published = [json.dumps(metrics).encode(), json.dumps(event).encode(), b"not json at all"]
    gateway = {"name": "api", "type": "gateway", "spool": "spool", "handoff": "pubsub"}
    document = {"integrations": [{**gateway, "pubsub_topic": TOPIC, "pubsub_subscription": SUBSCRIPTION}]}
    config = parse_config(document, tmp_path).integrations[0]
    run_id = uuid.uuid4().hex
    _RECEIVED[run_id] = {kind: [] for kind in streams.SOURCE_OUTPUTS}

    def received(kind):
        with _LOCK:
            return list(_RECEIVED[run_id][kind])

    with FakeSubscriber(published) as peer:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", peer.address)
        # The in-process runner by name: the default DirectRunner would first try Prism, which downloads a binary.
        pipeline = beam.Pipeline(runner=BundleBasedDirectRunner(), options=PipelineOptions(["--streaming"]))
        outputs = pipeline | ReadFromGatewaySpool(config)
        for kind in (streams.POINTS, streams.EVENTS, streams.DEAD_LETTERS):
            _ = outputs[kind] | f"Collect{kind}" >> beam.ParDo(_Collect(run_id, kind))
        result = pipeline.run()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                received(streams.POINTS) and received(streams.EVENTS) and received(streams.DEAD_LETTERS)
            ):
                time.sleep(0.1)
        finally:
            result.cancel()
        points, events, dead = (received(kind) for kind in (streams.POINTS, streams.EVENTS, streams.DEAD_LETTERS))
        _RECEIVED.pop(run_id)
        pulled_from, acked_from, acked = set(peer.pulled_from), set(peer.acked_from), sorted(peer.acked)

    assert points == [
        {
            "timestamp": float(DAY_MS),
            "source": "ci",
            "name": "queue_depth",
            "value": 7.5,
            "unit": "count",
            "tags": '{"queue":"ingest"}',
        }
    ]
    assert [tuple(e) for e in events] == [(DAY_MS + 1, "deploy", "ci", "info", '{"v": 3}')]
    assert len(dead) == 1
    assert dead[0].component == "gateway:api"
    assert dead[0].reason.startswith(f"line is not JSON (Expecting value) in {SUBSCRIPTION}")
    assert json.loads(dead[0].original) == "not json at all"
    assert pulled_from == acked_from == {SUBSCRIPTION}
    assert acked == ["ack-0", "ack-1", "ack-2"]
