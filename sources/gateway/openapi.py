"""The gateway's OpenAPI document: every route's body, parameters, statuses and security, as the code enforces them.

The routes read their bodies and headers by hand (to bound memory, to authenticate before reading, and to
store the bytes as received), so FastAPI cannot infer them; :data:`ROUTES` states them, with every status
each route can answer. The document is checked against the running gateway by schemathesis with
``--checks all`` (``tests/sources/gateway/test_schemathesis.py``).

What JSON Schema cannot say is in the descriptions: the latest accepted timestamp moves with the clock
(the document states it as of when it was built, so what it allows stays accepted), a body may be refused
as larger than ``max_body_bytes`` (413) whatever its schema, and a webhook URL naming an IP address is
accepted when the address is public (the pattern describes host names only).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from fastapi import FastAPI
from pydantic import BaseModel

from airis_mon.contract import EventPayload, MetricsPayload

__all__ = ["ROUTES", "Route", "install_openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_STATUS = {
    "200": "OK",
    "201": "created",
    "202": "accepted: stored durably; `id` is stored with the records",
    "204": "deleted",
    "400": "validation failed; `details` names each bad field (a body path or a header name), never its value",
    "401": "missing or invalid credentials",
    "403": "signature missing or wrong, or the token lacks the scope the route needs (ingest, silences:write)",
    "404": "not found",
    "413": "body larger than max_body_bytes (refused while reading, or from Content-Length)",
    "415": "Content-Type is not application/json",
    "422": "Idempotency-Key (or delivery id) reused with a different body",
    "429": "rate limit exceeded; see Retry-After",
    "503": "the hand-off failed; nothing was stored; retry",
}
_BEARER = [{"bearer": []}]
#: What ``str.strip()`` removes from a (Latin-1) header value, as a regular expression class.
_SPACE = r"\t\n\v\f\r\x1c-\x1f \x85\xa0"


class Route(NamedTuple):
    """One operation: its id, the statuses it answers, its security requirements, its parameters, the
    schemas of its 2xx answers (``{status: schema}``; others: any object) and their links."""

    operation_id: str
    statuses: tuple[str, ...]
    security: list[dict[str, list]]
    parameters: tuple[dict, ...] = ()
    answers: dict[str, dict] = {}  # noqa: RUF012 (a NamedTuple default, never mutated)
    links: dict[str, dict] = {}  # noqa: RUF012


def _header(name: str, schema: dict, description: str, required: bool = False) -> dict:
    return {"name": name, "in": "header", "required": required, "schema": schema, "description": description}


def _object(required: tuple[str, ...], **properties: dict) -> dict:
    return {"type": "object", "required": list(required), "properties": properties}


_ACK_PATTERN = "^[0-9]{6,}-[0-9a-f]{1,12}$"
_IDEMPOTENCY_KEY = _header(
    "Idempotency-Key",
    {"type": "string", "pattern": "^[!-~]{1,255}$"},
    "repeats of an accepted request within dedup_window_s are answered again (duplicate: true), stored once; "
    "the same key with another body is a 422",
)
_INGEST = ("202", "400", "401", "403", "413", "415", "422", "429", "503")
_COUNT = {"type": "integer", "minimum": 0}
_ACCEPTED = _object(
    ("status", "id", "duplicate"),
    status={"type": "string", "enum": ["accepted"]},
    id={"type": "string", "pattern": _ACK_PATTERN},
    duplicate={"type": "boolean"},
    metrics=_COUNT,
    users=_COUNT,
)
_ACKNOWLEDGEMENT = {"ack": {"operationId": "getAcknowledged", "parameters": {"ack_id": "$response.body#/id"}}}
_ACKNOWLEDGED = _object(
    ("id", "state", "received_ms", "payloads"),
    id={"type": "string"},
    state={"type": "string", "enum": ["spooled", "processed"]},
    received_ms={"type": "integer"},
    payloads=_COUNT,
)
_ACK_ID = {
    "name": "ack_id",
    "in": "path",
    "required": True,
    "description": "the `id` of a 202 answer",
    "schema": {"type": "string", "pattern": _ACK_PATTERN},
}
_REGISTRATION = _object(
    ("name", "url", "events", "headers"),
    name={"type": "string"},
    url={"type": "string"},
    events={"type": "array", "items": {"type": "string"}},
    headers={"type": "object", "description": "the header names; their values are never shown"},
)
_REGISTERED = {
    "delete": {"operationId": "deleteWebhook", "parameters": {"name": "$response.body#/name"}},
    "list": {"operationId": "listWebhooks"},
}
_REGISTRATION_NAME = {
    "name": "name",
    "in": "query",
    "required": True,
    "description": "the registration's name",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9_.-]+$"},
}
_DELIVERED = _object(
    ("status", "events"),
    status={"type": "string", "enum": ["accepted", "duplicate"]},
    events=_COUNT,
    id={"type": "string", "pattern": _ACK_PATTERN},
    duplicate={"type": "boolean"},
)
_MLFLOW_HEADERS = (
    _header("X-MLflow-Delivery-Id", {"type": "string", "pattern": f"[^{_SPACE}]"}, "the delivery's id", True),
    _header(
        "X-MLflow-Timestamp",
        {"type": "string", "pattern": f"^[{_SPACE}]*[0-9]{{1,12}}[{_SPACE}]*$"},
        "unix seconds of the signature; 401 when not digits or more than webhook_tolerance_s away",
        True,
    ),
)
_GITHUB_HEADERS = (
    _header("X-GitHub-Event", {"type": "string"}, "the event (workflow_run, push, ...); others store nothing"),
    _header("X-GitHub-Delivery", {"type": "string"}, "the delivery's id; a repeat is answered 200 duplicate"),
)

_MATCHER_SCHEMA = _object(
    ("name", "value", "isRegex"),
    name={"type": "string"},
    value={"type": "string"},
    isRegex={"type": "boolean"},
    isEqual={"type": "boolean"},
)
_SILENCE = _object(
    ("id", "matchers", "startsAt", "endsAt", "createdBy", "comment", "updatedAt", "status"),
    id={"type": "string"},
    matchers={"type": "array", "items": _MATCHER_SCHEMA},
    startsAt={"type": "string", "format": "date-time"},
    endsAt={"type": "string", "format": "date-time"},
    createdBy={"type": "string"},
    comment={"type": "string"},
    updatedAt={"type": "string", "format": "date-time"},
    status=_object(("state",), state={"type": "string", "enum": ["pending", "active", "expired"]}),
)
_SILENCE_FILTER = {
    "name": "filter",
    "in": "query",
    "required": False,
    "description": "matchers (name=value, name!=value, name=~re, name!~re) every listed silence has",
    "schema": {"type": "array", "items": {"type": "string", "pattern": r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*(=~|!~|!=|=)"}},
    "style": "form",
    "explode": True,
}
_EMPTY: dict = {}  # an answer without a body (Alertmanager's 200 to DELETE /api/v2/silence/{id})
_SILENCE_ID = {
    "name": "silence_id",
    "in": "path",
    "required": True,
    "description": "the `silenceID` of a POST /api/v2/silences answer",
    "schema": {"type": "string"},
}


def _ingest(operation_id: str) -> Route:
    return Route(operation_id, _INGEST, _BEARER, (_IDEMPOTENCY_KEY,), {"202": _ACCEPTED}, {"202": _ACKNOWLEDGEMENT})


#: (method, path) -> the operation
ROUTES: dict[tuple[str, str], Route] = {
    ("post", "/api/v1/metrics/ingest"): _ingest("ingestMetrics"),
    ("post", "/api/v1/events/ingest"): _ingest("ingestEvent"),
    ("get", "/api/v1/ingest/{ack_id}"): Route(
        "getAcknowledged", ("200", "401", "403", "404", "429"), _BEARER, (_ACK_ID,), {"200": _ACKNOWLEDGED}
    ),
    ("post", "/api/v1/integrations/user-sync"): _ingest("syncUsers"),
    ("post", "/api/v1/integrations/webhooks"): Route(
        "registerWebhook",
        ("200", "201", "400", "401", "403", "413", "415", "429", "503"),
        _BEARER,
        answers={"200": _REGISTRATION, "201": _REGISTRATION},
        links={"200": _REGISTERED, "201": _REGISTERED},
    ),
    ("get", "/api/v1/integrations/webhooks"): Route(
        "listWebhooks",
        ("200", "401", "403", "429", "503"),
        _BEARER,
        answers={"200": _object(("webhooks",), webhooks={"type": "array", "items": _REGISTRATION})},
    ),
    ("delete", "/api/v1/integrations/webhooks"): Route(
        "deleteWebhook", ("204", "400", "401", "403", "404", "429", "503"), _BEARER, (_REGISTRATION_NAME,)
    ),
    ("get", "/api/v1/integrations/health"): Route("integrationHealth", ("200", "401", "403", "404", "429"), _BEARER),
    ("get", "/api/v2/silences"): Route(
        "getSilences",
        ("200", "400", "401", "429", "503"),
        _BEARER,
        (_SILENCE_FILTER,),
        {"200": {"type": "array", "items": _SILENCE}},
    ),
    ("post", "/api/v2/silences"): Route(
        "postSilences",
        ("200", "400", "401", "403", "404", "413", "415", "429", "503"),
        _BEARER,
        answers={"200": _object(("silenceID",), silenceID={"type": "string"})},
        links={
            "200": {
                "get": {"operationId": "getSilence", "parameters": {"silence_id": "$response.body#/silenceID"}},
                "expire": {"operationId": "deleteSilence", "parameters": {"silence_id": "$response.body#/silenceID"}},
            }
        },
    ),
    ("get", "/api/v2/silence/{silence_id}"): Route(
        "getSilence", ("200", "401", "404", "429", "503"), _BEARER, (_SILENCE_ID,), {"200": _SILENCE}
    ),
    ("delete", "/api/v2/silence/{silence_id}"): Route(
        "deleteSilence", ("200", "401", "403", "404", "429", "503"), _BEARER, (_SILENCE_ID,), {"200": _EMPTY}
    ),
    ("get", "/healthz"): Route(
        "healthz", ("200",), [], answers={"200": _object(("status",), status={"type": "string", "enum": ["ok"]})}
    ),
    ("post", "/mlflow/webhook"): Route(
        "mlflowWebhook",
        ("200", "400", "401", "403", "413", "422", "503"),
        [{"mlflowSignature": []}],
        _MLFLOW_HEADERS,
        {"200": _DELIVERED},
    ),
    ("post", "/github/webhook"): Route(
        "githubWebhook",
        ("200", "400", "403", "413", "422", "503"),
        [{"githubSignature": []}],
        _GITHUB_HEADERS,
        {"200": _DELIVERED},
    ),
}

_SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "mlflowSignature": {
        "type": "apiKey", "in": "header", "name": "X-MLflow-Signature",
        "description": "v1,<base64 HMAC-SHA256(secret, delivery id + '.' + timestamp + '.' + body)> (Standard "
                       "Webhooks; several space-separated entries allowed); missing or wrong: 403",
    },
    "githubSignature": {
        "type": "apiKey", "in": "header", "name": "X-Hub-Signature-256",
        "description": "sha256=<hex HMAC-SHA256(secret, body)>; missing or wrong: 403",
    },
}  # fmt: skip
_SIGNED_BODY = {
    "/mlflow/webhook": "an MLflow 3 webhook delivery ({entity, action, timestamp, data}), verified on its bytes; "
    "a time in it outside the accepted timestamps is a 400",
    "/github/webhook": "a GitHub webhook delivery, verified on its bytes; a time in it outside the accepted "
    "timestamps is a 400",
}


def _models() -> dict[tuple[str, str], type[BaseModel]]:
    from sources.gateway.app import PostableSilence, UserSyncPayload, WebhookRegistration

    return {
        ("post", "/api/v1/metrics/ingest"): MetricsPayload,
        ("post", "/api/v1/events/ingest"): EventPayload,
        ("post", "/api/v1/integrations/user-sync"): UserSyncPayload,
        ("post", "/api/v1/integrations/webhooks"): WebhookRegistration,
        ("post", "/api/v2/silences"): PostableSilence,
    }


def install_openapi(app: FastAPI, config, wall_clock=time.time, max_age_s: float = 1.0) -> None:
    """Make ``app.openapi()`` return the document of :data:`ROUTES` for ``config`` (a ``GatewayConfig``). Its
    latest accepted timestamp is ``wall_clock()`` + ``max_future_s`` as of when it was built (~12 ms); it is
    built again when older than ``max_age_s`` (what it states stays accepted as it ages)."""
    built: list = [None, None]  # [wall clock s, document]

    def openapi() -> dict:
        now = wall_clock()
        if built[1] is None or not 0 <= now - built[0] < max_age_s:
            built[:] = [now, _document(app, config, int(now * 1000))]
        return built[1]

    app.openapi = openapi


def _document(app: FastAPI, config, now_ms: int) -> dict[str, Any]:
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = document.setdefault("components", {})
    served = [ROUTES[(method, path)] for path, operations in document.get("paths", {}).items()
              for method in operations if (method, path) in ROUTES]  # fmt: skip
    components["securitySchemes"] = {name: scheme for name, scheme in _SECURITY_SCHEMES.items()
                                     if any({name: []} in route.security for route in served)}  # fmt: skip
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "details": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}},
        },
    }
    schemas["ErrorDetail"] = {
        "type": "object",
        "required": ["field", "message"],
        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
    }
    timestamp = config.timestamps.json_schema(now_ms)
    models = _models()
    for model in models.values():
        for name, schema in _schema_of(model).get("$defs", {}).items():
            schemas[name] = schema
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            route = ROUTES.get((method, path))
            if route is None:
                continue
            operation["operationId"] = route.operation_id
            operation["responses"] = {status: _response(status, route) for status in route.statuses}
            operation["security"] = route.security
            if route.parameters:
                operation["parameters"] = list(route.parameters)
            else:
                operation.pop("parameters", None)
            model = models.get((method, path))
            if model is not None:
                schema = _schema_of(model)
                schema.pop("$defs", None)
                _state_timestamps(schema, timestamp)
                operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
            elif path in _SIGNED_BODY:
                operation["requestBody"] = {"required": True, "description": _SIGNED_BODY[path], "content": {
                    "application/json": {"schema": {"type": "object"}}}}  # fmt: skip
    return document


def _schema_of(model: type[BaseModel]) -> dict:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def _state_timestamps(schema: dict, timestamp: dict) -> None:
    """Replace a body's ``timestamp`` property (pydantic can only say ``int | float | str``) by the schema of
    the accepted timestamps; a nullable one stays nullable."""
    stated = schema.get("properties", {}).get("timestamp")
    if stated is None:
        return
    nullable = any(member.get("type") == "null" for member in stated.get("anyOf", ()))
    replaced = {**timestamp, "anyOf": [*timestamp["anyOf"], {"type": "null"}]} if nullable else dict(timestamp)
    if "default" in stated:
        replaced["default"] = stated["default"]
    schema["properties"]["timestamp"] = replaced


def _response(status: str, route: Route) -> dict:
    response: dict[str, Any] = {"description": _STATUS[status]}
    if status != "204" and route.answers.get(status) is not _EMPTY:
        schema = _ERROR if status >= "400" else route.answers.get(status, {"type": "object"})
        response["content"] = {"application/json": {"schema": schema}}
    if status in route.links:
        response["links"] = route.links[status]
    headers = {}
    if status == "401" and route.security == _BEARER:
        headers["WWW-Authenticate"] = {"required": True, "schema": {"type": "string", "pattern": "^Bearer"}}
    if status in ("429", "503"):
        headers["Retry-After"] = {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"},
                                  "description": "seconds"}  # fmt: skip
    if status == "202":
        headers["Idempotent-Replayed"] = {"schema": {"type": "string", "enum": ["true"]},
                                          "description": "the answer repeats an earlier one"}  # fmt: skip
    if headers:
        response["headers"] = headers
    return response
