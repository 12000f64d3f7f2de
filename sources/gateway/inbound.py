"""Signed inbound webhooks (MLflow 3, GitHub): verify, refuse replays, normalize.

Pure functions: no web framework, no Beam, no I/O. The HTTP gateway reads the
raw body and the headers, calls a ``verify_*`` function (which raises
:class:`WebhookRejected` carrying the HTTP status to answer), then decodes the
JSON and calls a ``normalize_*`` function, whose output is a list of payloads
of the public contract (:mod:`airis_mon.payloads`), ready to spool.

Usage in a gateway handler (any framework)::

    from sources.gateway.inbound import (
        ReplayGuard, WebhookRejected, normalize_github, normalize_mlflow, verify_github, verify_mlflow,
    )

    guard = ReplayGuard(tolerance_s=300)          # one per process, shared by the MLflow route

    def mlflow_route(headers, raw_body: bytes, now_s: float) -> tuple[int, list[dict]]:
        try:
            verify_mlflow(
                SECRET, headers.get("X-MLflow-Delivery-Id"), headers.get("X-MLflow-Timestamp"),
                headers.get("X-MLflow-Signature"), raw_body, now_s,
            )
        except WebhookRejected as rejected:
            return rejected.status, []            # reason: rejected.reason (log it, do not echo secrets)
        if guard.seen(headers["X-MLflow-Delivery-Id"], now_s):
            return 200, []                        # a repeat: acknowledge, process nothing
        return 200, normalize_mlflow(json.loads(raw_body), received_ms=int(now_s * 1000))

    def github_route(headers, raw_body: bytes, now_s: float) -> tuple[int, list[dict]]:
        verify_github(SECRET, headers.get("X-Hub-Signature-256"), raw_body)   # or answer 403
        return 200, normalize_github(headers.get("X-GitHub-Event", ""), json.loads(raw_body), int(now_s * 1000))

Verify the *raw* bytes as received, before any JSON decoding: re-serialising
changes the bytes and breaks the signature.

MLflow 3 webhooks (checked against ``mlflow.webhooks.delivery`` and
``mlflow.webhooks.types`` of MLflow 3.x): the body is
``{"entity", "action", "timestamp": <ISO-8601 UTC>, "data": {...}}`` (plus
``"workspace"`` when workspaces are enabled); headers ``X-MLflow-Delivery-Id``
(a UUID), ``X-MLflow-Timestamp`` (unix seconds) and ``X-MLflow-Signature`` =
``"v1," + base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}"))``
(the Standard Webhooks scheme, whose signature header may list several
space-separated ``v1,<sig>`` entries: any one matching is accepted). MLflow
retries a failed delivery with the same id and timestamp.

GitHub webhooks: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``;
the event name is the ``X-GitHub-Event`` header. ``normalize_github`` lives in
:mod:`sources.github.events` (shared with the ``github`` poller, so webhooks and
polls give the same payloads) and is re-exported here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from concurrent.futures import Future
from typing import Any

from airis_mon.errors import PermanentError
from sources.gateway.dedup import KeyMemory
from sources.github.events import normalize_github
from sources.normalize_util import as_dict, as_str, event, first_time_ms

__all__ = [
    "GITHUB_SIGNATURE_HEADER",
    "MLFLOW_DELIVERY_ID_HEADER",
    "MLFLOW_SIGNATURE_HEADER",
    "MLFLOW_TIMESTAMP_HEADER",
    "ReplayGuard",
    "WebhookRejected",
    "normalize_github",
    "normalize_mlflow",
    "verify_github",
    "verify_mlflow",
]

MLFLOW_DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
MLFLOW_TIMESTAMP_HEADER = "X-MLflow-Timestamp"
MLFLOW_SIGNATURE_HEADER = "X-MLflow-Signature"
GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256"

_MLFLOW_SIGNATURE_VERSION = "v1"
#: At most this many ``v1,<sig>`` entries are checked in one signature header.
_MAX_SIGNATURES = 8
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class WebhookRejected(PermanentError):  # noqa: N818 (the gateway contract names it so)
    """An inbound webhook that must be refused.

    ``status`` is the HTTP status to answer (400 malformed request, 401 stale
    or invalid timestamp, 403 bad or missing signature); ``reason`` a short
    text safe to log (it never contains the secret or the expected signature).
    """

    def __init__(self, status: int, reason: str):
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")


# --------------------------------------------------------------------------- verification


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, (bytes, bytearray)) or not secret:
        # A configuration error of the gateway, not a property of the request: checked first.
        raise ValueError("webhook secret must be non-empty bytes")


def _hmac_sha256(secret: bytes, message: bytes) -> bytes:
    return hmac.new(bytes(secret), message, hashlib.sha256).digest()


def _as_bytes(text: str) -> bytes:
    """Header text as bytes for ``hmac.compare_digest`` (which refuses non-ASCII str)."""
    return text.encode("utf-8", "surrogateescape")


def _required(name: str, value: str | None) -> str:
    if not value or not value.strip():
        raise WebhookRejected(400, f"missing header {name}")
    return value.strip()


def verify_mlflow(
    secret: bytes,
    delivery_id: str | None,
    timestamp: str | None,
    signature: str | None,
    raw_body: bytes,
    now_s: float,
    tolerance_s: int = 300,
) -> None:
    """Check one MLflow 3 webhook delivery; return ``None`` or raise :class:`WebhookRejected`.

    ``delivery_id``, ``timestamp`` and ``signature`` are the values of the
    ``X-MLflow-Delivery-Id``, ``X-MLflow-Timestamp`` and ``X-MLflow-Signature``
    headers (``None`` when absent); ``raw_body`` the request body as received;
    ``now_s`` the receiver's clock in unix seconds.

    Raises:
        WebhookRejected: 400 when a header is missing or empty; 401 when the
            timestamp is not an integer number of seconds ("invalid
            timestamp") or lies more than ``tolerance_s`` in the past or
            future ("stale timestamp"); 403 when no signature matches.
        ValueError: the secret is empty (a gateway misconfiguration).
    """
    _check_secret(secret)
    delivery_id = _required(MLFLOW_DELIVERY_ID_HEADER, delivery_id)
    timestamp = _required(MLFLOW_TIMESTAMP_HEADER, timestamp)
    signature = _required(MLFLOW_SIGNATURE_HEADER, signature)

    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise WebhookRejected(401, "invalid timestamp")
    if abs(now_s - int(timestamp)) > tolerance_s:
        raise WebhookRejected(401, "stale timestamp")

    signed = _as_bytes(delivery_id) + b"." + _as_bytes(timestamp) + b"." + bytes(raw_body)
    expected = base64.b64encode(_hmac_sha256(secret, signed))
    matched = False
    for entry in signature.split()[:_MAX_SIGNATURES]:
        version, _, value = entry.partition(",")
        # Compare every entry (no early exit), each in constant time.
        matched |= hmac.compare_digest(expected, _as_bytes(value)) and version == _MLFLOW_SIGNATURE_VERSION
    if not matched:
        raise WebhookRejected(403, "signature mismatch")


def verify_github(secret: bytes, signature_header: str | None, raw_body: bytes) -> None:
    """Check one GitHub webhook delivery; return ``None`` or raise :class:`WebhookRejected` (403).

    ``signature_header`` is the ``X-Hub-Signature-256`` value,
    ``sha256=<hex HMAC-SHA256(secret, raw_body)>``, compared in constant time.

    Raises:
        WebhookRejected: 403 when the header is missing or does not match.
        ValueError: the secret is empty (a gateway misconfiguration).
    """
    _check_secret(secret)
    if not signature_header:
        raise WebhookRejected(403, f"missing header {GITHUB_SIGNATURE_HEADER}")
    expected = b"sha256=" + _hmac_sha256(secret, bytes(raw_body)).hex().encode("ascii")
    if not hmac.compare_digest(expected, _as_bytes(signature_header.strip())):
        raise WebhookRejected(403, "signature mismatch")


class ReplayGuard:
    """Remembers recent delivery ids to refuse a replayed (or re-sent) delivery, in memory.

    An id is remembered for ``2 * tolerance_s`` seconds: a delivery whose
    timestamp passed :func:`verify_mlflow` can only be replayed while that
    timestamp stays within ``tolerance_s`` of the clock, so a longer memory
    buys nothing. Memory is bounded by ``max_entries``: when full, the oldest
    id is forgotten first (size it above peak deliveries per window).
    Thread-safe. Call :meth:`seen` only after the signature is verified, so
    that forged requests cannot fill the memory. The gateway itself keeps ids
    durably (:class:`sources.gateway.dedup.KeyMemory`, which this wraps).
    """

    def __init__(self, tolerance_s: int = 300, max_entries: int = 100_000):
        if tolerance_s <= 0 or max_entries <= 0:
            raise ValueError("tolerance_s and max_entries must be positive")
        self.window_s = 2 * tolerance_s
        self.max_entries = max_entries
        self._memory = KeyMemory(self.window_s, max_entries)

    def __len__(self) -> int:
        return len(self._memory)

    def seen(self, delivery_id: str, now_s: float) -> bool:
        """``True`` when ``delivery_id`` was already seen within the window;
        otherwise record it (at ``now_s``) and return ``False``."""
        _, first = self._memory.claim(delivery_id, "", now_s, _received)
        return not first


def _received() -> Future:
    """The outcome of a delivery that needs no storing: done at once."""
    done: Future = Future()
    done.set_result("")
    return done


# --------------------------------------------------------------------------- MLflow


def normalize_mlflow(body: Any, received_ms: int) -> list[dict]:
    """One ``model_version_status`` event (source ``mlflow``, severity ``info``)
    for one MLflow 3 webhook body. Never raises and never drops a delivery: an
    unknown entity/action (or a body that is not an object) still gives an
    event whose ``change`` names it.

    ``data`` holds ``model_name`` (``data.name``), ``change``
    (``"<entity>.<action>"``), ``version`` / ``alias`` / ``run_id`` /
    ``source`` / ``description`` / ``workspace`` when present, ``tags`` (the
    model's tags on ``*.created``; ``{key: value}`` on ``*_tag.set``,
    ``{key: None}`` on ``*_tag.deleted``) and ``raw``, the body's ``data`` as
    received. ``timestamp`` is the body's time, else ``received_ms``.
    """
    envelope = body if isinstance(body, dict) else {}
    raw = envelope.get("data")
    fields = as_dict(raw)
    entity = as_str(envelope.get("entity")) or "unknown"
    action = as_str(envelope.get("action")) or "unknown"

    data: dict[str, Any] = {"model_name": as_str(fields.get("name")), "change": f"{entity}.{action}"}
    version = as_str(fields.get("version"))
    if version is not None:
        data["version"] = version
    for key in ("alias", "run_id", "source", "description"):
        value = as_str(fields.get(key))
        if value:
            data[key] = value
    tag_key = as_str(fields.get("key"))
    if tag_key is not None:
        data["tags"] = {tag_key: None if action == "deleted" else as_str(fields.get("value"))}
    elif as_dict(fields.get("tags")):
        data["tags"] = {str(k): as_str(v) for k, v in fields["tags"].items()}
    workspace = as_str(envelope.get("workspace"))
    if workspace:
        data["workspace"] = workspace
    if not isinstance(body, dict):
        data["raw"] = {"body": body}
    elif isinstance(raw, dict):
        data["raw"] = raw
    else:
        data["raw"] = {} if raw is None else {"data": raw}

    timestamp = first_time_ms(received_ms, envelope.get("timestamp"))
    return [event(timestamp, "model_version_status", "mlflow", "info", data)]
