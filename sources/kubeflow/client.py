"""Kubeflow Pipelines API calls through the official ``kfp`` SDK (no Beam here).

::

    client = KubeflowClient("http://127.0.0.1:8888", namespace=None, experiment_id=None, token=None, timeout_s=30)
    client.connect()                                  # kfp.Client(host=...): GET /apis/v2beta1/healthz
    runs = client.list_runs(cutoff_ms, page_size=100)  # GET /apis/v2beta1/runs, newest first, paged
    client.get_run(run_id)                            # GET /apis/v2beta1/runs/{run_id}
    client.pipeline_display_name(pipeline_id)         # GET /apis/v2beta1/pipelines/{pipeline_id}

Runs come back as :class:`RunInfo` / :class:`TaskInfo` (epoch milliseconds;
``None`` where the server sends its "unset" timestamp, the Unix epoch).

Errors are translated at this boundary (``kfp_server_api.exceptions.ApiException``
by ``status``): connection errors, timeouts, 408/425/429 and 5xx become
:class:`~airis_mon.errors.TransientError`; 401/403, 404, other 4xx and
unreadable answers (status 0: TLS errors, bad JSON) :class:`~airis_mon.errors.PermanentError`.
Messages name the call and the status, never the token.

Two deliberate departures from ``kfp.Client`` defaults, both through a small
subclass: its health check is one attempt (the SDK retries 5 times 5 s apart
inside the constructor and then raises ``TimeoutError``; the polling framework
owns retries), and every request has a timeout (the SDK sends none, so a hung
server would block a worker forever). urllib3's default retries (3, for
connection errors and read timeouts of these GET calls) still apply below
that, so one call can take a few times ``timeout_s`` before it fails.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airis_mon.errors import PermanentError, TransientError

__all__ = ["KubeflowClient", "RunInfo", "TaskInfo", "translate_error"]

log = logging.getLogger(__name__)

SORT_BY = "created_at desc"
#: A bound on pages per listing, against a server that keeps answering with new tokens.
MAX_PAGES = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_RETRY_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class TaskInfo:
    """One task (step) of a run, from ``run_details.task_details``."""

    task_id: str
    display_name: str
    state: str
    create_ms: int | None
    start_ms: int | None
    end_ms: int | None


@dataclass(frozen=True)
class RunInfo:
    """One run, from ``V2beta1Run``. ``tasks`` is None when the answer had no ``run_details``."""

    run_id: str
    display_name: str
    experiment_id: str
    pipeline_id: str
    spec_name: str  # pipelineInfo.name of an embedded pipeline_spec ("" without one)
    state: str
    created_ms: int
    finished_ms: int | None
    error: str
    history: tuple[tuple[int, str], ...]  # (update_time ms, state), as the server lists them
    tasks: tuple[TaskInfo, ...] | None


def _ms(moment: datetime | None) -> int | None:
    """Epoch ms of a deserialized timestamp; None when unset (KFP sends the epoch for "unset")."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    value = (moment - _EPOCH) // timedelta(milliseconds=1)
    return value if value > 0 else None


def _spec_name(spec: Any) -> str:
    if not isinstance(spec, dict):
        return ""
    inner = spec.get("pipeline_spec") if isinstance(spec.get("pipeline_spec"), dict) else spec
    info = inner.get("pipelineInfo") or inner.get("pipeline_info") or {}
    return str(info.get("name") or "") if isinstance(info, dict) else ""


def _task_info(task: Any) -> TaskInfo:
    return TaskInfo(
        task_id=task.task_id or "",
        display_name=task.display_name or task.task_id or "",
        state=str(task.state or "RUNTIME_STATE_UNSPECIFIED"),
        create_ms=_ms(task.create_time),
        start_ms=_ms(task.start_time),
        end_ms=_ms(task.end_time),
    )


def _run_info(run: Any) -> RunInfo:
    reference = run.pipeline_version_reference
    details = run.run_details
    tasks = None
    if details is not None and details.task_details is not None:
        tasks = tuple(_task_info(task) for task in details.task_details)
    history = tuple(
        (_ms(status.update_time) or 0, str(status.state or "")) for status in (run.state_history or []) if status
    )
    return RunInfo(
        run_id=run.run_id or "",
        display_name=run.display_name or "",
        experiment_id=run.experiment_id or "",
        pipeline_id=(reference.pipeline_id or "") if reference is not None else "",
        spec_name=_spec_name(run.pipeline_spec),
        state=str(run.state or "RUNTIME_STATE_UNSPECIFIED"),
        created_ms=_ms(run.created_at) or 0,
        finished_ms=_ms(run.finished_at),
        error=(run.error.message or "") if run.error is not None else "",
        history=history,
        tasks=tasks,
    )


