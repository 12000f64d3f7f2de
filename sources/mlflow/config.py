"""Config of the ``mlflow`` source: the MLflow model registry, polled for changes.

::

    integrations:
      - name: registry
        type: mlflow
        tracking_uri: http://mlflow.internal:5000   # the MLflow server (REST)
        registry_uri: null                          # default: tracking_uri
        models: [fraud, churn]                      # null (default): every registered model
        environment_by_stage:                       # stage or alias -> environment, copied into events
          Production: prod
          Staging: staging
          champion: prod
        state_file: ./state/mlflow-registry.json    # relative to the config file; see below
        page_size: 100                              # max_results of each search call
        request_timeout_s: 30                       # one HTTP request, s
        http_max_retries: 0                         # MLflow's own HTTP retries (poll.retry retries polls)
        username: null                              # basic auth (MLflow auth app), with password
        password: {env: MLFLOW_TRACKING_PASSWORD}
        token: null                                 # or a Bearer token: {env: MLFLOW_TRACKING_TOKEN}
        poll: {interval_s: 60, start: "2026-11-29T00:00:00Z", stop: "2026-11-30T00:00:00Z"}

``state_file`` (optional) keeps the registry snapshot of the last successful
poll on disk, so that a restarted or re-run pipeline reports only what changed
since then instead of every version again.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from airis_mon.models import ComponentConfig, ConfigPath
from airis_mon.secrets import Secret
from sources.polling import PollSettings

__all__ = ["MlflowConfig"]


class MlflowConfig(ComponentConfig):
    """The MLflow model registry: versions, stages, aliases, tags and statuses."""

    type: Literal["mlflow"] = "mlflow"
    tracking_uri: str = Field(min_length=1, description="MLflow tracking server URI (http(s)://..., databricks)")
    registry_uri: str | None = Field(default=None, description="model registry URI; default: tracking_uri")
    models: list[str] | None = Field(default=None, description="registered model names; None: every model")
    environment_by_stage: dict[str, str] = Field(
        default_factory=dict, description="stage (or alias) -> environment name, added to events as 'environment'"
    )
    state_file: ConfigPath | None = Field(
        default=None, description="JSON file keeping the last snapshot across runs; relative to the config file"
    )
    page_size: int = Field(default=100, ge=1, le=1000, description="max_results of each search call")
    request_timeout_s: int = Field(default=30, ge=1, le=600, description="timeout of one HTTP request, s")
    http_max_retries: int = Field(default=0, ge=0, le=10, description="MLflow client's own retries per request")
    username: str | None = Field(default=None, description="basic auth user (with password)")
    password: Secret | None = None
    token: Secret | None = Field(default=None, description="Bearer token")
    poll: PollSettings = Field(default_factory=PollSettings)

    @field_validator("models")
    @classmethod
    def _unique_non_empty_names(cls, models: list[str] | None) -> list[str] | None:
        if models is None:
            return None
        if not models:
            raise ValueError("list at least one model, or leave models unset for every model")
        if any(not name.strip() for name in models):
            raise ValueError("model names must not be empty")
        if len(set(models)) != len(models):
            raise ValueError("model names must be unique")
        return models

    @model_validator(mode="after")
    def _auth_pairs(self) -> MlflowConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.token is not None and self.username is not None:
            raise ValueError("use either token or username/password, not both")
        return self

    def effective_registry_uri(self) -> str:
        """The registry URI in use: ``registry_uri``, else ``tracking_uri``."""
        return self.registry_uri or self.tracking_uri
