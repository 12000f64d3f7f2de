"""The ingestion gateway: the seed's HTTP API, authenticated, validated, rate
limited, and durably handed to the pipeline through a spool.

    python -m pipelines.gateway --config airis-mon.yaml [--integration api]

Serves (FastAPI on uvicorn; the OpenAPI document is at ``/openapi.json``):

- ``POST /api/v1/metrics/ingest``, ``POST /api/v1/events/ingest``: the public payloads
- ``POST /api/v1/integrations/user-sync``: users from an identity system, spooled as a ``user_sync`` event
- ``POST`` (201) / ``GET`` / ``DELETE /api/v1/integrations/webhooks``: outbound webhook registrations
  (the stored secret is never returned)

Hand-off: ``handoff: spool`` (default) fsyncs to the spool folder; ``handoff:
pubsub`` publishes to a Pub/Sub topic and answers 2xx after Pub/Sub's ack
(see :mod:`sources.gateway.handoff`). A failed hand-off is a 503.
- ``POST /mlflow/webhook`` (MLflow 3 signature), ``POST /github/webhook`` (``X-Hub-Signature-256``)
- ``GET /api/v1/integrations/health`` (the latest health report), ``GET /healthz``

Every ``/api/v1`` call needs ``Authorization: Bearer TOKEN`` (401 otherwise;
tokens are kept as SHA-256 digests and compared in constant time). Errors:
400 with every bad field named (values are never echoed), 413 for a body over
``max_body_bytes``, 415 for a body that is not ``application/json``, 429 with
``Retry-After`` past the per-token rate. A 2xx is returned only after the
records were fsync'ed to the spool. Request bodies, tokens and secrets are
never logged.

What the pipeline could not process is refused with a 400 naming the field,
on every route (signed webhooks too, after their signature is verified): a
timestamp outside the integration's ``timestamps`` range or a boolean
timestamp, and anywhere in the body a NaN or infinite number (``NaN``,
``Infinity``, ``1e400``), text with lone surrogates or nesting deeper than
:data:`airis_mon.payloads.MAX_NESTING` (see :func:`airis_mon.payloads.payload_problems`).

Why FastAPI/uvicorn: pydantic validation is the same code the pipeline uses
at its edges, the OpenAPI document is generated from it, and both projects
are widely used and actively maintained.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import math
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airis_mon.config import load_config
from airis_mon.errors import ConfigError
from airis_mon.files import write_text_atomically
from airis_mon.payloads import EventPayload, MetricsPayload, PayloadTimestamp, payload_kind, payload_problems
from sinks.webhooks.config import check_url  # the outbound webhook sink's own rules
from sources.gateway.config import GatewayConfig
from sources.gateway.handoff import PubSubHandoff, SpoolWriter

__all__ = ["create_app", "run"]

LOG = logging.getLogger("airis_mon.gateway")


class GatewayError(Exception):
    """An HTTP error answer: ``status``, a message and optional details and headers."""

    def __init__(self, status: int, message: str, details: list | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.details, self.headers = status, message, details or [], headers or {}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class UserIn(_Strict):
    user_id: str = Field(min_length=1, max_length=256)
    username: str = Field(min_length=1, max_length=256)
    email: str = Field(default="", max_length=320)
    display_name: str = Field(default="", max_length=256)
    department: str = Field(default="", max_length=256)
    title: str = Field(default="", max_length=256)
    groups: list[str] = Field(default_factory=list, max_length=1000)


class UserSyncPayload(_Strict):
    """``POST /api/v1/integrations/user-sync`` body."""

    source: str = Field(min_length=1, max_length=256, description="the identity system, e.g. okta or active_directory")
    timestamp: PayloadTimestamp | None = None
    users: list[UserIn] = Field(min_length=1, max_length=10_000)


class WebhookRegistration(_Strict):
    """``POST /api/v1/integrations/webhooks`` body."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    secret: str = Field(min_length=16, max_length=512, description="signing secret; never returned")


