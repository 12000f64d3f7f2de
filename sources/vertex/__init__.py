"""GCP Vertex AI online prediction endpoints (``type: vertex``): prediction counts, errors,
latency quantiles and replicas from Cloud Monitoring, endpoints from the Vertex AI API."""

from sources.vertex.config import VertexConfig
from sources.vertex.transform import ReadFromVertex

__all__ = ["ReadFromVertex", "VertexConfig"]
