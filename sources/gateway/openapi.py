"""The gateway's OpenAPI document: every route's body, statuses and security, as the code enforces them.

The routes read their bodies by hand (to bound memory and to store the bytes as received), so FastAPI
cannot infer the bodies; :data:`ROUTES` states them, with every status each route can answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from airis_mon.contract import EventPayload, MetricsPayload

__all__ = ["ROUTES", "install_openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_STATUS = {
    "200": "OK",
    "201": "created",
    "202": "accepted: stored durably; `id` is stored with the records",
    "204": "deleted",
    "400": "validation failed; `details` names each bad field",
    "401": "missing or invalid credentials",
    "403": "signature missing or wrong",
    "404": "not found",
    "405": "method not allowed; see Allow",
    "413": "body larger than max_body_bytes",
    "415": "Content-Type is not application/json",
    "422": "Idempotency-Key (or delivery id) reused with a different body",
    "429": "rate limit exceeded; see Retry-After",
    "503": "the hand-off failed; nothing was stored; retry",
}


def _models() -> dict[tuple[str, str], type[BaseModel]]:
    from sources.gateway.app import UserSyncPayload, WebhookRegistration

    return {
        ("post", "/api/v1/metrics/ingest"): MetricsPayload,
        ("post", "/api/v1/events/ingest"): EventPayload,
        ("post", "/api/v1/integrations/user-sync"): UserSyncPayload,
        ("post", "/api/v1/integrations/webhooks"): WebhookRegistration,
    }


#: (method, path) -> (statuses, whether a Bearer token is needed)
ROUTES: dict[tuple[str, str], tuple[tuple[str, ...], bool]] = {
    ("post", "/api/v1/metrics/ingest"): (("202", "400", "401", "413", "415", "422", "429", "503"), True),
    ("post", "/api/v1/events/ingest"): (("202", "400", "401", "413", "415", "422", "429", "503"), True),
    ("get", "/api/v1/ingest/{ack_id}"): (("200", "401", "404", "429"), True),
    ("post", "/api/v1/integrations/user-sync"): (("202", "400", "401", "413", "415", "422", "429", "503"), True),
    ("post", "/api/v1/integrations/webhooks"): (("200", "201", "400", "401", "413", "415", "429"), True),
    ("get", "/api/v1/integrations/webhooks"): (("200", "401", "429"), True),
    ("delete", "/api/v1/integrations/webhooks"): (("204", "401", "404", "429"), True),
    ("get", "/api/v1/integrations/health"): (("200", "401", "404", "429"), True),
    ("get", "/healthz"): (("200",), False),
    ("post", "/mlflow/webhook"): (("200", "400", "401", "403", "413", "422", "503"), False),
    ("post", "/github/webhook"): (("200", "400", "403", "413", "422", "503"), False),
}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document of :data:`ROUTES` (built once)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi


def _document(app: FastAPI) -> dict[str, Any]:
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
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
        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
    }
    models = _models()
    for model in models.values():
        for name, schema in (
            model.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items()
        ):
            schemas[name] = schema
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            statuses, secured = ROUTES.get((method, path), ((), False))
            if not statuses:
                continue
            operation["responses"] = {status: _response(status) for status in statuses}
            operation["security"] = [{"bearer": []}] if secured else []
            model = models.get((method, path))
            if model is not None:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schema.pop("$defs", None)
                operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return document


def _response(status: str) -> dict:
    response: dict[str, Any] = {"description": _STATUS[status]}
    if status not in ("204",):
        response["content"] = {"application/json": {"schema": _ERROR if status >= "400" else {"type": "object"}}}
    return response
