"""Vertex AI and Cloud Monitoring calls, and the translation of their errors (no Beam).

::

    client = VertexClient(project="p", location="us-central1", monitoring_endpoint="127.0.0.1:9000",
                          aiplatform_endpoint="http://127.0.0.1:9001")
    endpoints = client.list_endpoints()                       # [EndpointInfo], every page
    series = client.list_time_series(PREDICTION_COUNT, start_s, end_s, period_s=60)  # [SeriesInfo]

Test endpoints: ``monitoring_endpoint`` is a plaintext gRPC ``host:port``;
``aiplatform_endpoint`` an ``http://host:port`` REST peer (anonymous
credentials). Without them the clients use Google's endpoints and Application
Default Credentials. The clients' own retries are off: the polling framework
retries. Distribution values (``prediction_latencies``, ms) become quantiles
by :func:`distribution_quantile`: linear interpolation inside the bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from airis_mon.errors import PermanentError, TransientError

__all__ = [
    "ERROR_COUNT",
    "PREDICTION_COUNT",
    "PREDICTION_LATENCIES",
    "REPLICAS",
    "EndpointInfo",
    "PointInfo",
    "SeriesInfo",
    "VertexClient",
    "bucket_bounds",
    "distribution_quantile",
    "translate_error",
]

_PREFIX = "aiplatform.googleapis.com/prediction/online/"
PREDICTION_COUNT = _PREFIX + "prediction_count"
PREDICTION_LATENCIES = _PREFIX + "prediction_latencies"
ERROR_COUNT = _PREFIX + "error_count"
REPLICAS = _PREFIX + "replicas"
RESOURCE_TYPE = "aiplatform.googleapis.com/Endpoint"


@dataclass(frozen=True)
class EndpointInfo:
    endpoint_id: str
    display_name: str
    deployed_models: dict[str, str]  # deployed model id -> display name


@dataclass(frozen=True)
class PointInfo:
    end_s: int  # end of the point's interval, epoch s
    value: float | None  # int64/double points
    distribution: Any = None  # google.api.Distribution (proto-plus) for DISTRIBUTION points


@dataclass(frozen=True)
class SeriesInfo:
    metric_type: str
    labels: dict[str, str]  # resource labels, then metric labels (metric labels win)
    points: tuple[PointInfo, ...]


def translate_error(error: BaseException, action: str) -> TransientError | PermanentError:
    """A vendor exception as TransientError (may pass) or PermanentError (will not)."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    detail = f"{action}: {type(error).__name__}: {getattr(error, 'message', None) or error}"
    if isinstance(error, gexc.PermissionDenied | gexc.Unauthenticated | gexc.InvalidArgument | gexc.NotFound):
        return PermanentError(detail)
    transient = (
        gexc.ResourceExhausted,
        gexc.TooManyRequests,
        gexc.ServiceUnavailable,
        gexc.DeadlineExceeded,
        gexc.InternalServerError,
        gexc.Aborted,
        gexc.RetryError,
        auth_exc.TransportError,
        ConnectionError,
        TimeoutError,
    )
    if isinstance(error, transient):
        return TransientError(detail)
    if isinstance(error, gexc.GoogleAPICallError):
        code = getattr(error, "code", None)
        return TransientError(detail) if isinstance(code, int) and code >= 500 else PermanentError(detail)
    try:
        import requests

        if isinstance(error, requests.ConnectionError | requests.Timeout):
            return TransientError(detail)
    except ImportError:  # pragma: no cover - requests ships with google-auth
        pass
    return PermanentError(detail)


def bucket_bounds(options: Any, index: int) -> tuple[float, float]:
    """[lower, upper) of bucket ``index`` of a Distribution's bucket_options (underflow/overflow are infinite)."""
    if "explicit_buckets" in options:
        bounds = list(options.explicit_buckets.bounds)
        lower = bounds[min(index, len(bounds)) - 1] if index > 0 and bounds else -math.inf
        upper = bounds[index] if index < len(bounds) else math.inf
        return lower, upper
    if "exponential_buckets" in options:
        exp = options.exponential_buckets
        n, g, s = exp.num_finite_buckets, exp.growth_factor, exp.scale
        lower = -math.inf if index == 0 else s * g ** (index - 1)
        upper = math.inf if index > n else s * g**index
        return lower, upper
    if "linear_buckets" in options:
        lin = options.linear_buckets
        n, w, o = lin.num_finite_buckets, lin.width, lin.offset
        lower = -math.inf if index == 0 else o + w * (index - 1)
        upper = math.inf if index > n else o + w * index
        return lower, upper
    raise PermanentError("distribution without bucket_options")


def distribution_quantile(distribution: Any, q: float) -> float | None:
    """The ``q`` quantile (0..1) of a Cloud Monitoring Distribution, or None when it is empty.

    Linear interpolation inside the bucket holding rank ``q * count``; an
    underflow bucket's lower edge is 0 (latencies are not negative), an
    overflow bucket yields its lower edge. The distribution's ``range``, when
    set, clamps the result.
    """
    counts = [int(c) for c in distribution.bucket_counts]
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0
    for index, count in enumerate(counts):
        if count == 0 or cumulative + count < rank:
            cumulative += count
            continue
        lower, upper = bucket_bounds(distribution.bucket_options, index)
        if math.isinf(upper):
            value = lower if not math.isinf(lower) else 0.0
        else:
            if math.isinf(lower):
                lower = min(0.0, upper)
            value = lower + (upper - lower) * (rank - cumulative) / count
        break
    else:  # pragma: no cover - rank <= total always lands in a bucket
        return None
    if "range" in distribution and distribution.range.max > distribution.range.min:
        value = min(max(value, distribution.range.min), distribution.range.max)
    return value


