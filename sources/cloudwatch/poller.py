"""The ``cloudwatch`` poller: SageMaker endpoint metrics from CloudWatch -> metrics payloads (no Beam).

Each poll fetches the window :func:`~sources.cloudwatch.planner.plan_window`
plans: whole ``period_s`` periods that ended at least ``lag_s`` ago,
starting where the previous poll ended, so no datapoint is read twice (the
end is kept in memory, or in ``state_file`` across pipeline runs; the first
poll reads one period). It emits one payload per datapoint timestamp and
endpoint, source ``aws_sagemaker``::

    {"timestamp": 1764460800, "source": "aws_sagemaker", "metrics": [
        {"name": "ModelLatency", "value": 1520.0, "unit": "Microseconds",
         "tags": {"EndpointName": "churn", "VariantName": "AllTraffic", "Statistic": "Average",
                  "environment": "prod"}}, ...]}

``ModelLatency`` and ``OverheadLatency`` are in ``Microseconds``, every
other metric is a ``Count``; each statistic is its own series through the
``Statistic`` tag. Datapoints that land later than ``lag_s`` are missed:
raise ``lag_s`` rather than lowering it.
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa

from airis_mon.errors import PermanentError
from sources.client_poller import ClientPoller
from sources.cloudwatch.client import CloudWatchClient, MetricQuery
from sources.cloudwatch.config import CloudWatchConfig
from sources.cloudwatch.planner import plan_window
from sources.cloudwatch.points import SOURCE, points_table, series_tags, unit_of
from sources.state_file import read_state, write_state

__all__ = ["CloudWatchPoller", "load_last_end", "save_last_end"]

_STATE_FILE_VERSION = 1


def load_last_end(path: str) -> int | None:
    """Where the previous poll ended (epoch s); None when ``path`` does not exist yet."""
    document = read_state(path, "cloudwatch", _STATE_FILE_VERSION)
    if document is None:
        return None
    try:
        return int(document["last_end_s"])
    except (KeyError, TypeError, ValueError):
        raise PermanentError(f"state file {path} has no last_end_s; delete it to start over") from None


def save_last_end(path: str, last_end_s: int) -> None:
    """Record where this poll ended (atomically)."""
    write_state(path, {"last_end_s": last_end_s}, _STATE_FILE_VERSION)


class CloudWatchPoller(ClientPoller):
    """Polls CloudWatch for SageMaker endpoint metrics; see the module docstring. ``CloudWatchPoller(config)``
    is the factory :class:`sources.polling.ReadFromPoller` needs (pickle it with ``functools.partial``)."""

    def __init__(self, config: CloudWatchConfig, client: CloudWatchClient | None = None):
        self._config = config
        self._client = client  # built by setup() unless given
        self._last_end_s: int | None = None  # without a state file

    def make_client(self) -> CloudWatchClient:
        config = self._config
        key = config.access_key_id.get_secret_value() if config.access_key_id is not None else None
        secret = config.secret_access_key.get_secret_value() if config.secret_access_key is not None else None
        return CloudWatchClient(config.region, config.endpoint_url, key, secret)

    def poll(self, now_ms: int) -> list[dict]:
        config = self._config
        last_end = load_last_end(config.state_file) if config.state_file else self._last_end_s
        window = plan_window(last_end, now_ms // 1000, config.period_s, config.lag_s)
        if window is None:
            return []
        start_s, end_s = window
        payloads = self.fetch(self.queries(), start_s, end_s, config.period_s)
        if config.state_file:
            save_last_end(config.state_file, end_s)
        else:
            self._last_end_s = end_s
        return payloads

    def queries(self) -> list[MetricQuery]:
        """One query per (endpoint, metric, statistic); endpoints discovered when not configured."""
        config = self._config
        endpoints = config.endpoint_names if config.endpoint_names is not None else self.client.in_service_endpoints()
        return [
            MetricQuery(endpoint, config.variant_name, metric, statistic)
            for endpoint in endpoints
            for metric in config.metrics
            for statistic in config.statistics
        ]

    def fetch(self, queries: list[MetricQuery], start_s: int, end_s: int, period_s: int) -> list[dict]:
        """Metrics payloads of ``queries`` for [start_s, end_s) at ``period_s`` (live polls and backfills)."""
        data = self.client.metric_data(queries, start_s, end_s, period_s) if queries else {}
        return self._payloads(data)

    def fetch_table(self, queries: list[MetricQuery], start_s: int, end_s: int, period_s: int) -> pa.Table:
        """The same datapoints as :meth:`fetch`, as one raw-point Arrow table (backfills)."""
        results = self.client.metric_results(queries, start_s, end_s, period_s) if queries else ()
        return points_table(results, self._config.environment)

    def _payloads(self, data: dict[MetricQuery, list[tuple[int, float]]]) -> list[dict]:
        grouped: dict[tuple[int, str], list[dict]] = defaultdict(list)
        for query, points in data.items():
            tags = series_tags(query, self._config.environment)
            for at, value in points:
                metric = {"name": query.metric, "value": value, "unit": unit_of(query.metric), "tags": tags}
                grouped[(at, query.endpoint)].append(metric)
        return [{"timestamp": at, "source": SOURCE, "metrics": metrics} for (at, _), metrics in sorted(grouped.items())]
