"""Hand-offs from the gateway to the pipeline: the local spool, or Pub/Sub on GCP.

Both have ``append(records)``, which returns only once the records are
durable (fsync'ed, or acknowledged by Pub/Sub with message ids) and raises
otherwise, so the gateway answers 2xx only for records that cannot be lost.

Pub/Sub: one message per record, the record's JSON as data and its kind
(``metrics`` or ``event``) as the ``kind`` attribute, published with the
official ``google-cloud-pubsub`` client (the ``gcp`` extra). ``endpoint``
points the client at an emulator or a test peer over plain gRPC.
"""

from __future__ import annotations

import json

from sources.gateway.spool import SpoolWriter

__all__ = ["PubSubHandoff", "SpoolWriter", "record_kind"]


def record_kind(record: dict) -> str:
    return "metrics" if "metrics" in record else "event"


class PubSubHandoff:
    """Publishes records to ``topic`` (``projects/P/topics/T``) and waits for the acks."""

    def __init__(self, topic: str, endpoint: str | None = None, timeout_s: float = 30.0):
        from google.cloud import pubsub_v1

        if endpoint:
            import grpc
            from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

            transport = PublisherGrpcTransport(channel=grpc.insecure_channel(endpoint))
            self._client = pubsub_v1.PublisherClient(transport=transport)
        else:
            self._client = pubsub_v1.PublisherClient()
        self._topic = topic
        self._timeout_s = timeout_s

    def append(self, records: list[dict]) -> int:
        """Publish every record; return the bytes published once Pub/Sub acknowledged all of them."""
        futures, size = [], 0
        for record in records:
            data = json.dumps(record, separators=(",", ":"), allow_nan=False).encode()
            size += len(data)
            futures.append(self._client.publish(self._topic, data, kind=record_kind(record)))
        for future in futures:
            future.result(timeout=self._timeout_s)  # raises if Pub/Sub did not accept it
        return size

    def rotate_if_due(self) -> bool:
        return False

    def close(self) -> None:
        self._client.stop()