def _point(point: Any) -> PointInfo:
    value = point.value
    end_s = int(point.interval.end_time.timestamp())
    if "distribution_value" in value:
        return PointInfo(end_s, None, value.distribution_value)
    if "int64_value" in value:
        return PointInfo(end_s, float(value.int64_value))
    if "double_value" in value:
        return PointInfo(end_s, float(value.double_value))
    if "bool_value" in value:
        return PointInfo(end_s, 1.0 if value.bool_value else 0.0)
    return PointInfo(end_s, None)


class VertexClient:
    """Endpoints from the Vertex AI API and their time series from Cloud Monitoring."""

    def __init__(self, project: str, location: str, monitoring_endpoint: str | None = None,
                 aiplatform_endpoint: str | None = None, page_size: int = 1000, timeout_s: float = 30.0):  # fmt: skip
        self.project = project
        self.location = location
        self.page_size = page_size
        self.timeout_s = timeout_s
        self._monitoring_endpoint = monitoring_endpoint
        self._aiplatform_endpoint = aiplatform_endpoint
        self._channel = None
        self._metrics: Any = None
        self._endpoints: Any = None

    def _connect(self) -> None:
        if self._metrics is not None:
            return
        from google.api_core.client_options import ClientOptions
        from google.cloud import aiplatform_v1, monitoring_v3

        try:
            if self._monitoring_endpoint:
                import grpc
                from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

                self._channel = grpc.insecure_channel(self._monitoring_endpoint)
                metrics = monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=self._channel))
            else:
                metrics = monitoring_v3.MetricServiceClient()
            if self._aiplatform_endpoint:
                from google.auth.credentials import AnonymousCredentials

                endpoints = aiplatform_v1.EndpointServiceClient(
                    transport="rest",
                    credentials=AnonymousCredentials(),
                    client_options=ClientOptions(api_endpoint=self._aiplatform_endpoint),
                )
            else:
                api = f"{self.location}-aiplatform.googleapis.com"
                endpoints = aiplatform_v1.EndpointServiceClient(client_options=ClientOptions(api_endpoint=api))
        except Exception as error:  # DefaultCredentialsError and friends: no credentials on this worker
            self.close()
            raise translate_error(error, "creating the Google clients") from None
        self._metrics, self._endpoints = metrics, endpoints

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = self._metrics = self._endpoints = None

    def list_endpoints(self) -> list[EndpointInfo]:
        """Every endpoint of the location with its deployed models (all pages)."""
        self._connect()
        parent = f"projects/{self.project}/locations/{self.location}"
        try:
            pager = self._endpoints.list_endpoints(request={"parent": parent}, retry=None, timeout=self.timeout_s)
            found = []
            for endpoint in pager:
                models = {m.id: m.display_name for m in endpoint.deployed_models}
                found.append(EndpointInfo(endpoint.name.rsplit("/", 1)[-1], endpoint.display_name, models))
            return found
        except Exception as error:
            raise translate_error(error, f"listing endpoints of {parent}") from None

    def list_time_series(self, metric_type: str, start_s: int, end_s: int, period_s: int,
                         endpoint_ids: list[str] | None = None) -> list[SeriesInfo]:  # fmt: skip
        """The series of ``metric_type`` aligned to ``period_s`` between ``start_s`` and ``end_s`` (all pages)."""
        self._connect()
        from google.cloud import monitoring_v3

        flt = f'metric.type = "{metric_type}" AND resource.type = "{RESOURCE_TYPE}"'
        flt += f' AND resource.labels.location = "{self.location}"'
        if endpoint_ids:
            flt += " AND resource.labels.endpoint_id = one_of({})".format(",".join(f'"{e}"' for e in endpoint_ids))
        aligner = monitoring_v3.Aggregation.Aligner
        request = monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{self.project}",
            filter=flt,
            interval=monitoring_v3.TimeInterval(start_time={"seconds": start_s}, end_time={"seconds": end_s}),
            aggregation=monitoring_v3.Aggregation(
                alignment_period={"seconds": period_s},
                per_series_aligner=aligner.ALIGN_MEAN if metric_type == REPLICAS else aligner.ALIGN_DELTA,
            ),
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
            page_size=self.page_size,
        )
        try:
            found = []
            for series in self._metrics.list_time_series(request=request, retry=None, timeout=self.timeout_s):
                labels = {**dict(series.resource.labels), **dict(series.metric.labels)}
                points = tuple(_point(p) for p in series.points)
                found.append(SeriesInfo(series.metric.type or metric_type, labels, points))
            return found
        except Exception as error:
            raise translate_error(error, f"listing {metric_type.rsplit('/', 1)[-1]} time series") from None
