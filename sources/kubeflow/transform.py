"""``ReadFromKubeflow``: Kubeflow Pipelines runs -> points, events, dead letters and health.

>>> outputs = pipeline | ReadFromKubeflow(config)          # doctest: +SKIP
>>> outputs["points"], outputs["events"], outputs["dead_letters"], outputs["health"]  # doctest: +SKIP

Bounded (``poll.interval_s`` unset): one poll when the pipeline runs; give it a
``state_file`` so that consecutive runs report each finished run and each
state change once. Unbounded: one poll every ``poll.interval_s`` seconds from
``poll.start`` to ``poll.stop``. What is emitted is described in
:mod:`sources.kubeflow.poller`; a poll that fails (server down, 403) is an
unhealthy health record, never a crashed run.
"""

from __future__ import annotations

import functools

import apache_beam as beam

from sources.kubeflow.config import KubeflowConfig
from sources.kubeflow.poller import KubeflowPoller
from sources.polling import ReadFromPoller

__all__ = ["ReadFromKubeflow"]


class ReadFromKubeflow(beam.PTransform):
    """Poll the configured KFP deployment; see the module docstring."""

    def __init__(self, config: KubeflowConfig, bounded: bool = False):
        super().__init__()
        self._config = config
        self._read = ReadFromPoller(config.name, functools.partial(KubeflowPoller, config), config.poll, bounded)

    def expand(self, pbegin):
        return pbegin | "Poll" >> self._read
