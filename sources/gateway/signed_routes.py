"""``POST /mlflow/webhook`` and ``POST /github/webhook``: signed inbound webhooks, when their secrets are set.

Each request is verified on its raw bytes (:mod:`sources.gateway.inbound`) before anything is decoded;
the headers are checked before the body is read, and the body is read within ``max_body_bytes``. A
delivery already received within ``dedup_window_s`` (the same ``X-MLflow-Delivery-Id`` or
``X-GitHub-Delivery``, remembered durably in the spool) is answered 200 with ``duplicate: true`` and the
first delivery's id, and stores nothing, so a sender's retry after a lost answer is harmless.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from airis_mon.contract import EventPayload, MetricsPayload, payload_kind
from sources.gateway.bodies import Body, GatewayError, document_problems, read_body, refuse, validated
from sources.gateway.config import GatewayConfig
from sources.gateway.envelope import SpoolEntry

__all__ = ["add_signed_webhooks"]


def add_signed_webhooks(app: FastAPI, config: GatewayConfig, storer, context, wall_clock) -> None:
    """Add the webhook routes whose secrets ``config`` sets; ``storer`` is the app's
    :class:`~sources.gateway.app.Storer`, ``context()`` the payload validation context."""
    from sources.gateway import inbound
    from sources.gateway.app import json_answer

    limit = config.max_body_bytes

    def decoded(raw: bytes) -> Any:
        """A verified body as a JSON object (MLflow and GitHub send nothing else), or a 400 naming what the
        pipeline could not process."""
        body = Body(raw)
        refuse(document_problems(body))
        if not isinstance(body.document, dict):
            raise GatewayError.about(400, "validation failed", "(root)", "must be a JSON object")
        return body.document

    def checked(payloads: list[dict]) -> tuple[bytes, ...]:
        """The normalized payloads, each valid under the public contract (else a 400), as spool bytes."""
        for payload in payloads:
            model = MetricsPayload if payload_kind(payload) == "metrics" else EventPayload
            validated(model, Body(orjson.dumps(payload)), context())
        return tuple(orjson.dumps(payload) for payload in payloads)

    async def store(sender: str, delivery: str | None, payloads: tuple[bytes, ...], raw: bytes) -> Response:
        if not payloads:
            return json_answer(200, {"status": "accepted", "events": 0})
        key = f"{sender}:{delivery}" if delivery else None
        ack, duplicate = await storer.store(SpoolEntry(payloads, token=sender), key, raw)
        status = "duplicate" if duplicate else "accepted"
        return json_answer(200, {"status": status, "id": ack, "events": len(payloads), "duplicate": duplicate})

    def rejected(error: inbound.WebhookRejected, fields: dict[int, str]) -> GatewayError:
        """The answer to a delivery that failed verification, naming the header at fault (by the status)."""
        field = fields.get(error.status)
        return GatewayError(error.status, error.reason, [{"field": field, "message": error.reason}] if field else None)

    if config.mlflow_webhook_secret is not None:
        secret = config.mlflow_webhook_secret.get_secret_value().encode()
        # verify_mlflow's statuses: 401 for the timestamp (invalid or stale), 403 for the signature.
        mlflow_fields = {401: inbound.MLFLOW_TIMESTAMP_HEADER, 403: inbound.MLFLOW_SIGNATURE_HEADER}

        @app.post("/mlflow/webhook")
        async def mlflow_webhook(request: Request) -> Response:
            headers = request.headers
            # Refused before the body is read: no signature (403, as GitHub's), then no delivery id or timestamp.
            signature_header = inbound.MLFLOW_SIGNATURE_HEADER
            if not headers.get(signature_header, "").strip():
                raise GatewayError(403, f"missing header {signature_header}",
                                   [{"field": signature_header, "message": "required"}])  # fmt: skip
            for name in (inbound.MLFLOW_DELIVERY_ID_HEADER, inbound.MLFLOW_TIMESTAMP_HEADER):
                if not headers.get(name, "").strip():
                    raise GatewayError(400, f"missing header {name}", [{"field": name, "message": "required"}])
            raw = await read_body(request, limit, content_type=None)
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
                raise rejected(error, mlflow_fields) from None
            payloads = checked(inbound.normalize_mlflow(decoded(raw), int(now * 1000)))
            return await store("mlflow", headers["x-mlflow-delivery-id"].strip(), payloads, raw)

    if config.github_webhook_secret is not None:
        github_secret = config.github_webhook_secret.get_secret_value().encode()

        @app.post("/github/webhook")
        async def github_webhook(request: Request) -> Response:
            headers = request.headers
            signature_header = inbound.GITHUB_SIGNATURE_HEADER
            if not headers.get(signature_header, "").strip():  # refused before the body is read
                raise GatewayError(403, f"missing header {signature_header}",
                                   [{"field": signature_header, "message": "required"}])  # fmt: skip
            raw = await read_body(request, limit, content_type=None)
            try:
                inbound.verify_github(github_secret, headers.get("x-hub-signature-256"), raw)
            except inbound.WebhookRejected as error:
                raise rejected(error, {403: signature_header}) from None
            event = headers.get("x-github-event", "")
            payloads = checked(inbound.normalize_github(event, decoded(raw), int(wall_clock() * 1000)))
            return await store("github", headers.get("x-github-delivery", "").strip() or None, payloads, raw)
