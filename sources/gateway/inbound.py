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
the event name is the ``X-GitHub-Event`` header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections import OrderedDict
from typing import Any

from airis_mon.errors import PermanentError
from airis_mon.timeutil import to_epoch_ms

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
#: Body times outside [1970, 2100) are not trusted; the receive time is used instead.
_MAX_PLAUSIBLE_MS = 4_102_444_800_000
_TEXT_LIMIT = 200
_FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "cancelled", "startup_failure"})


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
    """Remembers recent delivery ids to refuse a replayed (or re-sent) delivery.

    An id is remembered for ``2 * tolerance_s`` seconds: a delivery whose
    timestamp passed :func:`verify_mlflow` can only be replayed while that
    timestamp stays within ``tolerance_s`` of the clock, so a longer memory
    buys nothing. Memory is bounded by ``max_entries``: when full, the oldest
    id is forgotten first (size it above peak deliveries per window).
    Thread-safe. Call :meth:`seen` only after the signature is verified, so
    that forged requests cannot fill the memory.
    """

    def __init__(self, tolerance_s: int = 300, max_entries: int = 100_000):
        if tolerance_s <= 0 or max_entries <= 0:
            raise ValueError("tolerance_s and max_entries must be positive")
        self.window_s = 2 * tolerance_s
        self.max_entries = max_entries
        self._first_seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._first_seen)

    def _evict(self, now_s: float) -> None:
        horizon = now_s - self.window_s
        entries = self._first_seen
        while entries:
            oldest_id, first_seen = next(iter(entries.items()))
            if first_seen > horizon and len(entries) <= self.max_entries:
                break
            del entries[oldest_id]

    def seen(self, delivery_id: str, now_s: float) -> bool:
        """``True`` when ``delivery_id`` was already seen within the window;
        otherwise record it (at ``now_s``) and return ``False``."""
        with self._lock:
            self._evict(now_s)
            first_seen = self._first_seen.get(delivery_id)
            if first_seen is not None and now_s - first_seen < self.window_s:
                return True
            self._first_seen.pop(delivery_id, None)
            self._first_seen[delivery_id] = now_s
            if len(self._first_seen) > self.max_entries:
                self._first_seen.popitem(last=False)
            return False


# --------------------------------------------------------------------------- helpers


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    """A scalar as text; ``None`` for missing values and containers."""
    if value is None or isinstance(value, (dict, list, tuple, set)):
        return None
    return value if isinstance(value, str) else str(value)