class _TokenBucket:
    """Per-token rate limit: ``rate`` per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int):
        self._rate, self._burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> float:
        """0 if allowed, else the seconds to wait."""
        with self._lock:
            tokens, last = self._state.get(key, (float(self._burst), now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens >= 1:
                self._state[key] = (tokens - 1, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (1 - tokens) / self._rate


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class _WebhookRegistry:
    """Outbound webhook registrations in ``SPOOL/config/webhooks.json`` (written atomically)."""

    def __init__(self, spool: Path):
        self._path = spool / "config" / "webhooks.json"
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict]:
        return json.loads(self._path.read_text()) if self._path.exists() else {}

    def _write(self, entries: dict[str, dict]) -> None:
        write_text_atomically(self._path, json.dumps(entries, sort_keys=True))

    def add(self, registration: WebhookRegistration) -> bool:
        with self._lock:
            entries = self._read()
            existed = registration.name in entries
            entries[registration.name] = registration.model_dump()
            self._write(entries)
            return not existed

    def list(self) -> list[dict]:
        with self._lock:
            return [{k: v for k, v in e.items() if k != "secret"} for _, e in sorted(self._read().items())]

    def delete(self, name: str) -> bool:
        with self._lock:
            entries = self._read()
            if name not in entries:
                return False
            del entries[name]
            self._write(entries)
            return True


def _validated(model: type[BaseModel], body: Any, context: dict) -> Any:
    """``body`` validated by ``model``, or a 400 naming every bad field: the
    model's errors and the values the pipeline cannot process (checked in the
    validated form, so that ``"1e400"`` as a metric value counts as infinite)."""
    try:
        validated = model.model_validate(body, context=context)
    except ValidationError as error:
        problems = payload_problems(error, body)
    else:
        problems = payload_problems(None, validated.model_dump())
    _refuse(problems)
    return validated


def _refuse(problems: list[str]) -> None:
    """A 400 whose details name each field of ``problems`` (``field: message`` lines), if there are any."""
    if problems:
        details = [{"field": field, "message": message} for field, _, message in (p.partition(": ") for p in problems)]
        raise GatewayError(400, "validation failed", details)


def _decode_json(raw: bytes) -> Any:
    """The JSON document of a body; NaN and infinities decode (and are refused by :func:`_validated`)."""
    try:
        return json.loads(raw)
    except ValueError as error:
        raise GatewayError(400, "body is not valid JSON", [{"field": "(body)", "message": str(error)[:200]}]) from None
    except RecursionError:
        raise GatewayError(
            400, "body is not valid JSON", [{"field": "(body)", "message": "nested too deeply to decode"}]
        ) from None


def create_app(config: GatewayConfig, writer, clock=time.monotonic, wall_clock=time.time) -> FastAPI:
    """The FastAPI app; ``writer`` is the hand-off (a ``SpoolWriter`` or ``PubSubHandoff``)."""
    app = FastAPI(title="AIRIS-MON ingestion API", version="1.0.0")

    def openapi() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            components = document.setdefault("components", {})
            components.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
            for model in (MetricsPayload, EventPayload, UserSyncPayload, WebhookRegistration):
                for name, schema in (
                    model.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items()
                ):
                    components.setdefault("schemas", {})[name] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi
    token_digests = {t.name: _digest(t.token.get_secret_value()) for t in config.tokens}

    def context() -> dict:
        """Payload validation against this gateway's timestamp range, as of now."""
        return config.timestamps.context(now_ms=int(wall_clock() * 1000))

    buckets = _TokenBucket(config.rate_limit_per_s, config.rate_limit_burst)
    registry = _WebhookRegistry(Path(config.spool))

    @app.exception_handler(GatewayError)
    async def _answer(_: Request, error: GatewayError) -> JSONResponse:
        body: dict[str, Any] = {"error": error.message}
        if error.details:
            body["details"] = error.details
        return JSONResponse(body, status_code=error.status, headers=error.headers)

    def authenticate(request: Request) -> str:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise GatewayError(401, "missing Bearer token", headers={"WWW-Authenticate": "Bearer"})
        digest = _digest(presented.strip())
        match = ""
        for name, expected in token_digests.items():  # no early exit: the same work for any token
            if hmac.compare_digest(digest, expected):
                match = name
        if not match:
            raise GatewayError(401, "invalid token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        wait = buckets.take(match, clock())
        if wait:
            raise GatewayError(429, "rate limit exceeded", headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return match

    async def json_body(request: Request) -> Any:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise GatewayError(415, "Content-Type must be application/json")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_body_bytes:
            raise GatewayError(413, f"body larger than {config.max_body_bytes} bytes")
        raw = await request.body()
        if len(raw) > config.max_body_bytes:
            raise GatewayError(413, f"body larger than {config.max_body_bytes} bytes")
        return _decode_json(raw)

    async def spool(records: list[dict]) -> None:
        try:
            await run_in_threadpool(writer.append, records)
        except Exception:  # disk full, Pub/Sub unreachable...: nothing was acknowledged, the client retries
            LOG.exception("hand-off failed; answering 503")
            raise GatewayError(503, "could not store the records; retry later", headers={"Retry-After": "5"}) from None

    @app.post("/api/v1/metrics/ingest", status_code=202, openapi_extra=_documented(MetricsPayload))
    async def ingest_metrics(request: Request) -> dict:
        authenticate(request)
        body = await json_body(request)
        payload = _validated(MetricsPayload, body, context())
        await spool([body])
        return {"status": "accepted", "id": uuid.uuid4().hex, "metrics": len(payload.metrics)}

    @app.post("/api/v1/events/ingest", status_code=202, openapi_extra=_documented(EventPayload))
    async def ingest_event(request: Request) -> dict:
        authenticate(request)
        body = await json_body(request)
        _validated(EventPayload, body, context())
        await spool([body])
        return {"status": "accepted", "id": uuid.uuid4().hex}

    @app.post("/api/v1/integrations/user-sync", status_code=202, openapi_extra=_documented(UserSyncPayload))
    async def user_sync(request: Request) -> dict:
        authenticate(request)
        payload = _validated(UserSyncPayload, await json_body(request), context())
        event = {
            "timestamp": payload.timestamp if payload.timestamp is not None else int(wall_clock() * 1000),
            "event_type": "user_sync",
            "source": payload.source,
            "severity": "info",
            "data": {"count": len(payload.users), "users": [u.model_dump() for u in payload.users]},
        }
        await spool([event])
        return {"status": "accepted", "users": len(payload.users)}

    @app.post("/api/v1/integrations/webhooks", status_code=201, openapi_extra=_documented(WebhookRegistration))
    async def register_webhook(request: Request, response: Response) -> dict:
        authenticate(request)
        registration = _validated(WebhookRegistration, await json_body(request), context())
        try:
            check_url(registration.url)
        except ValueError as error:
            raise GatewayError(400, "validation failed", [{"field": "url", "message": str(error)}]) from None
        unknown = [
            e for e in registration.events if e not in ("alert.triggered", "alert.repeated", "alert.resolved", "*")
        ]
        if unknown:
            raise GatewayError(400, "validation failed", [{"field": "events", "message": f"unknown events {unknown}"}])
        created = await run_in_threadpool(registry.add, registration)
        response.status_code = 201 if created else 200
        return {k: v for k, v in registration.model_dump().items() if k != "secret"}

    @app.get("/api/v1/integrations/webhooks")
    async def list_webhooks(request: Request) -> dict:
        authenticate(request)
        return {"webhooks": await run_in_threadpool(registry.list)}

    @app.delete("/api/v1/integrations/webhooks", status_code=204)
    async def delete_webhook(request: Request, name: str) -> Response:
        authenticate(request)
        if not await run_in_threadpool(registry.delete, name):
            raise GatewayError(404, f"no webhook named {name!r}")
        return Response(status_code=204)

    @app.get("/api/v1/integrations/health")
    async def integration_health(request: Request) -> Any:
        authenticate(request)
        path = Path(config.health_report) if config.health_report else None
        if path is None or not path.exists():
            raise GatewayError(404, "no health report yet (run python -m pipelines.main)")
        return json.loads(path.read_text())

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    _add_signed_webhooks(app, config, spool, context, wall_clock)
    return app


_ERRORS = {
    "400": {"description": "validation failed; `details` names each bad field"},
    "401": {"description": "missing or invalid Bearer token"},
    "413": {"description": "body larger than max_body_bytes"},
    "415": {"description": "Content-Type is not application/json"},
    "429": {"description": "rate limit exceeded; see Retry-After"},
    "503": {"description": "the hand-off failed; nothing was stored; retry"},
}


def _documented(model: type[BaseModel]) -> dict:
    """OpenAPI extras for a route that reads ``model`` from its JSON body by hand."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # registered once under components.schemas (see create_app)
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": _ERRORS,
        "security": [{"bearer": []}],
    }


def _add_signed_webhooks(app: FastAPI, config: GatewayConfig, spool, context, wall_clock) -> None:
    """``/mlflow/webhook`` and ``/github/webhook``, when their secrets are configured."""
    from sources.gateway import inbound

    replay_guard = inbound.ReplayGuard(config.webhook_tolerance_s)

    async def raw_body(request: Request) -> bytes:
        raw = await request.body()
        if len(raw) > config.max_body_bytes:
            raise GatewayError(413, f"body larger than {config.max_body_bytes} bytes")
        return raw

    def decoded(raw: bytes) -> Any:
        """A verified body as JSON, or a 400 naming what the pipeline could not process."""
        body = _decode_json(raw)
        _refuse(payload_problems(None, body))
        return body

    def checked(payloads: list[dict]) -> list[dict]:
        """The normalized payloads, each valid under the public contract (else a 400)."""
        for payload in payloads:
            _validated(MetricsPayload if payload_kind(payload) == "metrics" else EventPayload, payload, context())
        return payloads

    if config.mlflow_webhook_secret is not None:
        secret = config.mlflow_webhook_secret.get_secret_value().encode()

        @app.post("/mlflow/webhook")
        async def mlflow_webhook(request: Request) -> dict:
            raw = await raw_body(request)
            headers = request.headers
            now = wall_clock()
            try:
                inbound.verify_mlflow(
                    secret,
                    headers.get("x-mlflow-delivery-id"),
                    headers.get("x-mlflow-timestamp"),
                    headers.get("x-mlflow-signature"),
                    raw,
                    now,
                    config.webhook_tolerance_s,
                )
            except inbound.WebhookRejected as error:
                raise GatewayError(error.status, error.reason) from None
            # Refused before the id is remembered: a 400 is not a delivery received.
            payloads = checked(inbound.normalize_mlflow(decoded(raw), int(now * 1000)))
            if replay_guard.seen(headers["x-mlflow-delivery-id"], now):
                raise GatewayError(409, "delivery already received")
            await spool(payloads)
            return {"status": "accepted", "events": len(payloads)}

    if config.github_webhook_secret is not None:
        github_secret = config.github_webhook_secret.get_secret_value().encode()

        @app.post("/github/webhook")
        async def github_webhook(request: Request) -> dict:
            raw = await raw_body(request)
            try:
                inbound.verify_github(github_secret, request.headers.get("x-hub-signature-256"), raw)
            except inbound.WebhookRejected as error:
                raise GatewayError(error.status, error.reason) from None
            event = request.headers.get("x-github-event", "")
            payloads = checked(inbound.normalize_github(event, decoded(raw), int(wall_clock() * 1000)))
            if payloads:
                await spool(payloads)
            return {"status": "accepted", "events": len(payloads)}


def _gateway_config(config_path: str | None, name: str | None) -> GatewayConfig:
    config = load_config(config_path)
    gateways = [i for i in config.integrations if isinstance(i, GatewayConfig)]
    if name is not None:
        gateways = [g for g in gateways if g.name == name]
    if len(gateways) != 1:
        wanted = f" named {name!r}" if name else ""
        raise ConfigError(f"integrations: expected exactly one gateway integration{wanted}, found {len(gateways)}")
    return gateways[0]


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point: serve until SIGINT/SIGTERM; the open spool segment is closed on exit."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m pipelines.gateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="YAML config with one `type: gateway` integration")
    parser.add_argument("--integration", default=None, help="which gateway integration, when there are several")
    args = parser.parse_args(argv)
    try:
        config = _gateway_config(args.config, args.integration)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if config.handoff == "pubsub":
        writer = PubSubHandoff(config.pubsub_topic, config.pubsub_endpoint)
    else:
        writer = SpoolWriter(config.spool, config.max_segment_bytes, config.max_segment_age_s)
    app = create_app(config, writer)
    stop = threading.Event()

    def rotate() -> None:
        while not stop.wait(1.0):
            writer.rotate_if_due()

    def close_spool() -> None:
        stop.set()
        writer.close()  # publish the open segment before the process exits

    # uvicorn re-raises SIGTERM/SIGINT after its shutdown, so code after run() may never execute:
    # close the spool in the app's shutdown phase instead.
    app.router.on_shutdown.append(close_spool)
    threading.Thread(target=rotate, daemon=True).start()
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(run())
