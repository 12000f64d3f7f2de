"""Config of the ``tfserving`` source: TensorFlow Serving over gRPC (+ its Prometheus endpoint).

::

    integrations:
      - name: tf-serving-prod
        type: tfserving
        target: tf-serving.ml.svc:8500          # gRPC host:port (plaintext)
        environment: prod                       # tag of every point and event
        deadline_s: 5                           # per gRPC call, s
        prometheus_url: http://tf-serving.ml.svc:8501/monitoring/prometheus/metrics   # optional
        models:
          - name: fraud                         # status of every version, Predict probe on the latest
            probe_input:
              x: {dtype: DT_FLOAT, shape: [1, 4], values: [0.1, 0.2, 0.3, 0.4]}
          - name: churn
            version: 7                          # one version (status and probe); null: all / latest
            signature_name: serving_default
        poll: {interval_s: 60, start: "2026-11-28T00:00:00Z", stop: "2026-11-29T00:00:00Z"}

``probe_input`` maps each input of the signature to a tensor: a TensorFlow
``dtype`` name, a ``shape`` and the flat row-major ``values`` (as many as the
shape holds, or one value repeated).
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from airis_mon.models import ComponentConfig, StrictModel
from sources.polling import PollSettings
from sources.prometheus.config import check_scrape_url

__all__ = ["ProbeTensor", "TFServingConfig", "TFServingModel"]

#: DataType names a probe tensor may use, and the TensorProto field its values go to.
PROBE_DTYPES: dict[str, str] = {
    "DT_FLOAT": "float_val",
    "DT_DOUBLE": "double_val",
    "DT_INT8": "int_val",
    "DT_INT16": "int_val",
    "DT_INT32": "int_val",
    "DT_UINT8": "int_val",
    "DT_UINT16": "int_val",
    "DT_INT64": "int64_val",
    "DT_UINT32": "uint32_val",
    "DT_UINT64": "uint64_val",
    "DT_BOOL": "bool_val",
    "DT_STRING": "string_val",
}

_HOST_PORT = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")


class ProbeTensor(StrictModel):
    """One input tensor of the Predict probe."""

    dtype: Literal[tuple(PROBE_DTYPES)]  # type: ignore[valid-type]
    shape: list[int] = Field(description="dimension sizes, e.g. [1, 4]")
    values: list[bool | int | float | str] = Field(min_length=1, description="flat row-major values")

    @model_validator(mode="after")
    def _values_fit(self) -> ProbeTensor:
        if any(size < 0 for size in self.shape):
            raise ValueError("shape sizes must be >= 0")
        size = math.prod(self.shape)
        if len(self.values) not in (1, size):
            raise ValueError(f"shape {self.shape} holds {size} values; give {size} or 1, not {len(self.values)}")
        numeric = self.dtype not in ("DT_STRING", "DT_BOOL")
        if numeric and any(isinstance(v, (str, bool)) for v in self.values):
            raise ValueError(f"{self.dtype} values must be numbers")
        if self.dtype.startswith(("DT_INT", "DT_UINT")) and any(isinstance(v, float) for v in self.values):
            raise ValueError(f"{self.dtype} values must be integers")
        if self.dtype == "DT_STRING" and not all(isinstance(v, str) for v in self.values):
            raise ValueError("DT_STRING values must be strings")
        if self.dtype == "DT_BOOL" and not all(isinstance(v, bool) for v in self.values):
            raise ValueError("DT_BOOL values must be true or false")
        return self


class TFServingModel(StrictModel):
    """One served model to watch."""

    name: str = Field(min_length=1)
    version: int | None = Field(default=None, ge=0, description="one version; null: every version, latest probed")
    signature_name: str = "serving_default"
    probe_input: dict[str, ProbeTensor] | None = Field(default=None, description="inputs of a timed Predict probe")


class TFServingConfig(ComponentConfig):
    """TensorFlow Serving: model version states, a timed Predict probe, and its Prometheus metrics."""

    type: Literal["tfserving"] = "tfserving"
    target: str = Field(description="gRPC host:port of the model server")
    models: list[TFServingModel] = Field(min_length=1)
    prometheus_url: str | None = Field(default=None, description="http(s) URL of /monitoring/prometheus/metrics")
    deadline_s: float = Field(default=5.0, gt=0, le=300, description="deadline of each gRPC call and scrape, s")
    environment: str = Field(default="", description="`environment` tag of every point and event")
    poll: PollSettings = Field(default_factory=PollSettings)

    @field_validator("target")
    @classmethod
    def _host_port(cls, target: str) -> str:
        if not _HOST_PORT.match(target) or not 0 < int(target.rsplit(":", 1)[1]) < 65536:
            raise ValueError("must be host:port, e.g. tf-serving:8500")
        return target

    @field_validator("prometheus_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        return None if url is None else check_scrape_url(url)

    @field_validator("models")
    @classmethod
    def _unique(cls, models: list[TFServingModel]) -> list[TFServingModel]:
        keys = [(m.name, m.version) for m in models]
        if len(keys) != len(set(keys)):
            raise ValueError("each (name, version) may appear once")
        return models
