"""MLflow model registry calls and their error mapping (no Beam).

Uses ``mlflow.tracking.MlflowClient(tracking_uri=..., registry_uri=...)``:

- ``search_registered_models`` (paginated with ``max_results`` / ``page_token``)
  or ``get_registered_model`` for configured names: names and aliases
  (``RegisteredModel.aliases`` maps alias -> version; the versions returned by
  ``search_model_versions`` carry empty ``aliases``, checked on MLflow 3.x);
- ``search_model_versions(f"name='{name}'")`` per model (paginated): version,
  ``current_stage``, ``status``, ``status_message``, ``run_id``, ``tags``,
  ``source``, ``creation_timestamp`` / ``last_updated_timestamp`` (epoch ms).

Errors become the project's family:

- ``RESOURCE_DOES_NOT_EXIST`` on a registered model -> :class:`ModelNotFoundError`
  (the poller reports it as a warning event and polls the other models);
- connection errors, timeouts, HTTP 429 / 5xx, error codes ``INTERNAL_ERROR``,
  ``TEMPORARILY_UNAVAILABLE``, ``REQUEST_LIMIT_EXCEEDED``... ->
  :class:`~airis_mon.errors.TransientError` (the MLflow client reports a
  refused connection as ``MlflowException`` with ``INTERNAL_ERROR``);
- authentication / authorization (401, 403) and everything else ->
  :class:`~airis_mon.errors.PermanentError`.

The MLflow client takes its HTTP timeout, retry count and credentials only
from environment variables (``MLFLOW_HTTP_REQUEST_TIMEOUT``,
``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``MLFLOW_TRACKING_USERNAME`` /
``_PASSWORD`` / ``_TOKEN``), read on every request. Its default (7 retries
with exponential backoff, about 4 minutes on a dead server) would stall a
poll, so :class:`RegistryClient` sets the configured values for the duration
of each call, under a process-wide lock, and restores the previous ones.
Other MLflow users in the same process may see these values while a call is
running.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from airis_mon.errors import AirisError, PermanentError, TransientError
from sources.mlflow.snapshot import RegisteredModelInfo, VersionInfo

__all__ = ["ModelNotFoundError", "RegistryClient", "map_error"]

TRANSIENT_CODES = frozenset(
    {
        "INTERNAL_ERROR",
        "TEMPORARILY_UNAVAILABLE",
        "REQUEST_LIMIT_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "DEADLINE_EXCEEDED",
        "ABORTED",
        "CANCELLED",
        "DATA_LOSS",
    }
)
AUTH_CODES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED", "CUSTOMER_UNAUTHORIZED"})
_MAX_MESSAGE = 500
_ENV_LOCK = threading.RLock()


class ModelNotFoundError(PermanentError):
    """A registered model does not exist (``RESOURCE_DOES_NOT_EXIST``)."""

    def __init__(self, name: str, message: str):
        self.name = name
        super().__init__(message)


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def map_error(error: Exception, what: str) -> AirisError:
    """The project error for a failed registry call (``what`` names the call)."""
    if isinstance(error, AirisError):
        return error
    if isinstance(error, MlflowException):
        code = str(getattr(error, "error_code", "") or "INTERNAL_ERROR")
        message = _short(f"{what}: {code}: {getattr(error, 'message', error)}")
        if code in TRANSIENT_CODES:
            return TransientError(message)
        if code in AUTH_CODES:
            return PermanentError(f"authentication/authorization failed: {message}")
        return PermanentError(message)
    if isinstance(error, requests.HTTPError) and error.response is not None:
        status = error.response.status_code
        message = _short(f"{what}: HTTP {status}: {error}")
        if status in (401, 403):
            return PermanentError(f"authentication/authorization failed: {message}")
        return TransientError(message) if status in (408, 425, 429) or status >= 500 else PermanentError(message)
    if isinstance(error, (requests.RequestException, ConnectionError, TimeoutError)):
        return TransientError(_short(f"{what}: {type(error).__name__}: {error}"))
    return PermanentError(_short(f"{what}: {type(error).__name__}: {error}"))


def _version_filter(name: str) -> str:
    if "'" not in name:
        return f"name='{name}'"
    if '"' not in name:
        return f'name="{name}"'
    raise PermanentError(f"model name {name!r} holds both quote characters: MLflow's filter syntax cannot express it")


class RegistryClient:
    """A thin, error-mapped view of the MLflow model registry."""

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str | None = None,
        page_size: int = 100,
        request_timeout_s: int = 30,
        http_max_retries: int = 0,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
    ):
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
        self._page_size = page_size
        self._env: dict[str, str] = {
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(request_timeout_s),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(http_max_retries),
        }
        if username is not None:
            self._env["MLFLOW_TRACKING_USERNAME"] = username
            self._env["MLFLOW_TRACKING_PASSWORD"] = password or ""
        if token is not None:
            self._env["MLFLOW_TRACKING_TOKEN"] = token

    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        with _ENV_LOCK:
            saved = {key: os.environ.get(key) for key in self._env}
            os.environ.update(self._env)
            try:
                yield
            except Exception as error:
                raise map_error(error, what) from error
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def registered_models(self) -> list[RegisteredModelInfo]:
        """Every registered model (every page), in the server's order."""
        models: list[RegisteredModelInfo] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            with self._call("search_registered_models"):
                page = self._client.search_registered_models(max_results=self._page_size, page_token=token)
            models.extend(_model_info(model) for model in page)
            token = _next_token(page.token, seen, "search_registered_models")
            if not token:
                return models

    def registered_model(self, name: str) -> RegisteredModelInfo:
        """One registered model; :class:`ModelNotFoundError` when it does not exist."""
        try:
            with self._call(f"get_registered_model({name!r})"):
                model = self._client.get_registered_model(name)
        except PermanentError as error:
            cause = error.__cause__
            if isinstance(cause, MlflowException) and cause.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ModelNotFoundError(name, str(error)) from cause
            raise
        return _model_info(model)

    def model_versions(self, name: str) -> list[VersionInfo]:
        """Every version of one model (every page)."""
        filter_string = _version_filter(name)
        versions: list[VersionInfo] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            with self._call(f"search_model_versions({name!r})"):
                page = self._client.search_model_versions(filter_string, max_results=self._page_size, page_token=token)
            versions.extend(_version_info(v) for v in page if v.name == name)
            token = _next_token(page.token, seen, f"search_model_versions({name!r})")
            if not token:
                return versions


def _next_token(token: str | None, seen: set[str], what: str) -> str | None:
    """The next page token, or None at the end; a token seen before would loop forever."""
    if not token:
        return None
    if token in seen:
        raise PermanentError(f"{what}: the server returned page token {token!r} twice")
    seen.add(token)
    return token


def _model_info(model) -> RegisteredModelInfo:
    return RegisteredModelInfo(str(model.name), {str(a): str(v) for a, v in (model.aliases or {}).items()})


def _version_info(version) -> VersionInfo:
    return VersionInfo(
        model=str(version.name),
        version=str(version.version),
        stage=str(version.current_stage or "None"),
        status=str(version.status or ""),
        status_message=version.status_message or None,
        run_id=version.run_id or None,
        tags={str(k): str(v) for k, v in (version.tags or {}).items()},
        source=version.source or None,
        created_ms=int(version.creation_timestamp) if version.creation_timestamp is not None else None,
        updated_ms=int(version.last_updated_timestamp) if version.last_updated_timestamp is not None else None,
    )
