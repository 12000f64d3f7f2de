"""GCP Vertex AI online prediction endpoints (``type: vertex``): prediction counts, errors,
latency quantiles and replicas from Cloud Monitoring, endpoints from the Vertex AI API."""

from airis_mon.lazy import lazy_exports

# Loaded on first use: importing the config does not import the client library (the extra).
__getattr__, __all__ = lazy_exports(__name__, {"VertexConfig": "config", "ReadFromVertex": "transform"})
