"""An in-process gRPC ``google.pubsub.v1.Subscriber`` on 127.0.0.1: what Beam's local Pub/Sub read calls.

The DirectRunner's reader (``_PubSubReadEvaluator``) calls ``Pull`` (``max_messages=10``) and then
``Acknowledge`` with the ack ids it received, through ``google.cloud.pubsub.SubscriberClient``, which
talks plain gRPC to ``PUBSUB_EMULATOR_HOST`` when that is set.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from google.protobuf import empty_pb2
from google.pubsub_v1.types import AcknowledgeRequest, PubsubMessage, PullRequest, PullResponse, ReceivedMessage

from tests.grpc_peer import GrpcPeer, serialize_message


class FakeSubscriber(GrpcPeer):
    """Serves ``messages`` (bytes) once each; records the subscriptions pulled and the ack ids acknowledged."""

    def __init__(self, messages: list[bytes]):
        now = datetime.now(timezone.utc)
        self._pending = [
            ReceivedMessage(ack_id=f"ack-{i}", message=PubsubMessage(data=data, message_id=str(i), publish_time=now))
            for i, data in enumerate(messages)
        ]
        self._lock = threading.Lock()
        self.pulled_from: set[str] = set()
        self.acked_from: set[str] = set()
        self.acked: list[str] = []
        super().__init__("google.pubsub.v1.Subscriber", {
            "Pull": (self._pull, PullRequest.pb().FromString, serialize_message),
            "Acknowledge": (self._acknowledge, AcknowledgeRequest.pb().FromString, serialize_message),
        })  # fmt: skip

    def _pull(self, request, context):
        with self._lock:
            self.pulled_from.add(request.subscription)
            served = self._pending[: request.max_messages]
            del self._pending[: len(served)]
        if not served:
            time.sleep(0.05)  # like a long poll that found nothing: keeps the reader from spinning
        return PullResponse(received_messages=served)

    def _acknowledge(self, request, context):
        with self._lock:
            self.acked_from.add(request.subscription)
            self.acked.extend(request.ack_ids)
        return empty_pb2.Empty()
