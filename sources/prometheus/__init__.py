"""Scrape Prometheus exposition of model servers (TorchServe, Triton/KServe, vLLM,
TensorFlow Serving, anything that exports it): counters as rates, histograms as
quantiles, gauges and summaries as they are.

The parsing and conversion (:mod:`sources.prometheus.exposition`) and the
HTTP scrape (:mod:`sources.prometheus.client`) are reused by other sources
(``tfserving``).
"""

from airis_mon.lazy import lazy_exports

# Loaded on first use: importing the config does not import the client library (the extra).
__getattr__, __all__ = lazy_exports(
    __name__, {"PrometheusConfig": "config", "PrometheusTarget": "config", "ReadFromPrometheus": "transform"}
)
