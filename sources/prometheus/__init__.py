"""Scrape Prometheus exposition of model servers (TorchServe, Triton/KServe, vLLM,
TensorFlow Serving, anything that exports it): counters as rates, histograms as
quantiles, gauges and summaries as they are.

The parsing and conversion (:mod:`sources.prometheus.exposition`) and the
HTTP scrape (:mod:`sources.prometheus.client`) are reused by other sources
(``tfserving``).
"""

from sources.prometheus.config import PrometheusConfig, PrometheusTarget
from sources.prometheus.transform import ReadFromPrometheus

__all__ = ["PrometheusConfig", "PrometheusTarget", "ReadFromPrometheus"]
