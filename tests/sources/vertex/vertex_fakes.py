"""Loopback peers for the Vertex source: a gRPC Cloud Monitoring and a REST Vertex AI endpoint listing.

``MonitoringFake`` serves ``google.monitoring.v3.MetricService/ListTimeSeries``
(the official request/response messages) and honours the filter's
``metric.type`` and ``resource.labels.endpoint_id = one_of(...)``, the
interval (points whose end time lies in [start, end]) and
``page_size``/``page_token``. ``EndpointsFake`` answers
``GET /v1/projects/P/locations/L/endpoints`` with ``pageToken``/``nextPageToken``.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import grpc
from google.cloud import monitoring_v3

from tests.grpc_peer import GrpcPeer, serialize_message
from tests.sinks.receivers import LoopbackServer

__all__ = ["EndpointsFake", "MonitoringFake", "series"]


def series(metric_type: str, endpoint_id: str, deployed_model_id: str, points: list[tuple[int, dict]],
           metric_kind: str = "DELTA", **metric_labels: str) -> monitoring_v3.TimeSeries:  # fmt: skip
    """A TimeSeries of an aiplatform Endpoint; ``points`` are (end epoch s, TypedValue dict), newest first."""
    return monitoring_v3.TimeSeries(
        metric={"type": metric_type, "labels": {"deployed_model_id": deployed_model_id, **metric_labels}},
        resource={
            "type": "aiplatform.googleapis.com/Endpoint",
            "labels": {"resource_container": "p", "location": "us-central1", "endpoint_id": endpoint_id},
        },
        metric_kind=metric_kind,
        points=[
            {"interval": {"start_time": {"seconds": end - 60}, "end_time": {"seconds": end}}, "value": value}
            for end, value in points
        ],
    )


class MonitoringFake(GrpcPeer):
    """In-process gRPC ListTimeSeries on 127.0.0.1; ``abort`` makes every call fail with that status code."""

    def __init__(self):
        self.series: list[monitoring_v3.TimeSeries] = []
        self.requests: list[monitoring_v3.ListTimeSeriesRequest] = []
        self.abort: grpc.StatusCode | None = None
        super().__init__(
            "google.monitoring.v3.MetricService",
            {
                "ListTimeSeries": (self._list, monitoring_v3.ListTimeSeriesRequest.pb().FromString, serialize_message),
            },
        )
        self.start()

    def _list(self, request_pb, context):
        request = monitoring_v3.ListTimeSeriesRequest.wrap(request_pb)
        self.requests.append(request)
        if self.abort is not None:
            context.abort(self.abort, f"fake says {self.abort.name}")
        if not request.name.startswith("projects/"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name must be projects/P")
        metric_type = re.search(r'metric\.type\s*=\s*"([^"]+)"', request.filter)
        one_of = re.search(r"resource\.labels\.endpoint_id\s*=\s*one_of\(([^)]*)\)", request.filter)
        endpoints = set(re.findall(r'"([^"]+)"', one_of.group(1))) if one_of else None
        start = request_pb.interval.start_time.seconds or request_pb.interval.end_time.seconds
        end = request_pb.interval.end_time.seconds
        matching = []
        for ts in self.series:
            if metric_type and ts.metric.type != metric_type.group(1):
                continue
            if endpoints is not None and ts.resource.labels["endpoint_id"] not in endpoints:
                continue
            points = [p for p in ts.points if start <= int(p.interval.end_time.timestamp()) <= end]
            if points:
                matching.append(monitoring_v3.TimeSeries(metric=ts.metric, resource=ts.resource,
                                                         metric_kind=ts.metric_kind, points=points))  # fmt: skip
        offset = int(request.page_token or 0)
        size = request.page_size or 100_000
        page = matching[offset : offset + size]
        token = str(offset + size) if offset + size < len(matching) else ""
        return monitoring_v3.ListTimeSeriesResponse.pb()(
            time_series=[monitoring_v3.TimeSeries.pb(ts) for ts in page], next_page_token=token
        )


class EndpointsFake(LoopbackServer):
    """Loopback HTTP server answering the Vertex AI v1 endpoint listing, ``page_size`` endpoints per page."""

    def __init__(self, project: str, location: str, page_size: int = 1):
        self.endpoints: list[dict] = []
        self.paths: list[str] = []
        self.status = 200
        fake = self
        prefix = f"/v1/projects/{project}/locations/{location}/endpoints"

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                fake.paths.append(self.path)
                if fake.status != 200:
                    return self._reply(fake.status, {"error": {"code": fake.status, "message": "fake error"}})
                if url.path != prefix:
                    return self._reply(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
                offset = int(parse_qs(url.query).get("pageToken", ["0"])[0])
                body = {"endpoints": fake.endpoints[offset : offset + page_size]}
                if offset + page_size < len(fake.endpoints):
                    body["nextPageToken"] = str(offset + page_size)
                self._reply(200, body)

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)
        self.__enter__()

    def add(self, project: str, location: str, endpoint_id: str, name: str, models: dict[str, str]) -> None:
        self.endpoints.append(
            {
                "name": f"projects/{project}/locations/{location}/endpoints/{endpoint_id}",
                "displayName": name,
                "deployedModels": [
                    {"id": mid, "displayName": mname, "model": f"projects/{project}/locations/{location}/models/{mid}"}
                    for mid, mname in models.items()
                ],
            }
        )

    def stop(self) -> None:
        self.__exit__()
