"""``ReadFromVertex``: Vertex AI endpoint metrics -> points, events, dead letters and health.

>>> outputs = pipeline | ReadFromVertex(config)          # doctest: +SKIP
>>> outputs["points"], outputs["events"], outputs["dead_letters"], outputs["health"]  # doctest: +SKIP

Bounded (``poll.interval_s`` unset): one poll when the pipeline runs; give it
a ``state_file`` so that consecutive runs read each period once. Unbounded:
one poll every ``poll.interval_s`` seconds from ``poll.start`` to
``poll.stop``. What is emitted is described in :mod:`sources.vertex.poller`;
a poll that fails (403, quota) is an unhealthy health record, never a crashed run.
"""

from __future__ import annotations

import functools

import apache_beam as beam

from sources.polling import ReadFromPoller
from sources.vertex.config import VertexConfig
from sources.vertex.poller import VertexPoller

__all__ = ["ReadFromVertex"]


class ReadFromVertex(beam.PTransform):
    """Poll the configured Vertex AI project/location; see the module docstring."""

    def __init__(self, config: VertexConfig, bounded: bool = False):
        super().__init__()
        self._config = config
        self._read = ReadFromPoller(config.name, functools.partial(VertexPoller, config), config.poll, bounded)

    def expand(self, pbegin):
        return pbegin | "Poll" >> self._read
