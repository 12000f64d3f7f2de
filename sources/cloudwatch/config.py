"""Config of the ``cloudwatch`` source: SageMaker endpoint metrics from CloudWatch (``AWS/SageMaker``).

::

    integrations:
      - name: sagemaker-prod
        type: cloudwatch
        region: eu-west-1
        endpoint_url: null                  # moto / VPC endpoint URL; null: AWS's public endpoint
        endpoint_names: null                # null: every InService SageMaker endpoint (list_endpoints)
        variant_name: AllTraffic
        metrics: [Invocations, Invocation4XXErrors, Invocation5XXErrors, ModelLatency, OverheadLatency]
        statistics: [Average, Sum, Minimum, Maximum, SampleCount]
        period_s: 60                        # CloudWatch period, s (60, 300, 3600, ...)
        lag_s: 600                          # 1-min data lands 10-12 min late: only fetch periods older than this, s
        environment: prod                   # tag on every metric
        access_key_id: {env: AWS_ACCESS_KEY_ID}          # optional; else boto3's default credential chain
        secret_access_key: {env: AWS_SECRET_ACCESS_KEY}
        state_file: ./state/sagemaker-prod.json          # where the last poll ended (relative to the config)
        poll: {interval_s: 60, start: "2026-11-28T00:00:00Z", stop: "2026-11-29T00:00:00Z"}

Units: ``period_s`` and ``lag_s`` in seconds. Emitted values keep CloudWatch's
units: ``ModelLatency``/``OverheadLatency`` in ``Microseconds``, the rest
``Count`` (the normalizer converts later).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from airis_mon.models import ComponentConfig, ConfigPath
from airis_mon.secrets import Secret
from sources.polling import PollSettings

__all__ = ["DEFAULT_METRICS", "DEFAULT_STATISTICS", "CloudWatchConfig"]

DEFAULT_METRICS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "OverheadLatency")
DEFAULT_STATISTICS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount")
Statistic = Literal["Average", "Sum", "Minimum", "Maximum", "SampleCount"]


class CloudWatchConfig(ComponentConfig):
    """SageMaker endpoint metrics (``AWS/SageMaker``) read with CloudWatch ``GetMetricData``."""

    type: Literal["cloudwatch"] = "cloudwatch"
    region: str = Field(min_length=1, description="AWS region, e.g. us-east-1")
    endpoint_url: str | None = Field(default=None, description="API endpoint override (moto, VPC endpoints)")
    endpoint_names: list[str] | None = Field(default=None, description="SageMaker endpoints; None: all InService")
    variant_name: str = Field(default="AllTraffic", min_length=1, description="VariantName dimension")
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    statistics: list[Statistic] = Field(default_factory=lambda: list(DEFAULT_STATISTICS), min_length=1)
    period_s: int = Field(default=60, ge=60, description="CloudWatch period, s (a multiple of 60)")
    lag_s: int = Field(default=600, ge=0, description="only fetch periods that ended at least this long ago, s")
    environment: str = Field(default="", description="environment tag of every metric")
    access_key_id: Secret | None = Field(default=None, description="with secret_access_key; None: default chain")
    secret_access_key: Secret | None = None
    state_file: ConfigPath | None = Field(
        default=None, description="JSON file keeping where the last poll ended (written atomically)"
    )
    poll: PollSettings = Field(default_factory=PollSettings)

    @model_validator(mode="after")
    def _check(self) -> CloudWatchConfig:
        if self.period_s % 60:
            raise ValueError("period_s must be a multiple of 60")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together")
        return self
