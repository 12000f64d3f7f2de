"""The ingestion gateway's HTTP API (FastAPI): authentication, limits, validation, storing, answers.

Routes (the OpenAPI document, :mod:`sources.gateway.openapi`, is at ``/openapi.json``):

- ``POST /api/v1/metrics/ingest``, ``POST /api/v1/events/ingest``: the public payloads (202)
- ``GET /api/v1/ingest/{id}``: whether the request acknowledged as ``id`` is stored (and processed yet)
- ``POST /api/v1/integrations/user-sync``: users from an identity system, spooled as a ``user_sync`` event
- ``POST`` (201/200) / ``GET`` / ``DELETE /api/v1/integrations/webhooks``: outbound webhook registrations
  (the secret and header values are never returned)
- ``GET /api/v1/integrations/health`` (the latest health report), ``GET /healthz``
- ``POST /mlflow/webhook``, ``POST /github/webhook``: signed webhooks (:mod:`sources.gateway.signed_routes`)
- ``GET`` / ``POST /api/v2/silences``, ``GET`` / ``DELETE /api/v2/silence/{id}``: silences in the shape of
  Alertmanager API v2 (``amtool`` talks to them), kept in :mod:`airis_mon.silence_store`; reading needs any
  valid token, creating and expiring one with the ``silences:write`` scope (403 otherwise)

Every ``/api/v1`` call needs ``Authorization: Bearer TOKEN`` (401 otherwise; tokens are kept as SHA-256
digests and compared in constant time), checked before the body is read. A 2xx is returned only after the
records are durable (fsync'ed to the spool by group commit, or acknowledged by Pub/Sub); its ``id`` is
stored with them. A request with an ``Idempotency-Key`` header that repeats one accepted within
``dedup_window_s`` stores nothing and gets the first one's answer again (``duplicate: true`` and the
``Idempotent-Replayed: true`` header); the same key with a different body is a 422.
Request bodies, tokens and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

from airis_mon.contract import EventPayload, MetricsPayload, PayloadTimestamp
from airis_mon.files import write_text_atomically
from airis_mon.silence_store import (
    EpochMs,
    SilenceMatcher,
    SilenceStore,
    StoredSilence,
    Text,
    format_matcher,
    matcher_key,
)
from sources.gateway.bodies import (
    Body,
    GatewayError,
    blank_newlines,
    fast_metrics_count,
    read_body,
    refuse,
    spool_bytes,
    validated,
)
from sources.gateway.config import GatewayConfig
from sources.gateway.dedup import KeyMemory
from sources.gateway.envelope import SpoolEntry
from sources.gateway.fastpath import FastPaths
from sources.gateway.spool import find_acknowledged, prune_keys

__all__ = ["PostableSilence", "UserIn", "UserSyncPayload", "WebhookRegistration", "create_app"]

LOG = logging.getLogger("airis_mon.gateway")

#: An ``Idempotency-Key``: 1 to 255 visible ASCII characters.
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
#: Events a registered webhook may subscribe to.
WEBHOOK_EVENTS = ("alert.triggered", "alert.repeated", "alert.resolved", "*")
#: A webhook registration's ``name``.
_REGISTRATION_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def _any_case(names) -> str:
    """An ECMA-262 alternation of ``names`` in any letter case (ECMA patterns have no inline ``(?i)``)."""
    return "|".join("".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in name)
                    for name in sorted(names))  # fmt: skip


def _registration_schema() -> dict[str, dict]:
    """What the OpenAPI document states of a registration's ``url``, ``events`` and ``headers``: the rules of
    :func:`sinks.webhooks.destination.check_registration` as far as JSON Schema can say them."""
    from sinks.webhooks import destination

    special = [name for name in (*destination.LOOPBACK_HOST_NAMES, *destination.METADATA_HOST_NAMES) if "." in name]
    # http(s), then a host name of 2 to 4 labels whose last is letters (so no IP literal), no loopback or
    # metadata name, an optional port up to 65535, then any visible ASCII.
    host = (rf"(?!(?:{_any_case(special)})(?:[:/?#]|$))(?![^:/?#]*\.{_any_case(['localhost'])}(?:[:/?#]|$))"
            r"(?:[A-Za-z0-9_-]{1,62}\.){1,3}[A-Za-z]{2,63}")  # fmt: skip
    port = r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    url = {
        "pattern": rf"^[Hh][Tt][Tt][Pp][Ss]?://{host}{port}(?:[/?#][!-~]*)?$",
        "description": "http(s) URL the alerts are POSTed to. Refused (400): loopback, private, link-local, "
        "metadata and other non-public addresses (webhook_allowed_networks opens networks) and names "
        "(localhost, *.localhost, metadata.google.internal, ...); the host is resolved and checked again at "
        "every delivery. The pattern describes host names; an IP literal is accepted when its address is "
        "public or allowed",
    }
    forbidden = rf"^(?:{_any_case(destination.FORBIDDEN_HEADERS)})$|^{_any_case(['webhook-'])}"
    headers = {
        "type": "object",
        "maxProperties": destination.MAX_HEADERS,
        "propertyNames": {
            "pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
            "maxLength": destination.MAX_HEADER_NAME_CHARS,
            "not": {"pattern": forbidden},
        },
        "additionalProperties": {
            "type": "string",
            "maxLength": destination.MAX_HEADER_VALUE_CHARS,
            "pattern": r"^[\t -~\x80-\xff]*$",
        },
        "description": "extra headers of each delivery (RFC 9110 names, each name once in any letter case; no "
        "framing, hop-by-hop, Content-Type or webhook-* headers; Latin-1 values without control characters); "
        "their values are never returned",
    }
    events = {"items": {"type": "string", "enum": list(WEBHOOK_EVENTS)}}
    return {"url": url, "headers": headers, "events": events}


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

    # url, events and headers are checked by registration_problems(); the document states those rules too.
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(min_length=1, max_length=2048, json_schema_extra=lambda s: s.update(_registration_schema()["url"]))
    events: list[str] = Field(min_length=1, json_schema_extra=lambda s: s.update(_registration_schema()["events"]))
    headers: dict[str, str] = Field(
        default_factory=dict, json_schema_extra=lambda s: s.update(_registration_schema()["headers"])
    )
    secret: str = Field(min_length=16, max_length=512, description="signing secret; never returned")


class _TokenBucket:
    """Per-token rate limit: ``rate`` requests per second, bursts of ``burst``."""

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
            return [public_registration(e) for _, e in sorted(self._read().items())]

    def delete(self, name: str) -> bool:
        with self._lock:
            entries = self._read()
            if name not in entries:
                return False
            del entries[name]
            self._write(entries)
            return True


def public_registration(registration: dict) -> dict:
    """A registration as the API shows it: no secret, header values redacted (they may be credentials)."""
    from sinks.webhooks.destination import redacted_registration

    return redacted_registration({"headers": {}, **registration})


def json_answer(status: int, body: dict, headers: dict | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class Storer:
    """Stores accepted requests through the hand-off ``writer`` and recognises repeated keys."""

    def __init__(self, writer, keys: KeyMemory, wall_clock):
        self._writer, self._keys, self._wall_clock = writer, keys, wall_clock

    async def store(self, entry: SpoolEntry, key: str | None = None, raw: bytes = b"") -> tuple[str, bool]:
        """``(ack id, whether it repeats an earlier request)`` once ``entry`` is durable; a 503 when the
        hand-off failed (nothing was stored: the client retries), a 422 when ``key`` came with another body."""
        if key is None:
            return await self._wait(self._writer.submit(entry)), False
        digest = hashlib.sha256(raw).hexdigest()
        keyed = SpoolEntry(entry.payloads, token=entry.token, key=key, digest=digest)
        remembered, first = self._keys.claim(key, digest, self._wall_clock(), lambda: self._writer.submit(keyed))
        if not first and not hmac.compare_digest(remembered.digest, digest):
            raise GatewayError.about(422, "key reused", _key_header(key), "already used with a different body")
        return await self._wait(remembered.ack), not first

    @staticmethod
    async def _wait(future) -> str:
        try:
            return await asyncio.wrap_future(future)
        except Exception:  # disk full, Pub/Sub unreachable...: nothing was acknowledged
            LOG.exception("hand-off failed; answering 503")
            raise GatewayError(503, "could not store the records; retry later", headers={"Retry-After": "5"}) from None


def _key_header(key: str) -> str:
    return {"mlflow": "X-MLflow-Delivery-Id", "github": "X-GitHub-Delivery"}.get(
        key.partition(":")[0], "Idempotency-Key"
    )


def create_app(config: GatewayConfig, writer, clock=time.monotonic, wall_clock=time.time) -> FastAPI:
    """The FastAPI app; ``writer`` is the hand-off (a ``SpoolWriter`` or ``PubSubHandoff``); ``clock``
    (monotonic s) drives the rate limit, ``wall_clock`` (epoch s) timestamps and dedup windows."""
    from sources.gateway.openapi import install_openapi
    from sources.gateway.signed_routes import add_signed_webhooks

    app = FastAPI(title="AIRIS-MON ingestion API", version="1.0.0")
    token_digests = {t.name: _digest(t.token.get_secret_value()) for t in config.tokens}
    token_scopes = {t.name: frozenset(t.scopes) for t in config.tokens}
    silences = SilenceStore(config.silences_path())
    buckets = _TokenBucket(config.rate_limit_per_s, config.rate_limit_burst)
    registry = _WebhookRegistry(Path(config.spool))
    keys = KeyMemory(config.dedup_window_s, config.dedup_max_keys)
    if config.handoff == "spool":
        keys.load(config.spool, wall_clock())
        prune_keys(config.spool, wall_clock() - config.dedup_window_s)  # keys files nobody needs any more
    storer = Storer(writer, keys, wall_clock)
    limit = config.max_body_bytes

    def context() -> dict:
        """Payload validation against this gateway's timestamp range, as of now, by the rules the OpenAPI
        document states (numbers or RFC 3339 strings, the exact instant in the range)."""
        return config.timestamps.context(now_ms=int(wall_clock() * 1000), exact=True)

    @app.exception_handler(GatewayError)
    async def _answer(_: Request, error: GatewayError) -> Response:
        return error_answer(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        headers = dict(error.headers or {})
        if error.status_code == 405:  # every method the path allows, not only the first route's
            allowed = {m for route in app.routes if getattr(route, "path_regex", None)
                       and route.path_regex.match(request.url.path) for m in (route.methods or ())}  # fmt: skip
            headers["Allow"] = ", ".join(sorted(allowed))
        return json_answer(error.status_code, {"error": str(error.detail)}, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> Response:
        """FastAPI's own validation (no route declares parameters it would check, but should one): a 400
        naming the fields, never their values, instead of FastAPI's 422 echoing the input."""
        fields = [".".join(str(p) for p in e.get("loc", ())[1:]) or "(request)" for e in error.errors()]
        details = [{"field": field, "message": "invalid"} for field in fields]
        return error_answer(GatewayError(400, "validation failed", details))

    async def registry_call(method, *args):
        """``method(*args)`` of the registry in a thread; a 503 when its file cannot be written."""
        try:
            return await asyncio.to_thread(method, *args)
        except OSError:
            LOG.exception("webhook registry not writable; answering 503")
            raise GatewayError(503, "could not store the registration; retry later",
                               headers={"Retry-After": "5"}) from None  # fmt: skip

    def authenticate(request: Request, scope: str | None = "ingest") -> str:
        """The name of the caller's token, or a 401; then a 429 past its rate; then a 403 when the token
        lacks ``scope`` (None: any valid token)."""
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise GatewayError(401, "missing Bearer token", [{"field": "Authorization", "message": "Bearer TOKEN"}],
                               headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        digest = _digest(presented.strip())
        match = ""
        for name, expected in token_digests.items():  # no early exit: the same work for any token
            if hmac.compare_digest(digest, expected):
                match = name
        if not match:
            raise GatewayError(401, "invalid token", [{"field": "Authorization", "message": "not a valid token"}],
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})  # fmt: skip
        wait = buckets.take(match, clock())
        if wait:
            raise GatewayError(429, "rate limit exceeded", headers={"Retry-After": str(max(1, math.ceil(wait)))})
        if scope is not None and scope not in token_scopes[match]:
            raise GatewayError.about(403, "forbidden", "Authorization", f"this token lacks the {scope} scope")
        return match

    def idempotency_key(request: Request, token: str) -> str | None:
        value = request.headers.get("idempotency-key")
        if value is None:
            return None
        if not _IDEMPOTENCY_KEY.match(value):
            raise GatewayError.about(
                400, "validation failed", "Idempotency-Key", "must be 1-255 visible ASCII characters"
            )
        return f"idem:{token}:{value}"

    async def accept(request: Request, token: str, body: Body, payload: bytes, answer: dict) -> Response:
        ack, duplicate = await storer.store(SpoolEntry((payload,), token=token), idempotency_key(request, token),
                                            body.raw)  # fmt: skip
        headers = {"Idempotent-Replayed": "true"} if duplicate else None
        return json_answer(202, {"status": "accepted", "id": ack, **answer, "duplicate": duplicate}, headers)

    @app.post("/api/v1/metrics/ingest", status_code=202)
    async def ingest_metrics(request: Request) -> Response:
        token = authenticate(request)
        raw = await read_body(request, limit)
        count = fast_metrics_count(raw, context())  # the common case, in one C pass
        if count is not None:
            return await accept(request, token, Body.strictly_valid(raw), blank_newlines(raw), {"metrics": count})
        body = Body(raw)
        payload = validated(MetricsPayload, body, context())
        return await accept(request, token, body, spool_bytes(body), {"metrics": len(payload.metrics)})

    @app.post("/api/v1/events/ingest", status_code=202)
    async def ingest_event(request: Request) -> Response:
        token = authenticate(request)
        body = Body(await read_body(request, limit))
        validated(EventPayload, body, context())
        return await accept(request, token, body, spool_bytes(body), {})

    @app.get("/api/v1/ingest/{ack_id}")
    async def acknowledged(request: Request, ack_id: str) -> Response:
        token = authenticate(request)
        found = None
        if config.handoff == "spool":
            found = await asyncio.to_thread(find_acknowledged, config.spool, ack_id)
        if found is None or found[0].get("token") != token:  # another client's record is not shown
            raise GatewayError.about(404, "not found", "id", "no record of yours was acknowledged with this id")
        envelope, state = found
        return json_answer(200, {"id": ack_id, "state": state, "received_ms": envelope.get("received_ms"),
                                 "payloads": len(envelope.get("payloads") or [])})  # fmt: skip

    @app.post("/api/v1/integrations/user-sync", status_code=202)
    async def user_sync(request: Request) -> Response:
        token = authenticate(request)
        body = Body(await read_body(request, limit))
        payload = validated(UserSyncPayload, body, context())
        event = {
            "timestamp": payload.timestamp if payload.timestamp is not None else int(wall_clock() * 1000),
            "event_type": "user_sync",
            "source": payload.source,
            "severity": "info",
            "data": {"count": len(payload.users), "users": [u.model_dump() for u in payload.users]},
        }
        return await accept(request, token, body, orjson.dumps(event), {"users": len(payload.users)})

    @app.post("/api/v1/integrations/webhooks", status_code=201)
    async def register_webhook(request: Request) -> Response:
        authenticate(request)
        registration = validated(WebhookRegistration, Body(await read_body(request, limit)), context())
        refuse(registration_problems(registration, config))
        created = await registry_call(registry.add, registration)
        return json_answer(201 if created else 200, public_registration(registration.model_dump()))

    @app.get("/api/v1/integrations/webhooks")
    async def list_webhooks(request: Request) -> Response:
        authenticate(request)
        return json_answer(200, {"webhooks": await registry_call(registry.list)})

    @app.delete("/api/v1/integrations/webhooks", status_code=204)
    async def delete_webhook(request: Request) -> Response:
        authenticate(request)  # before the query is looked at
        names = request.query_params.getlist("name")
        if len(names) != 1 or not _REGISTRATION_NAME.fullmatch(names[0]):
            raise GatewayError.about(400, "validation failed", "name", "one name of 1-128 letters, digits, _ . -")
        if not await registry_call(registry.delete, names[0]):
            raise GatewayError.about(404, "not found", "name", "no webhook registered with this name")
        return Response(status_code=204)

    @app.get("/api/v1/integrations/health")
    async def integration_health(request: Request) -> Response:
        authenticate(request)
        path = Path(config.health_report) if config.health_report else None
        if path is None or not path.exists():
            raise GatewayError(404, "no health report yet (run python -m pipelines.main)")
        return Response(path.read_bytes(), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_answer(200, {"status": "ok"})

    async def store_call(method, *args):
        try:
            return await asyncio.to_thread(method, *args)
        except OSError:
            LOG.exception("silence store not writable; answering 503")
            raise GatewayError(503, "could not store the silence; retry later", headers={"Retry-After": "5"}) from None

    def now_ms() -> int:
        return int(wall_clock() * 1000)

    @app.get("/api/v2/silences")
    async def list_silences(request: Request) -> Response:
        authenticate(request, scope=None)
        try:
            wanted = [matcher_key(f) for f in request.query_params.getlist("filter")]
        except ValueError:
            raise GatewayError.about(
                400, "validation failed", "filter", "name=value, name!=value, name=~re, name!~re"
            ) from None
        found = [s.api(now_ms()) for s in await store_call(silences.all) if _filter_holds(s, wanted)]
        return Response(orjson.dumps(found), media_type="application/json")

    @app.post("/api/v2/silences")
    async def post_silence(request: Request) -> Response:
        token = authenticate(request, scope="silences:write")
        body = Body(await read_body(request, limit))
        silence = validated(PostableSilence, body, context())
        at = now_ms()
        problems = []
        if silence.ends_at <= silence.starts_at:
            problems.append("endsAt: must be after startsAt")
        if silence.ends_at <= at:
            problems.append("endsAt: must be in the future")
        refuse(problems)
        if silence.id is not None:  # Alertmanager: a POST with an id replaces that silence
            if await store_call(silences.get, silence.id) is None:
                raise GatewayError.about(404, "not found", "id", "no silence with this id")
            stored = StoredSilence.model_validate(silence.model_dump(by_alias=True))
        else:
            stored = StoredSilence.model_validate(silence.model_dump(by_alias=True, exclude={"id"}))
        stored = await store_call(silences.put, stored, at)
        LOG.info("silence %s stored by token %s", stored.id, token)
        return json_answer(200, {"silenceID": stored.id})

    @app.get("/api/v2/silence/{silence_id}")
    async def get_silence(request: Request, silence_id: str) -> Response:
        authenticate(request, scope=None)
        found = await store_call(silences.get, silence_id)
        if found is None:
            raise GatewayError.about(404, "not found", "silenceID", "no silence with this id")
        return json_answer(200, found.api(now_ms()))

    @app.delete("/api/v2/silence/{silence_id}")
    async def delete_silence(request: Request, silence_id: str) -> Response:
        token = authenticate(request, scope="silences:write")
        if await store_call(silences.expire, silence_id, now_ms()) is None:
            raise GatewayError.about(404, "not found", "silenceID", "no silence with this id")
        LOG.info("silence %s expired by token %s", silence_id, token)
        return Response(status_code=200)

    add_signed_webhooks(app, config, storer, context, wall_clock)
    install_openapi(app, config, wall_clock)
    hot = {"/api/v1/metrics/ingest": ingest_metrics, "/api/v1/events/ingest": ingest_event}
    app.add_middleware(FastPaths, handlers=hot, answer_error=error_answer)
    return app


def _in_range(ms: int) -> int:
    if not 0 <= ms <= _LATEST_MS:
        raise ValueError("a time from 1970-01-01 to 9999-12-31")
    return ms


_LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_SilenceTime = Annotated[
    EpochMs,
    AfterValidator(_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "RFC 3339 (or epoch s/ms)"}),
]


