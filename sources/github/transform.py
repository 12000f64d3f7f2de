"""``ReadFromGithub``: GitHub Actions workflow runs and their jobs -> points, events, dead letters and health.

>>> outputs = pipeline | ReadFromGithub(config)             # doctest: +SKIP
>>> outputs["points"], outputs["events"], outputs["dead_letters"], outputs["health"]  # doctest: +SKIP

Bounded (``poll.interval_s`` unset): one poll when the pipeline runs; give it a
``state_file`` so that consecutive runs report each completed run once.
Unbounded: one poll every ``poll.interval_s`` seconds from ``poll.start`` to
``poll.stop``. What is emitted is described in :mod:`sources.github.poller`;
a poll that fails (server down, bad token, rate limit exhausted) is an
unhealthy health record, never a crashed run.
"""

from __future__ import annotations

import functools

import apache_beam as beam

from sources.github.config import GithubConfig
from sources.github.poller import GithubPoller
from sources.polling import ReadFromPoller

__all__ = ["ReadFromGithub"]


class ReadFromGithub(beam.PTransform):
    """Poll the configured repositories' workflow runs; see the module docstring."""

    def __init__(self, config: GithubConfig, bounded: bool = False):
        super().__init__()
        self._config = config
        self._read = ReadFromPoller(config.name, functools.partial(GithubPoller, config), config.poll, bounded)

    def expand(self, pbegin):
        return pbegin | "Poll" >> self._read
