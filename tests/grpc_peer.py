"""In-process gRPC peers on 127.0.0.1: the base of every fake Google API in the tests (Pub/Sub publisher and
subscriber, Secret Manager, Cloud Monitoring). Each fake names its service and maps method names to
``(handler, request parser, response serializer)``; the peer does the server plumbing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent import futures
from typing import Any

import grpc

Method = tuple[Callable[[Any, grpc.ServicerContext], Any], Callable[[bytes], Any], Callable[[Any], bytes]]


def serialize_message(response: Any) -> bytes:
    """Serializer of a protobuf message (``SerializeToString``) or a proto-plus one (its ``serialize``)."""
    serialize = getattr(type(response), "serialize", None)
    return serialize(response) if serialize is not None else response.SerializeToString()


class GrpcPeer:
    """Unary methods of one gRPC ``service`` on a free port of 127.0.0.1 (``address``); a context manager."""

    def __init__(self, service: str, methods: Mapping[str, Method], workers: int = 4):
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(handler, request_deserializer=parse, response_serializer=dump)
            for name, (handler, parse, dump) in methods.items()
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"

    def start(self) -> GrpcPeer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None)

    def __enter__(self) -> GrpcPeer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