class PostableSilence(BaseModel):
    """A silence (Alertmanager API v2 ``PostableSilence``): endsAt must be after startsAt and in the future
    (400 otherwise); with an ``id``, it replaces that silence (404 when there is none)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, hide_input_in_errors=True)

    id: str | None = Field(default=None, max_length=64)
    matchers: list[SilenceMatcher] = Field(min_length=1, max_length=64)
    starts_at: _SilenceTime = Field(alias="startsAt")
    ends_at: _SilenceTime = Field(alias="endsAt")
    created_by: Text = Field(alias="createdBy", min_length=1, max_length=256)
    comment: Text = Field(min_length=1, max_length=4096)


def _filter_holds(silence: StoredSilence, wanted: list[SilenceMatcher]) -> bool:
    """Alertmanager's ``filter``: every wanted matcher is one of the silence's matchers."""
    have = {matcher_key(format_matcher(m)) for m in silence.matchers}
    return all(w in have for w in wanted)


def error_answer(error: GatewayError) -> Response:
    """The JSON answer of a refused request: ``{"error", "details"?}`` with the error's status and headers."""
    body: dict[str, Any] = {"error": error.message}
    if error.details:
        body["details"] = error.details
    return json_answer(error.status, body, error.headers)


def registration_problems(registration: WebhookRegistration, config: GatewayConfig) -> list[str]:
    """``field: message`` lines for a webhook registration's destination, headers and events. The URL is
    checked without DNS here (scheme, IP literals, metadata and loopback names); the host is resolved and
    every address checked again at each delivery (:mod:`sinks.webhooks.destination`)."""
    from sinks.webhooks.destination import DestinationPolicy, check_registration

    policy = DestinationPolicy(allowed_networks=tuple(config.webhook_allowed_networks))
    found = check_registration(registration.url, registration.headers, policy)
    problems = [f"{field}: {message}" for field, message in found]
    unknown = [e for e in registration.events if e not in WEBHOOK_EVENTS]
    if unknown:
        problems.append(f"events: unknown events (known: {', '.join(WEBHOOK_EVENTS)})")
    return problems
