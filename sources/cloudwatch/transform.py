"""``ReadFromCloudWatch``: SageMaker endpoint metrics from CloudWatch -> points, events, dead letters, health.

>>> outputs = pipeline | ReadFromCloudWatch(config)          # doctest: +SKIP
>>> outputs["points"], outputs["health"]                     # doctest: +SKIP

Bounded (``poll.interval_s`` unset): one poll when the pipeline runs; give
it a ``state_file`` so that consecutive runs continue where the previous
one ended. Unbounded: one poll every ``poll.interval_s`` seconds from
``poll.start`` to ``poll.stop``. What is emitted is described in
:mod:`sources.cloudwatch.poller`; a poll that fails (unreachable endpoint,
access denied) is an unhealthy health record, never a crashed run.
"""

from __future__ import annotations

import functools

import apache_beam as beam

from sources.cloudwatch.config import CloudWatchConfig
from sources.cloudwatch.poller import CloudWatchPoller
from sources.polling import ReadFromPoller

__all__ = ["ReadFromCloudWatch"]


class ReadFromCloudWatch(beam.PTransform):
    """Poll CloudWatch for the configured SageMaker endpoints; see the module docstring."""

    def __init__(self, config: CloudWatchConfig, bounded: bool = False):
        super().__init__()
        self._config = config
        self._read = ReadFromPoller(config.name, functools.partial(CloudWatchPoller, config), config.poll, bounded)

    def expand(self, pbegin):
        return pbegin | "Poll" >> self._read
