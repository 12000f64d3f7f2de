"""The baseline of ``python -m benchmarks.gateway``: plain FastAPI that appends + fsyncs before 202.

::

    python -m benchmarks.gateway_baseline --port 8081 --file /tmp/x/baseline.jsonl

One route, ``POST /api/v1/metrics/ingest``: read the body, append it plus
``\\n`` to ``--file`` with one ``os.write`` (``O_APPEND``), ``os.fsync``, then
answer 202 ``{"status": "accepted"}``; the write and the fsync run in
Starlette's thread pool, like the gateway's hand-off. No parsing, no
validation, no authentication, no batching: one fsync per request. Plus
``GET /healthz``.

It is served by uvicorn with the gateway's own settings (``http=``, ``loop=``,
``log_level=``, ...), taken from one place, :func:`gateway_uvicorn_options`:
``pipelines.gateway.uvicorn_options(config)`` when the gateway has it, else
the literal keyword arguments of the gateway's ``uvicorn.run(...)`` /
``uvicorn.Config(...)`` calls, read from its source. ``python -m
benchmarks.gateway`` works them out once (in a process that imports the
gateway anyway) and passes them as ``--uvicorn-options JSON``, so this
server's start-up does not include the gateway's imports.
"""

import argparse
import ast
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["create_app", "gateway_uvicorn_options", "uvicorn_options_in_source"]

GATEWAY_SOURCE = Path(__file__).resolve().parents[1] / "pipelines" / "gateway.py"
_NOT_MIRRORED = {"app", "host", "port"}  # the benchmark chooses these


def uvicorn_options_in_source(source: Path = GATEWAY_SOURCE) -> tuple[dict, list[str]]:
    """The literal keyword arguments of the gateway's ``uvicorn.run(...)`` / ``uvicorn.Config(...)`` calls
    (``host``, ``port`` left out), and the names of those that are not literals (not mirrored)."""
    options: dict = {}
    unmirrored: list[str] = []
    tree = ast.parse(source.read_text(), str(source))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        if not (isinstance(owner, ast.Name) and owner.id == "uvicorn" and node.func.attr in ("run", "Config")):
            continue
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg in _NOT_MIRRORED:
                continue
            try:
                options[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:
                unmirrored.append(keyword.arg)
    return options, unmirrored


def gateway_uvicorn_options() -> tuple[dict, str, list[str]]:
    """The gateway's uvicorn keyword arguments but ``host``/``port``, where they came from, and the names of
    those that could not be mirrored. Imports the gateway when it has ``uvicorn_options``."""
    try:
        from pipelines.gateway import uvicorn_options
    except ImportError:
        options, unmirrored = uvicorn_options_in_source()
        return options, f"the uvicorn.run(...) call in {GATEWAY_SOURCE.name}", unmirrored
    from sources.gateway.config import GatewayConfig

    config = GatewayConfig.model_validate({"name": "baseline", "type": "gateway", "spool": "spool"})
    options, unmirrored = {}, []
    for key, value in uvicorn_options(config).items():
        if key in _NOT_MIRRORED:
            continue
        try:
            json.dumps(value)
        except TypeError:
            unmirrored.append(key)
            continue
        options[key] = value
    return options, "pipelines.gateway.uvicorn_options(config)", unmirrored


def create_app(path: str):
    # Imported here (the benchmark imports this module for uvicorn_options only); no postponed annotations in
    # this module, so FastAPI sees the real Request class.
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool

    app = FastAPI()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(data: bytes) -> None:
        os.write(fd, data)
        os.fsync(fd)

    @app.post("/api/v1/metrics/ingest", status_code=202)
    async def ingest(request: Request) -> dict:
        await run_in_threadpool(append, await request.body() + b"\n")
        return {"status": "accepted"}

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    app.router.on_shutdown.append(lambda: os.close(fd))
    return app


def run(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway_baseline", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", required=True, help="the file every request body is appended to")
    parser.add_argument("--uvicorn-options", default=None, help="JSON; default: gateway_uvicorn_options()")
    args = parser.parse_args(argv)
    options = json.loads(args.uvicorn_options) if args.uvicorn_options else gateway_uvicorn_options()[0]
    uvicorn.run(create_app(args.file), host="127.0.0.1", port=args.port, **options)
    return 0


if __name__ == "__main__":
    sys.exit(run())
