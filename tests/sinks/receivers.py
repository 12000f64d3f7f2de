"""Loopback HTTP receivers for sink tests (127.0.0.1 only).

``Receiver(respond)`` serves on a free port; ``respond(request)`` returns
``(status, headers, body)``. Every request is recorded with its method, path,
headers and raw body, so tests assert on exactly what was sent. Vendor
receivers (Slack, PagerDuty, ...) are ``respond`` functions that enforce the
vendor's documented rules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Responder = Callable[[Recorded], tuple[int, dict[str, str], bytes]]


def _handler_for(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                self.rfile.read(length))  # fmt: skip
            with receiver.lock:
                receiver.requests.append(recorded)
            status, headers, body = receiver.respond(recorded)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_GET = _serve  # noqa: N815 (http.server names)

        def log_message(self, *args):  # keep test output clean
            pass

    return Handler


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 with a handler class built for it;
    use as a context manager. Base of every loopback peer in the tests."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler]):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self._server.daemon_threads = True  # a stalled client never blocks shutdown
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


class Receiver(LoopbackServer):
    """Records every request and answers with ``respond(request)``."""

    def __init__(self, respond: Responder):
        self.respond = respond
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        super().__init__(_handler_for(self))


def scripted(*responses: tuple[int, dict[str, str], bytes]) -> Responder:
    """Answer with ``responses`` in order, then repeat the last one."""
    queue = list(responses)

    def respond(_: Recorded):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


def then(first: list[tuple[int, dict[str, str], bytes]], respond: Responder) -> Responder:
    """Answer with ``first`` in order, then let ``respond`` validate and answer."""
    queue = list(first)
    lock = threading.Lock()

    def answer(request: Recorded):
        with lock:
            if queue:
                return queue.pop(0)
        return respond(request)

    return answer


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
