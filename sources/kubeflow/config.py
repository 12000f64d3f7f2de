"""Config of the ``kubeflow`` source: Kubeflow Pipelines runs, polled over the v2beta1 API.

::

    integrations:
      - name: kfp-prod
        type: kubeflow
        host: https://kubeflow.example.com/pipeline   # KFP API URL (what kfp.Client(host=...) takes)
        namespace: team-ml                  # multi-user deployments; null: single-user / every namespace allowed
        experiment_id: null                 # only the runs of one experiment; null: all runs
        token: {env: KFP_TOKEN}             # optional Bearer token (e.g. a service-account token)
        page_size: 100                      # runs per list call
        lookback_s: 86400                   # runs created in the last day are watched, s
        request_timeout_s: 30               # per HTTP request, s
        environment: prod                   # tag on every metric and event
        state_file: ./state/kfp-prod.json   # run states between runs of the pipeline (relative to the config)
        poll: {interval_s: 60, start: "2026-11-28T00:00:00Z", stop: "2026-11-29T00:00:00Z"}

Units: ``lookback_s`` and ``request_timeout_s`` in seconds; the emitted
``pipeline_duration`` and ``step_duration`` in seconds (``s``),
``success_rate`` as a ``ratio`` (0..1), ``run_count`` as a ``count``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from airis_mon.models import ComponentConfig, ConfigPath
from airis_mon.secrets import Secret
from sources.polling import PollSettings

__all__ = ["KubeflowConfig"]


class KubeflowConfig(ComponentConfig):
    """Kubeflow Pipelines runs: durations, step durations, success rates and state changes."""

    type: Literal["kubeflow"] = "kubeflow"
    host: str = Field(min_length=1, description="KFP API URL, e.g. http://ml-pipeline-ui.kubeflow:80")
    namespace: str | None = Field(default=None, description="Kubernetes namespace (multi-user KFP); None: all")
    experiment_id: str | None = Field(default=None, description="only this experiment's runs; None: every run")
    token: Secret | None = Field(default=None, description="Bearer token sent as Authorization (optional)")
    page_size: int = Field(default=100, ge=1, le=1000, description="runs per list_runs page")
    lookback_s: int = Field(default=86_400, ge=60, description="watch runs created this recently, s")
    request_timeout_s: float = Field(default=30.0, gt=0, le=600, description="timeout of one HTTP request, s")
    environment: str = Field(default="", description="environment tag of every metric and event")
    state_file: ConfigPath | None = Field(
        default=None, description="JSON file keeping run states between pipeline runs (written atomically)"
    )
    poll: PollSettings = Field(default_factory=PollSettings)