def _time_ms(value: Any) -> int | None:
    """Epoch ms of a body time (ISO-8601 or epoch number), ``None`` when absent or implausible."""
    if value is None or value == "":
        return None
    try:
        ms = to_epoch_ms(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return ms if 0 <= ms < _MAX_PLAUSIBLE_MS else None


def _first_time_ms(received_ms: int, *values: Any) -> int:
    for value in values:
        ms = _time_ms(value)
        if ms is not None:
            return ms
    return int(received_ms)


def _short(value: Any, limit: int = _TEXT_LIMIT) -> str | None:
    """The first line of a text, at most ``limit`` characters."""
    text = _str(value)
    if text is None:
        return None
    lines = text.strip().splitlines()
    return lines[0][:limit] if lines else ""


def _login(user: Any) -> str | None:
    return _str(_dict(user).get("login"))


def _event(timestamp_ms: int, event_type: str, source: str, severity: str, data: dict) -> dict:
    return {"timestamp": timestamp_ms, "event_type": event_type, "source": source, "severity": severity, "data": data}


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
    fields = _dict(raw)
    entity = _str(envelope.get("entity")) or "unknown"
    action = _str(envelope.get("action")) or "unknown"

    data: dict[str, Any] = {"model_name": _str(fields.get("name")), "change": f"{entity}.{action}"}
    version = _str(fields.get("version"))
    if version is not None:
        data["version"] = version
    for key in ("alias", "run_id", "source", "description"):
        value = _str(fields.get(key))
        if value:
            data[key] = value
    tag_key = _str(fields.get("key"))
    if tag_key is not None:
        data["tags"] = {tag_key: None if action == "deleted" else _str(fields.get("value"))}
    elif _dict(fields.get("tags")):
        data["tags"] = {str(k): _str(v) for k, v in fields["tags"].items()}
    workspace = _str(envelope.get("workspace"))
    if workspace:
        data["workspace"] = workspace
    if not isinstance(body, dict):
        data["raw"] = {"body": body}
    elif isinstance(raw, dict):
        data["raw"] = raw
    else:
        data["raw"] = {} if raw is None else {"data": raw}

    timestamp = _first_time_ms(received_ms, envelope.get("timestamp"))
    return [_event(timestamp, "model_version_status", "mlflow", "info", data)]


# --------------------------------------------------------------------------- GitHub


def _repository(body: dict, *fallbacks: Any) -> str | None:
    for candidate in (body.get("repository"), *fallbacks):
        name = _str(_dict(candidate).get("full_name"))
        if name:
            return name
    return None


def _workflow_run(body: dict, received_ms: int) -> list[dict]:
    run = _dict(body.get("workflow_run"))
    action = _str(body.get("action"))
    conclusion = _str(run.get("conclusion"))
    status = _str(run.get("status"))
    started_ms = _time_ms(run.get("run_started_at"))
    updated_ms = _time_ms(run.get("updated_at"))
    data: dict[str, Any] = {
        "repository": _repository(body, run.get("repository")),
        "workflow": _str(run.get("name")) or _str(_dict(body.get("workflow")).get("name")),
        "action": action,
        "run_number": run.get("run_number"),
        "run_id": run.get("id"),
        "run_attempt": run.get("run_attempt"),
        "status": status,
        "conclusion": conclusion,
        "branch": _str(run.get("head_branch")),
        "actor": _login(run.get("actor")) or _login(run.get("triggering_actor")) or _login(body.get("sender")),
        "event": _str(run.get("event")),
        "html_url": _str(run.get("html_url")),
    }
    duration_s = None
    if started_ms is not None and updated_ms is not None and updated_ms >= started_ms:
        duration_s = (updated_ms - started_ms) / 1000
        data["duration_s"] = duration_s
    timestamp = _first_time_ms(received_ms, run.get("updated_at"), run.get("run_started_at"), run.get("created_at"))
    severity = "warning" if conclusion in _FAILED_CONCLUSIONS else "info"
    payloads = [_event(timestamp, "workflow_run", "github", severity, data)]

    completed = action == "completed" or status == "completed"
    if completed and duration_s is not None:
        tags = {key: data[key] or "" for key in ("repository", "workflow", "status", "conclusion", "branch", "actor")}
        metric = {"name": "workflow_duration", "value": duration_s, "unit": "s", "tags": tags}
        payloads.append({"timestamp": timestamp, "source": "github_actions", "metrics": [metric]})
    return payloads


def _push(body: dict, received_ms: int) -> list[dict]:
    ref = _str(body.get("ref"))
    head = _dict(body.get("head_commit"))
    commits = body.get("commits")
    pusher = _dict(body.get("pusher"))
    data: dict[str, Any] = {
        "repository": _repository(body),
        "ref": ref,
        "branch": ref.removeprefix("refs/heads/") if ref and ref.startswith("refs/heads/") else None,
        "before": _str(body.get("before")),
        "after": _str(body.get("after")),
        "pusher": _str(pusher.get("name")) or _login(body.get("sender")),
        "commits": len(commits) if isinstance(commits, list) else 0,
        "head_commit": _short(head.get("message")),
        "created": body.get("created") is True,
        "deleted": body.get("deleted") is True,
        "forced": body.get("forced") is True,
    }
    timestamp = _first_time_ms(received_ms, head.get("timestamp"), _dict(body.get("repository")).get("pushed_at"))
    return [_event(timestamp, "push", "github", "info", data)]


def _pull_request(body: dict, received_ms: int) -> list[dict]:
    pull = _dict(body.get("pull_request"))
    number = body.get("number", pull.get("number"))
    data: dict[str, Any] = {
        "repository": _repository(body, _dict(pull.get("base")).get("repo")),
        "action": _str(body.get("action")),
        "number": number,
        "title": _short(pull.get("title")),
        "state": _str(pull.get("state")),
        "merged": pull.get("merged") is True,
        "base": _str(_dict(pull.get("base")).get("ref")),
        "head": _str(_dict(pull.get("head")).get("ref")),
        "user": _login(pull.get("user")),
        "html_url": _str(pull.get("html_url")),
    }
    timestamp = _first_time_ms(received_ms, pull.get("updated_at"), pull.get("created_at"))
    return [_event(timestamp, "pull_request", "github", "info", data)]


def _event_name(event_name: Any) -> str:
    """``X-GitHub-Event`` reduced to ``[a-z0-9_]``, at most 64 characters."""
    name = re.sub(r"[^a-z0-9_]+", "_", (_str(event_name) or "").strip().lower()).strip("_")
    return name[:64] or "unknown"


def normalize_github(event_name: str, body: Any, received_ms: int) -> list[dict]:
    """Payloads of the public contract for one GitHub webhook delivery.

    ``event_name`` is the ``X-GitHub-Event`` header. ``workflow_run`` gives an
    event (severity ``warning`` when the conclusion is a failure, timeout or
    cancellation) and, for a completed run whose start and end are known, a
    ``workflow_duration`` metrics payload (source ``github_actions``);
    ``push`` and ``pull_request`` give one event each; ``ping`` gives
    nothing; any other event gives one ``github_<event>`` event with the
    repository, action and sender. Never raises: missing fields become
    ``None``, and times missing from the body become ``received_ms``.
    """
    name = _event_name(event_name)
    payload = body if isinstance(body, dict) else {}
    if name == "ping":
        return []
    if name == "workflow_run":
        return _workflow_run(payload, received_ms)
    if name == "push":
        return _push(payload, received_ms)
    if name == "pull_request":
        return _pull_request(payload, received_ms)
    data = {
        "repository": _repository(payload),
        "action": _str(payload.get("action")),
        "sender": _login(payload.get("sender")),
    }
    return [_event(int(received_ms), f"github_{name}", "github", "info", data)]
