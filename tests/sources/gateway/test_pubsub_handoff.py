"""The Pub/Sub hand-off with the official client against an in-process gRPC Publisher peer."""

import json

import grpc
import pytest
from fastapi.testclient import TestClient
from google.pubsub_v1.types import PublishRequest, PublishResponse

from airis_mon.config import parse_config
from airis_mon.errors import ConfigError
from sources.gateway.app import create_app
from sources.gateway.envelope import payloads_of
from sources.gateway.handoff import PubSubHandoff
from tests.conftest import DAY_MS, metrics_payload
from tests.grpc_peer import GrpcPeer, serialize_message

TOPIC = "projects/test-project/topics/airis-mon-ingest"


class FakePublisher(GrpcPeer):
    """``google.pubsub.v1.Publisher/Publish`` on 127.0.0.1; can refuse with UNAVAILABLE."""

    def __init__(self):
        self.messages = []
        self.refuse = False
        super().__init__(
            "google.pubsub.v1.Publisher",
            {
                "Publish": (self._publish, PublishRequest.pb().FromString, serialize_message),
            },
        )

    def _publish(self, request, context):
        if self.refuse:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "publisher lacks pubsub.topics.publish")
        assert request.topic == TOPIC
        first = len(self.messages)
        self.messages.extend(request.messages)
        return PublishResponse(message_ids=[str(first + i) for i in range(len(request.messages))])


def test_records_are_acknowledged_by_pubsub_before_append_returns():
    with FakePublisher() as peer:
        handoff = PubSubHandoff(TOPIC, endpoint=peer.address, timeout_s=10)
        event = {"timestamp": DAY_MS, "event_type": "deploy", "source": "ci", "severity": "info", "data": {}}
        handoff.append([metrics_payload(DAY_MS, "ci", ("x", 1.0, "", {})), event])
        handoff.close()
    assert [dict(m.attributes) for m in peer.messages] == [{"kind": "metrics"}, {"kind": "event"}]
    (ack,) = {json.loads(m.data)["ack"] for m in peer.messages}  # both records of the request carry its id
    assert payloads_of(json.loads(peer.messages[1].data)) == ([event], ack)


def test_the_gateway_answers_503_when_pubsub_refuses(tmp_path, monkeypatch):
    monkeypatch.setenv("T", "token-for-pubsub-test")
    tokens = [{"name": "a", "token": {"env": "T"}}]
    gateway = {"name": "api", "type": "gateway", "spool": "spool", "handoff": "pubsub", "pubsub_topic": TOPIC}
    document = {"integrations": [{**gateway, "tokens": tokens}]}
    config = parse_config(document, tmp_path).integrations[0]
    with FakePublisher() as peer:
        client = TestClient(create_app(config, PubSubHandoff(TOPIC, endpoint=peer.address, timeout_s=10)))
        headers = {"Authorization": "Bearer token-for-pubsub-test"}
        body = metrics_payload(DAY_MS, "ci", ("x", 1.0, "", {}))
        assert client.post("/api/v1/metrics/ingest", json=body, headers=headers).status_code == 202
        peer.refuse = True
        refused = client.post("/api/v1/metrics/ingest", json=body, headers=headers)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert len(peer.messages) == 1


def test_pubsub_handoff_needs_a_topic(tmp_path):
    with pytest.raises(ConfigError, match="handoff pubsub needs pubsub_topic"):
        parse_config(
            {"integrations": [{"name": "api", "type": "gateway", "spool": "s", "handoff": "pubsub"}]}, tmp_path
        )