def _detail(error: Any) -> str:
    """The server's message (google.rpc.Status ``message``) or the HTTP reason, shortened."""
    body = getattr(error, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    message = ""
    if isinstance(body, str) and body.strip():
        try:
            parsed = json.loads(body)
            message = str(parsed.get("message") or parsed.get("error") or "") if isinstance(parsed, dict) else ""
        except ValueError:
            message = body.strip()
    message = message or str(getattr(error, "reason", "") or "")
    message = " ".join(message.split())
    return message[:200]


def translate_error(error: BaseException, action: str) -> TransientError | PermanentError:
    """The AIRIS error for a failure of ``action`` (see the module docstring)."""
    from kfp_server_api.exceptions import ApiException

    if isinstance(error, ApiException):
        status = int(error.status or 0)
        text = f"{action}: HTTP {status} {_detail(error)}".rstrip()
        if status in _RETRY_STATUSES or status >= 500:
            return TransientError(text)
        if status in (401, 403):
            return PermanentError(f"{text} (check the token and namespace)")
        return PermanentError(text)
    import urllib3

    if isinstance(error, urllib3.exceptions.HTTPError | OSError):  # connection refused, reset, timeouts
        return TransientError(f"{action}: {type(error).__name__}: {error}"[:400])
    return PermanentError(f"{action}: {type(error).__name__}: {error}"[:400])


@contextlib.contextmanager
def _vendor_errors(action: str, absent: tuple[int, ...] = ()) -> Iterator[None]:
    """Translate the SDK's errors; an ``ApiException`` whose status is in ``absent`` is swallowed
    (the ``with`` block then ends early and the caller returns its "not there" value)."""
    import urllib3
    from kfp_server_api.exceptions import ApiException

    try:
        yield
    except ApiException as error:
        if error.status in absent:
            return
        raise translate_error(error, action) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise translate_error(error, action) from None


def _kfp_client(host: str, namespace: str | None, token: str | None, timeout_s: float) -> Any:
    """A ``kfp.Client`` with a one-attempt health check and per-request timeouts."""
    import kfp

    timeout = (timeout_s, timeout_s)  # (connect, read): kfp_server_api turns only an int or a pair into a Timeout

    class _Client(kfp.Client):
        def __init__(self, **kwargs: Any):
            self.airis_healthz_checked = False
            super().__init__(**kwargs)
            rest = self._run_api.api_client.rest_client  # one ApiClient is shared by every service API
            send = rest.request

            def request(*args: Any, _request_timeout: Any = None, **more: Any) -> Any:
                return send(*args, _request_timeout=_request_timeout or timeout, **more)

            rest.request = request

        def get_kfp_healthz(self, sleep_duration: int = 5) -> Any:
            response = self._healthz_api.healthz_service_get_healthz(_request_timeout=timeout)
            self.airis_healthz_checked = True
            return response

    kwargs: dict[str, Any] = {"host": host}
    if namespace:
        kwargs["namespace"] = namespace
    if token:
        kwargs["existing_token"] = token
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "This client only works with KFP v2.0.0-beta.2 and later"
        client = _Client(**kwargs)
    if not client.airis_healthz_checked:  # the SDK skips it when a namespace is set
        client.get_kfp_healthz()
    return client


class KubeflowClient:
    """The KFP calls the ``kubeflow`` source makes; see the module docstring."""

    def __init__(self, host: str, namespace: str | None = None, experiment_id: str | None = None,
                 token: str | None = None, timeout_s: float = 30.0):  # fmt: skip
        self._host = host
        self._namespace = namespace
        self._experiment_id = experiment_id
        self._token = token
        self._timeout_s = timeout_s
        self._client: Any = None

    def connect(self) -> None:
        """Create the SDK client (health check included) unless it exists."""
        if self._client is None:
            with _vendor_errors("healthz"):
                self._client = _kfp_client(self._host, self._namespace, self._token, self._timeout_s)

    def close(self) -> None:
        self._client = None

    def list_runs(self, cutoff_ms: int, page_size: int) -> list[RunInfo]:
        """Runs created at or after ``cutoff_ms``, newest first: pages are followed
        until a run is older than the cutoff or the pages end."""
        self.connect()
        runs: list[RunInfo] = []
        token, seen = "", set()
        for _ in range(MAX_PAGES):
            with _vendor_errors("list_runs"):
                response = self._client.list_runs(
                    page_token=token,
                    page_size=page_size,
                    sort_by=SORT_BY,
                    namespace=self._namespace,
                    experiment_id=self._experiment_id,
                )
            for run in response.runs or []:
                info = _run_info(run)
                if info.created_ms < cutoff_ms:
                    return runs
                runs.append(info)
            token = response.next_page_token or ""
            if not token or token in seen:
                return runs
            seen.add(token)
        log.warning("list_runs: stopped after %d pages (%d runs)", MAX_PAGES, len(runs))
        return runs

    def get_run(self, run_id: str) -> RunInfo | None:
        """One run with its details; None when it no longer exists (404)."""
        self.connect()
        with _vendor_errors("get_run", absent=(404,)):
            return _run_info(self._client.get_run(run_id))
        return None

    def pipeline_display_name(self, pipeline_id: str) -> str | None:
        """The pipeline's display name; None when it is gone or not readable (404, 403)."""
        self.connect()
        with _vendor_errors("get_pipeline", absent=(403, 404)):
            pipeline = self._client.get_pipeline(pipeline_id)
            return pipeline.display_name or pipeline.name or None
        return None
