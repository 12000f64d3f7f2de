"""``ReadFromTFServing``: TensorFlow Serving -> points, events, dead letters and health.

>>> outputs = pipeline | ReadFromTFServing(config)          # doctest: +SKIP
>>> outputs["points"], outputs["events"], outputs["dead_letters"], outputs["health"]  # doctest: +SKIP

What a poll yields is described in :mod:`sources.tfserving.poller`. The
``tensorflow-serving-api`` extra must be installed where the pipeline runs:
it is checked when the transform is built, and the stubs are imported once
per worker process, in the poller's ``setup()``.
"""

from __future__ import annotations

import functools
import importlib.util

import apache_beam as beam

from airis_mon.errors import ConfigError
from sources.polling import ReadFromPoller
from sources.tfserving.config import TFServingConfig
from sources.tfserving.poller import TFServingPoller

__all__ = ["ReadFromTFServing"]


class ReadFromTFServing(beam.PTransform):
    """The configured model server as a source: the dict of :mod:`airis_mon.streams` outputs."""

    def __init__(self, config: TFServingConfig, bounded: bool = False):
        super().__init__()
        if importlib.util.find_spec("tensorflow_serving") is None:
            raise ConfigError(f"{config.name}: type tfserving needs tensorflow-serving-api: "
                              "pip install 'airis-mon[tfserving]'")  # fmt: skip
        self._read = ReadFromPoller(config.name, functools.partial(TFServingPoller, config), config.poll, bounded)

    def expand(self, pbegin):
        return pbegin | "Poll" >> self._read
