"""Config of the ``vertex`` source: Vertex AI online prediction metrics from Cloud Monitoring.

::

    integrations:
      - name: vertex-prod
        type: vertex
        project: my-project                    # GCP project id (or number)
        location: us-central1                  # Vertex AI region of the endpoints
        monitoring_endpoint: null              # host:port of a plaintext gRPC peer (tests); null: Google's
        aiplatform_endpoint: null              # http://host:port of a REST peer (tests); null: Google's
        endpoint_ids: null                     # only these endpoints; null: every endpoint of the location
        period_s: 60                           # alignment period of the time series, s
        lag_s: 360                             # Vertex metrics can stay invisible this long, s
        page_size: 1000                        # time series per ListTimeSeries page
        request_timeout_s: 30                  # per API call, s
        environment: prod                      # tag on every metric
        state_file: ./state/vertex-prod.json   # end of the last polled window (relative to the config)
        poll: {interval_s: 60, start: "2026-11-28T00:00:00Z", stop: "2026-11-29T00:00:00Z"}

Units: ``period_s``, ``lag_s`` and ``request_timeout_s`` in seconds. Emitted
metrics: ``prediction_count`` and ``prediction_error_count`` (``count`` per
period), ``prediction_latency`` (``ms``, one point per ``quantile`` tag
``p50``/``p95``/``p99``), ``replica_count`` (``count``, mean over the period).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from airis_mon.models import ComponentConfig, ConfigPath
from sources.polling import PollSettings

__all__ = ["VertexConfig"]


class VertexConfig(ComponentConfig):
    """Vertex AI endpoints: prediction counts, errors, latency quantiles and replicas."""

    type: Literal["vertex"] = "vertex"
    project: str = Field(min_length=1, description="GCP project id or number")
    location: str = Field(min_length=1, description="Vertex AI region, e.g. us-central1")
    monitoring_endpoint: str | None = Field(
        default=None, description="host:port of a plaintext Cloud Monitoring gRPC peer; None: Google's"
    )
    aiplatform_endpoint: str | None = Field(
        default=None, pattern=r"^https?://", description="http://host:port of a Vertex AI REST peer; None: Google's"
    )
    endpoint_ids: list[str] | None = Field(default=None, description="endpoint ids to watch; None: all of them")
    period_s: int = Field(default=60, ge=60, description="alignment period, s (Cloud Monitoring samples every 60 s)")
    lag_s: int = Field(default=360, ge=0, description="only periods that ended this long ago are read, s")
    page_size: int = Field(default=1000, ge=1, le=100_000, description="time series per ListTimeSeries page")
    request_timeout_s: float = Field(default=30.0, gt=0, le=600, description="timeout of one API call, s")
    environment: str = Field(default="", description="environment tag of every metric")
    state_file: ConfigPath | None = Field(
        default=None, description="JSON file keeping the end of the last polled window (written atomically)"
    )
    poll: PollSettings = Field(default_factory=PollSettings)
