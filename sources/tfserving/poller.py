"""The ``tfserving`` poller: per poll and model, version states, a timed Predict probe, and the
server's Prometheus metrics.

Payloads (``source`` = ``"tensorflow_serving"``, timestamp = poll time):

- one ``model_version_status`` event per version that ``GetModelStatus``
  reports; data ``model_name``, ``model_version``, ``state`` (AVAILABLE,
  LOADING, UNLOADING, END, START, UNKNOWN), ``error_code`` (``tensorflow.error.Code``
  name, ``OK`` when none), ``error_message``; severity ``info`` when
  AVAILABLE, ``error`` when the version reports an error, else ``warning``;
- ``inference_latency`` (ms) of a ``Predict`` probe on models with
  ``probe_input``, tagged ``model_name``, ``model_version`` (the version that
  answered), ``framework: tensorflow``, ``environment``; no probe while no
  version is AVAILABLE (the status events say why);
- with ``prometheus_url``: the ``:tensorflow:serving:*`` families converted as
  the ``prometheus`` source does (request count rates, latency quantiles in µs),
  tagged ``environment`` and ``framework``.

A failure of one model (``NOT_FOUND``, a probe past the deadline, ...) is an
event (``model_status_failed`` or ``inference_probe_failed``, severity
``error``, data with the gRPC ``grpc_code`` and ``details``) and polling goes
on with the other models; a failed scrape is a ``scrape_failed`` event. Only
a server that does not answer (``UNAVAILABLE``, ``DEADLINE_EXCEEDED`` on a
status call) or refuses us (auth) fails the poll: the framework retries it
and records an unhealthy health record.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from airis_mon.errors import PermanentError, TransientError
from sources.prometheus.client import display_url, scrape
from sources.prometheus.exposition import ExpositionConverter
from sources.tfserving.client import ModelCallError, TFServingClient, VersionStatus
from sources.tfserving.config import TFServingConfig, TFServingModel

__all__ = ["PROMETHEUS_FAMILIES", "SOURCE", "TFServingPoller"]

SOURCE = "tensorflow_serving"
FRAMEWORK = "tensorflow"
#: Families kept from the server's Prometheus endpoint (it lists ~1000 TensorFlow-internal series).
PROMETHEUS_FAMILIES = (r":tensorflow:serving:.*",)


class TFServingPoller:
    """Poller of :class:`~sources.tfserving.config.TFServingConfig` (see the module docstring)."""

    def __init__(self, config: TFServingConfig, clock: Callable[[], float] = time.time):
        self._config = config
        self._clock = clock
        self._client: TFServingClient | None = None
        self._session: requests.Session | None = None
        self._converter: ExpositionConverter | None = None

    def setup(self) -> None:
        config = self._config
        self._client = TFServingClient(config.target, config.deadline_s)  # imports the stubs once per process
        if config.prometheus_url:
            self._session = requests.Session()
            tags = {"environment": config.environment, "framework": FRAMEWORK}
            self._converter = ExpositionConverter(tags, include=PROMETHEUS_FAMILIES)

    def teardown(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._session is not None:
            self._session.close()
            self._session = None

    def poll(self, now_ms: int) -> list[dict]:
        config = self._config
        events: list[dict] = []
        points: list[dict] = []
        for model in config.models:
            self._poll_model(model, now_ms, events, points)
        if config.prometheus_url:
            try:
                result = scrape(self._session, config.prometheus_url, config.deadline_s)
            except (TransientError, PermanentError) as error:
                data = {"url": display_url(config.prometheus_url), "error": str(error)}
                events.append(self._event(now_ms, "scrape_failed", "error", data))
            else:
                points.extend(self._converter.convert(result.families, self._clock()))
        metrics = [{"timestamp": now_ms, "source": SOURCE, "metrics": points}] if points else []
        return metrics + events

    def _poll_model(self, model: TFServingModel, now_ms: int, events: list[dict], points: list[dict]) -> None:
        requested = "" if model.version is None else str(model.version)
        try:
            versions = self._client.model_status(model.name, model.version)
        except ModelCallError as error:
            events.append(self._failure(now_ms, "model_status_failed", model.name, requested, error))
            return
        for status in versions:
            events.append(self._version_event(now_ms, model.name, status))
        if model.probe_input is None or not any(status.state == "AVAILABLE" for status in versions):
            return
        try:
            latency_ms, served = self._client.predict(model.name, model.version, model.signature_name,
                                                      model.probe_input)  # fmt: skip
        except ModelCallError as error:
            events.append(self._failure(now_ms, "inference_probe_failed", model.name, requested, error))
            return
        version = str(served) if served is not None else requested
        tags = {"model_name": model.name, "model_version": version, "framework": FRAMEWORK,
                "environment": self._config.environment}  # fmt: skip
        points.append({"name": "inference_latency", "value": latency_ms, "unit": "ms", "tags": tags})

    def _event(self, now_ms: int, event_type: str, severity: str, data: dict) -> dict:
        data = {**data, "target": self._config.target, "environment": self._config.environment, "framework": FRAMEWORK}
        return {"timestamp": now_ms, "event_type": event_type, "source": SOURCE, "severity": severity, "data": data}

    def _version_event(self, now_ms: int, model_name: str, status: VersionStatus) -> dict:
        if status.error_code not in ("OK", "0"):
            severity = "error"
        else:
            severity = "info" if status.state == "AVAILABLE" else "warning"
        data = {
            "model_name": model_name,
            "model_version": str(status.version),
            "state": status.state,
            "error_code": status.error_code,
            "error_message": status.error_message,
        }
        return self._event(now_ms, "model_version_status", severity, data)

    def _failure(self, now_ms: int, event_type: str, model_name: str, version: str, error: ModelCallError) -> dict:
        data = {"model_name": model_name, "model_version": version, "call": error.call, "grpc_code": error.code,
                "details": error.details, "deadline_s": self._config.deadline_s}  # fmt: skip
        return self._event(now_ms, event_type, "error", data)
