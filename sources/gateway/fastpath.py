"""A short path through the ASGI stack for the ingestion routes, the gateway's hot path.

FastAPI's routing, dependency solving and per-route middleware cost ~0.4 ms of the ~1.4 ms a
100-metric request took (py-spy, ``python -m benchmarks.gateway``). The ingest handlers read their
requests by hand and build their answers themselves, so nothing of that machinery is needed: this
middleware hands a ``POST`` to one of those paths straight to its handler and answers
:class:`~sources.gateway.bodies.GatewayError` the way the app's exception handler does. Everything
else (and the OpenAPI document, which still lists those routes) goes through the app as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from sources.gateway.bodies import GatewayError

__all__ = ["FastPaths"]

LOG = logging.getLogger("airis_mon.gateway")

Handler = Callable[[Request], Awaitable[Response]]


class FastPaths:
    """ASGI middleware: ``POST`` to a path of ``handlers`` goes to its handler directly; ``answer_error``
    turns a :class:`GatewayError` into the response."""

    def __init__(self, app, handlers: dict[str, Handler], answer_error: Callable[[GatewayError], Response]):
        self.app, self.handlers, self.answer_error = app, handlers, answer_error

    async def __call__(self, scope, receive, send) -> None:
        handler = self.handlers.get(scope.get("path")) if scope["type"] == "http" else None
        if handler is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        try:
            response = await handler(Request(scope, receive))
        except GatewayError as error:
            response = self.answer_error(error)
        except Exception:
            LOG.exception("unexpected error in %s", scope.get("path"))
            response = Response(b'{"error":"internal error"}', status_code=500, media_type="application/json")
        await response(scope, receive, send)
