"""Hand-offs from the gateway to the pipeline: the local spool, or Pub/Sub on GCP.

Both have ``submit(entry)``, whose future completes with the request's ack
id only once its records are durable (fsync'ed, or acknowledged by Pub/Sub
with message ids) and with the error otherwise, so the gateway answers 2xx
only for records that cannot be lost; ``append(records)`` is the blocking form.

Pub/Sub: one message per record, its data the spool envelope of that record
alone (:mod:`sources.gateway.envelope`, carrying the request's ack id), its
kind (``metrics`` or ``event``) as the ``kind`` attribute, published with the
official ``google-cloud-pubsub`` client (the ``gcp`` extra). ``endpoint``
points the client at an emulator or a test peer over plain gRPC. The ack id
is random (``p`` + 24 hex digits); ``GET /api/v1/ingest/{id}`` cannot look it
up (Pub/Sub holds the records). Dedup keys are remembered in memory only with
this hand-off (a restart forgets them).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from concurrent.futures import Future

from sources.gateway.envelope import SpoolEntry, encode_line
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

    def submit(self, entry: SpoolEntry) -> Future:
        """Publish each payload of ``entry``; the future's result is the ack id once Pub/Sub accepted all."""
        ack = "p" + secrets.token_hex(12)
        received_ms = int(time.time() * 1000)
        done: Future = Future()
        published = []
        for payload in entry.payloads:
            data = encode_line(SpoolEntry((payload,), entry.token, entry.key, entry.digest), ack, received_ms)
            kind = record_kind(json.loads(payload))
            published.append(self._client.publish(self._topic, data.rstrip(b"\n"), kind=kind))

        def wait() -> None:
            try:
                for future in published:
                    future.result(timeout=self._timeout_s)  # raises if Pub/Sub did not accept it
            except Exception as error:
                done.set_exception(error)
            else:
                done.set_result(ack)

        threading.Thread(target=wait, daemon=True).start()
        return done

    def append(self, records: list[dict], token: str | None = None) -> str:
        """Publish every record; return the ack id once Pub/Sub acknowledged all of them."""
        payloads = tuple(json.dumps(r, separators=(",", ":"), allow_nan=False).encode() for r in records)
        return self.submit(SpoolEntry(payloads, token=token)).result()

    def rotate_if_due(self) -> bool:
        return False

    def close(self) -> None:
        self._client.stop()
