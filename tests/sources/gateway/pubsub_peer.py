"""An in-process gRPC ``google.pubsub.v1.Subscriber`` on 127.0.0.1: what Beam's local Pub/Sub read calls.

The DirectRunner's reader (``_PubSubReadEvaluator``) calls ``Pull`` (``max_messages=10``) and then
``Acknowledge`` with the ack ids it received, through ``google.cloud.pubsub.SubscriberClient``, which
talks plain gRPC to ``PUBSUB_EMULATOR_HOST`` when that is set.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from datetime import datetime, timezone

import grpc
from google.protobuf import empty_pb2
from google.pubsub_v1.types import AcknowledgeRequest, PubsubMessage, PullRequest, PullResponse, ReceivedMessage


class FakeSubscriber:
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
        handler = grpc.method_handlers_generic_handler("google.pubsub.v1.Subscriber", {
            "Pull": grpc.unary_unary_rpc_method_handler(
                self._pull, request_deserializer=PullRequest.pb().FromString,
                response_serializer=lambda response: PullResponse.serialize(response)),
            "Acknowledge": grpc.unary_unary_rpc_method_handler(
                self._acknowledge, request_deserializer=AcknowledgeRequest.pb().FromString,
                response_serializer=empty_pb2.Empty.SerializeToString),
        })  # fmt: skip
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        self.server.add_generic_rpc_handlers((handler,))
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"

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

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(0)
