"""``ReadFromPayloadFiles``: JSON-lines payload files -> points, events,
dead letters and health.

>>> outputs = pipeline | ReadFromPayloadFiles(config)          # doctest: +SKIP
>>> outputs["points"], outputs["events"], outputs["dead_letters"], outputs["health"]  # doctest: +SKIP

Each line is one payload of the public contract (:mod:`airis_mon.payloads`).
A line that is not JSON, or a payload or point that does not validate,
becomes a dead letter with the reason and the original text; nothing stops
the run. One :class:`~airis_mon.schema.HealthRecord` per payload ``source``
and bundle says how many records were read and rejected.
"""

from __future__ import annotations

import apache_beam as beam

from sources.payload_files.config import PayloadFilesConfig
from sources.payload_lines import ParsePayloadLines

__all__ = ["ReadFromPayloadFiles"]

COMPONENT = "payload_files"


class ReadFromPayloadFiles(beam.PTransform):
    """Read the configured payload files; see the module docstring."""

    def __init__(self, config: PayloadFilesConfig):
        super().__init__()
        self._config = config
        self._files = config.existing_files()  # listed once, when the graph is built

    def expand(self, pbegin):
        config = self._config
        parse = ParsePayloadLines(
            config.name, COMPONENT, config.batch_rows, config.max_rejected_ratio, timestamps=config.timestamps
        )
        return (
            pbegin
            | "ListFiles" >> beam.Create(self._files)
            | "ReadLines" >> beam.io.ReadAllFromText(with_filename=True)
            | "Parse" >> parse
        )
