"""A loopback fake of the Kubeflow Pipelines v2beta1 REST API (127.0.0.1 only).

It serves what the official ``kfp.Client`` asks for, with the JSON shapes of the
real API server (grpc-gateway over ``backend/api/v2beta1/run.proto``; field
names as in ``kfp_server_api`` 2.x ``V2beta1Run``, ``V2beta1ListRunsResponse``,
``V2beta1PipelineTaskDetail``, ``V2beta1Pipeline``):

- ``GET /apis/v2beta1/healthz`` -> ``{"multi_user": false}``
- ``GET /apis/v2beta1/runs?page_size=&page_token=&sort_by=&experiment_id=&namespace=``
  -> ``{"runs": [...], "total_size": N, "next_page_token": "..."}``; sorted by
  ``created_at`` (``sort_by`` must be ``""``, ``"created_at"`` or ``"created_at desc"``,
  else 400 INVALID_ARGUMENT like the server); ``page_token`` is opaque (base64 JSON)
  and a bad one is a 400; the last page has no ``next_page_token``.
- ``GET /apis/v2beta1/runs/{run_id}`` -> one run (404 NOT_FOUND when unknown)
- ``GET /apis/v2beta1/pipelines/{pipeline_id}`` -> one pipeline (404 when unknown)

Like the real server, unset timestamps are the Unix epoch (``timestamppb.New(time.Unix(0, 0))``:
``"1970-01-01T00:00:00Z"``), int64 ids are JSON strings, and errors are
``google.rpc.Status``-like bodies ``{"error", "code", "message", "details"}``.
``fail_with = 503`` answers every request like an Envoy/Istio ingress whose
backend is down (plain text); ``fail_with = 403`` like the KFP authorizer.
``list_details = False`` leaves ``run_details`` out of list answers (the
details are then only on ``GET /runs/{id}``).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from tests.sinks.receivers import LoopbackServer

__all__ = ["KfpFake", "iso", "make_run", "make_task"]

EPOCH = "1970-01-01T00:00:00Z"
# google.rpc.Code values the server uses
_INVALID_ARGUMENT, _NOT_FOUND, _PERMISSION_DENIED = 3, 5, 7
_ENVOY_503 = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
_DENIED = "Failed to authorize the request: PermissionDenied"


def iso(epoch_ms: int | None) -> str:
    """RFC 3339 as grpc-gateway renders a Timestamp (fraction only when non-zero); None -> the epoch."""
    if not epoch_ms:
        return EPOCH
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if epoch_ms % 1000:
        text += f".{epoch_ms % 1000:03d}"
    return text + "Z"


def make_task(task_id: str, display_name: str, state: str, create_ms: int, start_ms: int | None,
              end_ms: int | None) -> dict:  # fmt: skip
    """One ``V2beta1PipelineTaskDetail``."""
    return {
        "task_id": task_id,
        "display_name": display_name,
        "create_time": iso(create_ms),
        "start_time": iso(start_ms),
        "end_time": iso(end_ms),
        "state": state,
        "execution_id": str(abs(hash(task_id)) % 1000),
        "state_history": [{"update_time": iso(end_ms or start_ms or create_ms), "state": state}],
    }


def make_run(run_id: str, display_name: str, pipeline_id: str | None, state: str, created_ms: int,
             finished_ms: int | None = None, tasks: list[dict] | None = None, experiment_id: str = "exp-1",
             error: str | None = None, pipeline_spec: dict | None = None) -> dict:  # fmt: skip
    """One ``V2beta1Run`` as ``GET /apis/v2beta1/runs`` returns it."""
    history = [{"update_time": iso(created_ms), "state": "PENDING"}]
    if state != "PENDING":
        history.append({"update_time": iso(created_ms + 1000), "state": "RUNNING"})
    if state not in ("PENDING", "RUNNING"):
        history.append({"update_time": iso(finished_ms or created_ms + 2000), "state": state})
    run: dict = {
        "experiment_id": experiment_id,
        "run_id": run_id,
        "display_name": display_name,
        "storage_state": "AVAILABLE",
        "service_account": "pipeline-runner",
        "created_at": iso(created_ms),
        "scheduled_at": iso(created_ms),
        "finished_at": iso(finished_ms),
        "state": state,
        "run_details": {
            "pipeline_context_id": "11",
            "pipeline_run_context_id": str(100 + abs(hash(run_id)) % 900),
            "task_details": tasks or [],
        },
        "state_history": history,
    }
    if pipeline_id is not None:
        run["pipeline_version_reference"] = {"pipeline_id": pipeline_id, "pipeline_version_id": f"{pipeline_id}-v1"}
    if pipeline_spec is not None:
        run["pipeline_spec"] = pipeline_spec
    if error:
        run["error"] = {"code": 2, "message": error, "details": []}
    return run


class KfpFake(LoopbackServer):
    """A threaded KFP API server on 127.0.0.1; use as a context manager."""

    def __init__(self):
        self.runs: list[dict] = []
        self.pipelines: dict[str, str] = {}  # pipeline_id -> display_name
        self.fail_with: int | None = None
        self.list_details = True
        self.delay_s = 0.0  # answers to /runs wait this long (timeouts)
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, query) in arrival order
        self.authorization: list[str] = []  # the Authorization header of each request ("" without one)
        self.lock = threading.Lock()
        super().__init__(_handler_for(self))

    def reset(self) -> None:
        with self.lock:
            self.runs, self.pipelines, self.requests, self.authorization = [], {}, [], []
            self.fail_with, self.list_details, self.delay_s = None, True, 0.0

    def set_state(self, run_id: str, state: str, at_ms: int, finished: bool = False, error: str | None = None) -> None:
        """Move one run to ``state`` at ``at_ms`` as the server would (history appended, finish time set)."""
        with self.lock:
            run = next(r for r in self.runs if r["run_id"] == run_id)
            run["state"] = state
            if finished:
                run["finished_at"] = iso(at_ms)
            run["state_history"].append({"update_time": iso(at_ms), "state": state})
            if error:
                run["error"] = {"code": 2, "message": error, "details": []}

    def paths(self, prefix: str = "") -> list[str]:
        with self.lock:
            return [path for path, _ in self.requests if path.startswith(prefix)]

    # --- request handling -------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str], authorization: str = "") -> tuple[int, str, object]:
        with self.lock:
            self.requests.append((path, query))
            self.authorization.append(authorization)
            delay = self.delay_s if path.startswith("/apis/v2beta1/runs") else 0.0
        if delay:
            time.sleep(delay)
        with self.lock:
            if self.fail_with == 503:
                return 503, "text/plain", _ENVOY_503
            if self.fail_with is not None:
                return self.fail_with, "application/json", _status(_PERMISSION_DENIED, _DENIED)
            if path == "/apis/v2beta1/healthz":
                return 200, "application/json", {"multi_user": False}
            if path == "/apis/v2beta1/runs":
                return self._list_runs(query)
            if path.startswith("/apis/v2beta1/runs/"):
                run_id = path.rsplit("/", 1)[1]
                run = next((r for r in self.runs if r["run_id"] == run_id), None)
                if run is None:
                    return 404, "application/json", _status(_NOT_FOUND, f"Run {run_id} not found")
                return 200, "application/json", run
            if path.startswith("/apis/v2beta1/pipelines/"):
                pipeline_id = path.rsplit("/", 1)[1]
                if pipeline_id not in self.pipelines:
                    return 404, "application/json", _status(_NOT_FOUND, f"Pipeline {pipeline_id} not found")
                return (
                    200,
                    "application/json",
                    {
                        "pipeline_id": pipeline_id,
                        "display_name": self.pipelines[pipeline_id],
                        "name": self.pipelines[pipeline_id].lower().replace(" ", "-"),
                        "created_at": "2024-01-01T00:00:00Z",
                    },
                )
            return 404, "text/plain", "Not Found"

    def _list_runs(self, query: dict[str, str]) -> tuple[int, str, object]:
        sort_by = query.get("sort_by", "")
        if sort_by not in ("", "created_at", "created_at desc"):
            return 400, "application/json", _status(_INVALID_ARGUMENT, f"Invalid sorting field: {sort_by!r}")
        runs = [r for r in self.runs if not query.get("experiment_id") or r["experiment_id"] == query["experiment_id"]]
        runs.sort(key=lambda r: (_parse(r["created_at"]), r["run_id"]), reverse=sort_by.endswith("desc"))
        page_size = int(query.get("page_size") or 20)
        offset = 0
        if query.get("page_token"):
            try:
                token = json.loads(base64.b64decode(query["page_token"]))
                offset = int(token["offset"])
                if token["sort_by"] != sort_by:
                    raise ValueError("sort order changed")
            except (ValueError, KeyError, TypeError):
                return 400, "application/json", _status(_INVALID_ARGUMENT, "Invalid page token")
        page = runs[offset : offset + page_size]
        if not self.list_details:
            page = [{k: v for k, v in r.items() if k != "run_details"} for r in page]
        body: dict = {"total_size": len(runs)}
        if page:
            body["runs"] = page
        if offset + page_size < len(runs):
            token = {"offset": offset + page_size, "sort_by": sort_by}
            body["next_page_token"] = base64.b64encode(json.dumps(token).encode()).decode()
        return 200, "application/json", body


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _status(code: int, message: str) -> dict:
    return {"error": message, "code": code, "message": message, "details": []}


def _handler_for(fake: KfpFake):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlparse(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
            status, content_type, body = fake.answer(url.path, query, self.headers.get("Authorization", ""))
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # keep test output clean
            pass

    return Handler
