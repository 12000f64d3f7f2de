"""The Vertex AI poller: complete, lagged periods of endpoint metrics, each read once.

At a poll at ``now`` the window ends at the last multiple of ``period_s``
that is at least ``lag_s`` old (Vertex metrics can be invisible for up to
360 s) and starts where the previous poll's window ended (first poll: one
period; a long gap is capped at :data:`MAX_CATCHUP_S`). A point belongs to the
window when its end time is in ``(start, end]``, so consecutive polls never
count a point twice. With ``state_file`` the window end is kept in that JSON
file (written atomically: temp file, fsync, rename), so the next bounded run
or another worker continues where this one stopped.

Emitted (one metrics payload per endpoint and point time, source
``gcp_vertex_ai``; tags ``endpoint_id``, ``deployed_model_id``,
``environment``, plus ``endpoint_name``/``model_name`` when the endpoint
listing knows them and the metric's ``latency_type``):

=========================  =======  =================================================
metric                     unit     from
=========================  =======  =================================================
``prediction_count``       count    ``prediction/online/prediction_count`` (per period)
``prediction_error_count`` count    ``prediction/online/error_count`` (per period)
``prediction_latency``     ms       ``prediction/online/prediction_latencies``, tag
                                    ``quantile`` = p50 / p95 / p99
``replica_count``          count    ``prediction/online/replicas`` (mean)
=========================  =======  =================================================
"""

from __future__ import annotations

from collections import defaultdict

from airis_mon.errors import PermanentError
from sources.client_poller import ClientPoller
from sources.state_file import read_state, write_state
from sources.vertex.client import (
    ERROR_COUNT,
    PREDICTION_COUNT,
    PREDICTION_LATENCIES,
    REPLICAS,
    VertexClient,
    distribution_quantile,
)
from sources.vertex.config import VertexConfig

__all__ = ["MAX_CATCHUP_S", "SOURCE", "VertexPoller", "load_next_start", "poll_window", "save_next_start"]

SOURCE = "gcp_vertex_ai"
MAX_CATCHUP_S = 86_400  # a poller that was away longer resumes one day back (Cloud Monitoring keeps 6 weeks)
QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
_SCALARS = {PREDICTION_COUNT: "prediction_count", ERROR_COUNT: "prediction_error_count", REPLICAS: "replica_count"}
_STATE_FILE_VERSION = 1


def poll_window(now_ms: int, period_s: int, lag_s: int, next_start_s: int | None) -> tuple[int, int]:
    """(start, end] in epoch s: complete periods older than ``lag_s`` not read yet (empty when start >= end)."""
    end = (now_ms // 1000 - lag_s) // period_s * period_s
    start = end - period_s if next_start_s is None else next_start_s
    return max(start, end - MAX_CATCHUP_S), end


def load_next_start(path: str) -> int | None:
    """The end of the last polled window from ``path``; None when the file does not exist yet."""
    document = read_state(path, "vertex", _STATE_FILE_VERSION)
    if document is None:
        return None
    value = document.get("next_start_s")
    if not isinstance(value, int):
        raise PermanentError(f"state file {path}: next_start_s must be an integer")
    return value


def save_next_start(path: str, next_start_s: int) -> None:
    """Record where the next poll starts (atomically)."""
    write_state(path, {"next_start_s": next_start_s}, _STATE_FILE_VERSION)


class VertexPoller(ClientPoller):
    """Polls one project/location; build it with ``functools.partial(VertexPoller, config)``."""

    def __init__(self, config: VertexConfig):
        self.config = config
        self._next_start_s: int | None = None

    def make_client(self) -> VertexClient:
        c = self.config
        return VertexClient(
            c.project, c.location, c.monitoring_endpoint, c.aiplatform_endpoint, c.page_size, c.request_timeout_s
        )

    def poll(self, now_ms: int) -> list[dict]:
        config, client = self.config, self.client
        next_start = load_next_start(config.state_file) if config.state_file else self._next_start_s
        start, end = poll_window(now_ms, config.period_s, config.lag_s, next_start)
        if start >= end:
            return []
        endpoints = {e.endpoint_id: e for e in client.list_endpoints()}
        wanted = list(config.endpoint_ids) if config.endpoint_ids is not None else sorted(endpoints)
        metrics: dict[tuple[str, int], list[dict]] = defaultdict(list)
        if wanted:
            for metric_type in (PREDICTION_COUNT, ERROR_COUNT, PREDICTION_LATENCIES, REPLICAS):
                for series in client.list_time_series(metric_type, start, end, config.period_s, wanted):
                    endpoint_id = series.labels.get("endpoint_id", "")
                    if endpoint_id not in wanted:
                        continue
                    tags = self._tags(series.labels, endpoints.get(endpoint_id))
                    for point in series.points:
                        if not start < point.end_s <= end:
                            continue
                        metrics[(endpoint_id, point.end_s * 1000)].extend(self._metrics(metric_type, point, tags))
        if config.state_file:
            save_next_start(config.state_file, end)
        self._next_start_s = end
        return [{"timestamp": ts, "source": SOURCE, "metrics": ms} for (_, ts), ms in sorted(metrics.items()) if ms]

    def _tags(self, labels: dict[str, str], endpoint) -> dict[str, str]:
        deployed = labels.get("deployed_model_id", "")
        tags = {"endpoint_id": labels.get("endpoint_id", ""), "deployed_model_id": deployed}
        tags["environment"] = self.config.environment
        if endpoint is not None:
            tags["endpoint_name"] = endpoint.display_name
            if endpoint.deployed_models.get(deployed):
                tags["model_name"] = endpoint.deployed_models[deployed]
        if labels.get("latency_type"):
            tags["latency_type"] = labels["latency_type"]
        return tags

    @staticmethod
    def _metrics(metric_type: str, point, tags: dict[str, str]) -> list[dict]:
        if metric_type == PREDICTION_LATENCIES:
            if point.distribution is None:
                return []
            found = []
            for label, q in QUANTILES:
                value = distribution_quantile(point.distribution, q)
                if value is not None:
                    found.append(
                        {
                            "name": "prediction_latency",
                            "value": value,
                            "unit": "ms",
                            "tags": {**tags, "quantile": label},
                        }
                    )
            return found
        if point.value is None:
            return []
        return [{"name": _SCALARS[metric_type], "value": point.value, "unit": "count", "tags": dict(tags)}]
