"""boto3 calls of the ``cloudwatch`` source and their error mapping (no Beam).

- SageMaker ``list_endpoints`` (paginated, ``StatusEquals=InService``) finds
  the endpoints when none are configured;
- CloudWatch ``GetMetricData``: one query per (endpoint, metric, statistic),
  ids ``q0, q1, ...``, namespace ``AWS/SageMaker``, dimensions
  ``EndpointName`` + ``VariantName``; at most 500 queries per call, each
  call's ``NextToken`` followed until done, ``ScanBy=TimestampAscending``.

Errors: throttling, HTTP 429/5xx and connection failures raise
:class:`~airis_mon.errors.TransientError`; access denied, bad credentials,
validation errors and anything else raise :class:`~airis_mon.errors.PermanentError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import boto3
import botocore.exceptions
from botocore.config import Config

from airis_mon.errors import PermanentError, TransientError
from sources.cloudwatch.planner import MAX_QUERIES_PER_CALL

__all__ = ["NAMESPACE", "CloudWatchClient", "MetricQuery", "map_error"]

NAMESPACE = "AWS/SageMaker"
T = TypeVar("T")

_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServiceError",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


@dataclass(frozen=True)
class MetricQuery:
    """One CloudWatch series: an endpoint variant's metric under one statistic."""

    endpoint: str
    variant: str
    metric: str
    statistic: str


def map_error(error: Exception, what: str) -> Exception:
    """The AIRIS-MON error for a boto3/botocore failure of ``what``."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        message = str(error.response.get("Error", {}).get("Message", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"{what}: {code or 'error'} (HTTP {status}) {message}".strip()
        if code in _TRANSIENT_CODES or status == 429 or status >= 500:
            return TransientError(text)
        return PermanentError(text)
    if isinstance(error, _CONNECTION_ERRORS):
        return TransientError(f"{what}: {error}")
    return PermanentError(f"{what}: {type(error).__name__}: {error}")


def _call(what: str, function: Callable[[], T]) -> T:
    try:
        return function()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise map_error(error, what) from None


class CloudWatchClient:
    """CloudWatch + SageMaker clients of one region; see the module docstring."""

    def __init__(self, region: str, endpoint_url: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, timeout_s: float = 30.0, session=None):  # fmt: skip
        """``session``: a ``boto3.session.Session`` to build the clients from (default: a new one
        from the given region and keys); the backfill benchmark passes one that replays recorded responses."""
        session = session or boto3.session.Session(
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, region_name=region
        )
        # One attempt per call: the polling framework owns retries and backoff.
        config = Config(retries={"total_max_attempts": 1}, connect_timeout=timeout_s, read_timeout=timeout_s)
        self.cloudwatch = session.client("cloudwatch", endpoint_url=endpoint_url, config=config)
        self.sagemaker = session.client("sagemaker", endpoint_url=endpoint_url, config=config)

    def close(self) -> None:
        self.cloudwatch.close()
        self.sagemaker.close()

    def in_service_endpoints(self, page_size: int = 100) -> list[str]:
        """Names of every InService SageMaker endpoint, sorted (``page_size`` per list call, max 100)."""

        def list_all() -> list[str]:
            paginator = self.sagemaker.get_paginator("list_endpoints")
            pages = paginator.paginate(StatusEquals="InService", PaginationConfig={"PageSize": page_size})
            return sorted(e["EndpointName"] for page in pages for e in page.get("Endpoints", []))

        return _call("sagemaker list_endpoints", list_all)

    def metric_data(self, queries: list[MetricQuery], start_s: int, end_s: int,
                    period_s: int) -> dict[MetricQuery, list[tuple[int, float]]]:  # fmt: skip
        """(epoch s, value) datapoints of each query in [start_s, end_s), oldest first."""
        result: dict[MetricQuery, list[tuple[int, float]]] = {q: [] for q in queries}
        for query, timestamps, values in self.metric_results(queries, start_s, end_s, period_s):
            result[query].extend(
                (int(at.timestamp()), float(value)) for at, value in zip(timestamps, values, strict=True)
            )
        for points in result.values():
            points.sort()
        return result

    def metric_results(self, queries: list[MetricQuery], start_s: int, end_s: int,
                       period_s: int) -> Iterator[tuple[MetricQuery, list[datetime], list[float]]]:  # fmt: skip
        """``(query, Timestamps, Values)`` of every ``MetricDataResults`` entry, as boto3 returns them.

        One query's datapoints may span several entries (one per page); the
        lists are boto3's own (no copy), for callers that convert them in bulk.
        """
        for offset in range(0, len(queries), MAX_QUERIES_PER_CALL):
            batch = queries[offset : offset + MAX_QUERIES_PER_CALL]
            by_id = {f"q{offset + i}": query for i, query in enumerate(batch)}
            for entry in self._pages(by_id, start_s, end_s, period_s):
                query = by_id.get(entry.get("Id", ""))
                timestamps, values = entry.get("Timestamps", []), entry.get("Values", [])
                if query is None or not timestamps:
                    continue
                if len(timestamps) != len(values):
                    raise PermanentError(f"cloudwatch GetMetricData: {len(timestamps)} timestamps for "
                                         f"{len(values)} values in result {entry.get('Id')}")  # fmt: skip
                yield query, timestamps, values

    def _pages(self, by_id: dict[str, MetricQuery], start_s: int, end_s: int, period_s: int) -> Iterator[dict]:
        request: dict[str, Any] = {
            "MetricDataQueries": [
                {
                    "Id": query_id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": query.metric,
                            "Dimensions": [
                                {"Name": "EndpointName", "Value": query.endpoint},
                                {"Name": "VariantName", "Value": query.variant},
                            ],
                        },
                        "Period": period_s,
                        "Stat": query.statistic,
                    },
                    "ReturnData": True,
                }
                for query_id, query in by_id.items()
            ],
            "StartTime": datetime.fromtimestamp(start_s, UTC),
            "EndTime": datetime.fromtimestamp(end_s, UTC),
            "ScanBy": "TimestampAscending",
        }
        while True:
            response = _call("cloudwatch GetMetricData", lambda: self.cloudwatch.get_metric_data(**request))
            yield from response.get("MetricDataResults", [])
            token = response.get("NextToken")
            if not token:
                return
            request["NextToken"] = token
