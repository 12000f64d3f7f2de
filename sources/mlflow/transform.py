"""``ReadFromMlflow``: the MLflow model registry as a source of ``model_version_status`` events.

>>> outputs = pipeline | ReadFromMlflow(config)            # doctest: +SKIP
>>> outputs["events"], outputs["health"]                    # doctest: +SKIP

Each poll reads every version of the configured models (every model when
``models`` is unset), builds a snapshot ``{(model, version): {stage, status,
aliases, tags, run_id, ...}}`` (:mod:`sources.mlflow.snapshot`) and emits one
event per change since the previous poll only: a version registered, its
stage changed, an alias added or removed, a tag set / changed / deleted, its
status changed (``FAILED_REGISTRATION``: severity error), a version deleted.
A configured model that does not exist (``RESOURCE_DOES_NOT_EXIST``) gives
one ``registered_model.missing`` warning when it goes missing; the other
models are still polled.

Where the previous snapshot comes from:

- without ``state_file``, from memory: the first poll of a fresh poller
  reports every version as ``model_version.created``, later polls of the same
  poller (an unbounded run) only the changes;
- with ``state_file``, from that JSON file: it is loaded in ``setup()`` and
  rewritten atomically after each successful poll, so a restarted streaming
  job or a bounded run started again (a cron job, ``pipelines.main`` run once
  an hour) reports only what really changed since the last poll, never the
  same change twice. This is how "only when something changed since the last
  poll" survives restarts in bounded runs. The file is written when the poll
  returns, before its events reach the sinks: a run that crashes in between
  loses those events (at most once). A state file belongs to one integration
  and one registry (a hash of the registry URI is stored and checked); an
  unreadable one is reported as a ``state_file.unreadable`` warning and the
  poll then reports everything, as a fresh poller does.

A failed poll (registry down: :class:`~airis_mon.errors.TransientError`,
retried with ``poll.retry``; bad credentials: PermanentError) leaves the
snapshot unchanged and becomes an unhealthy health record; the changes are
reported by the next successful poll.
"""

from __future__ import annotations

import functools
import logging

import apache_beam as beam

from airis_mon.errors import PermanentError
from sources.mlflow.client import ModelNotFoundError, RegistryClient
from sources.mlflow.config import MlflowConfig
from sources.mlflow.snapshot import (
    EVENT_TYPE,
    SOURCE,
    RegisteredModelInfo,
    State,
    VersionInfo,
    build_snapshot,
    diff_snapshots,
    load_state,
    registry_fingerprint,
    save_state,
)
from sources.polling import ReadFromPoller

__all__ = ["MlflowRegistryPoller", "ReadFromMlflow"]

_LOG = logging.getLogger(__name__)


def _note(now_ms: int, change: str, model_name: str | None, **details) -> dict:
    data = {"model_name": model_name, "version": None, "change": change, **details,
            "run_id": None, "stage": None, "aliases": []}  # fmt: skip
    return {"timestamp": now_ms, "event_type": EVENT_TYPE, "source": SOURCE, "severity": "warning", "data": data}


class MlflowRegistryPoller:
    """The poller behind :class:`ReadFromMlflow` (see the module docstring)."""

    def __init__(self, config: MlflowConfig):
        self._config = config
        self._client: RegistryClient | None = None
        self._state = State()
        self._notes: list[tuple[str, str]] = []

    @property
    def state(self) -> State:
        """The snapshot of the last successful poll (or loaded from ``state_file``)."""
        return self._state

    def setup(self) -> None:
        config = self._config
        self._client = RegistryClient(
            config.tracking_uri,
            config.effective_registry_uri(),
            page_size=config.page_size,
            request_timeout_s=config.request_timeout_s,
            http_max_retries=config.http_max_retries,
            username=config.username,
            password=config.password.get_secret_value() if config.password is not None else None,
            token=config.token.get_secret_value() if config.token is not None else None,
        )
        self._fingerprint = registry_fingerprint(config.effective_registry_uri())
        self._state, self._notes = State(), []
        if config.state_file is None:
            return
        try:
            state = load_state(config.state_file, self._fingerprint)
        except ValueError as error:
            _LOG.warning("%s: %s; reporting every version again", config.name, error)
            self._notes.append(("state_file.unreadable", str(error)))
            return
        if config.models is not None:  # models dropped from the config are no longer followed
            wanted = set(config.models)
            state.snapshot = {key: entry for key, entry in state.snapshot.items() if key[0] in wanted}
            state.missing &= wanted
        self._state = state

    def teardown(self) -> None:
        self._client = None

    def _read_registry(self) -> tuple[list[RegisteredModelInfo], list[VersionInfo], set[str]]:
        client = self._client
        if client is None:
            raise PermanentError("poll() before setup()")
        missing: set[str] = set()
        if self._config.models is None:
            models = client.registered_models()
        else:
            models = []
            for name in self._config.models:
                try:
                    models.append(client.registered_model(name))
                except ModelNotFoundError:
                    missing.add(name)
        versions = [version for model in models for version in client.model_versions(model.name)]
        return models, versions, missing

    def poll(self, now_ms: int) -> list[dict]:
        config = self._config
        models, versions, missing = self._read_registry()
        current = State(build_snapshot(models, versions), missing)
        events = [_note(now_ms, change, None, message=message) for change, message in self._notes]
        for name in sorted(missing - self._state.missing):
            message = f"registered model {name!r} does not exist (RESOURCE_DOES_NOT_EXIST); other models polled"
            events.append(_note(now_ms, "registered_model.missing", name, message=message))
        events.extend(diff_snapshots(self._state.snapshot, current.snapshot, now_ms, config.environment_by_stage))
        if config.state_file is not None:
            try:
                save_state(config.state_file, current, self._fingerprint)
            except OSError as error:
                raise PermanentError(f"cannot write state file {config.state_file}: {error}") from error
        self._state, self._notes = current, []
        return events


class ReadFromMlflow(beam.PTransform):
    """The configured MLflow registry -> the dict of :mod:`airis_mon.streams` outputs."""

    def __init__(self, config: MlflowConfig, bounded: bool = False):
        super().__init__()
        self._config = config
        self._bounded = bounded

    def expand(self, pbegin):
        config = self._config
        factory = functools.partial(MlflowRegistryPoller, config)
        return pbegin | "Poll" >> ReadFromPoller(config.name, factory, config.poll, bounded=self._bounded)
