"""``ReadFromPrometheus``: scrape Prometheus endpoints -> points, events, dead letters and health.

>>> outputs = pipeline | ReadFromPrometheus(config)          # doctest: +SKIP
>>> outputs["points"], outputs["events"], outputs["dead_letters"], outputs["health"]  # doctest: +SKIP

Bounded (``poll.interval_s`` unset): one scrape per target, which gives
gauges, summaries and histogram quantiles over the whole history; counter
rates and recent-window quantiles need a second scrape, so poll repeatedly
(``interval_s`` with ``start``/``stop``) to get them.
"""

from __future__ import annotations

import functools

import apache_beam as beam

from sources.polling import ReadFromPoller
from sources.prometheus.config import PrometheusConfig
from sources.prometheus.poller import PrometheusPoller

__all__ = ["ReadFromPrometheus"]


class ReadFromPrometheus(beam.PTransform):
    """The configured targets as a source: the dict of :mod:`airis_mon.streams` outputs."""

    def __init__(self, config: PrometheusConfig, bounded: bool = False):
        super().__init__()
        self._read = ReadFromPoller(config.name, functools.partial(PrometheusPoller, config), config.poll, bounded)

    def expand(self, pbegin):
        return pbegin | "Poll" >> self._read
