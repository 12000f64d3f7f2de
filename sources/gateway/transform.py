"""``ReadFromGatewaySpool``: the gateway's hand-off as a pipeline source.

Streaming, with ``handoff: pubsub`` and ``pubsub_subscription``: the records
the gateway published are read from that subscription (``ReadFromPubSub``,
unbounded; Pub/Sub redelivers what a worker did not acknowledge) and parsed
like spool lines. Otherwise the spool is read:

The closed segments present when the pipeline is built are read (the same
payload-line parsing as ``payload_files``); :meth:`ReadFromGatewaySpool.on_success`,
called by ``pipelines.main`` once the run has finished without error, moves
them to ``done/`` so that the next run does not read them again. A run that
fails leaves them in place: records are processed once, never lost.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import StandardOptions

from sources.gateway.config import GatewayConfig
from sources.gateway.envelope import payloads_of
from sources.gateway.spool import closed_segments, mark_processed
from sources.payload_lines import ParsePayloadLines

__all__ = ["ReadFromGatewaySpool"]

COMPONENT = "gateway"


class ReadFromGatewaySpool(beam.PTransform):
    """Closed spool segments -> the dict of :mod:`airis_mon.streams` outputs."""

    def __init__(self, config: GatewayConfig, segments: list[str] | None = None):
        """``segments``: the spool segments to read (the live runner's plan); default: every closed one."""
        super().__init__()
        self._config = config
        if segments is None:
            segments = [str(path) for path in closed_segments(config.spool)]
        self._segments = list(segments)

    @property
    def segments(self) -> list[str]:
        """The segments this run reads."""
        return list(self._segments)

    def expand(self, pbegin):
        config = self._config
        parse = ParsePayloadLines(
            config.name,
            COMPONENT,
            config.batch_rows,
            config.max_rejected_ratio,
            timestamps=config.timestamps,
            unwrap=payloads_of,
            read_unit="requests",  # a spool line is one acknowledged request
        )
        streaming = pbegin.pipeline.options.view_as(StandardOptions).streaming
        if streaming and config.handoff == "pubsub" and config.pubsub_subscription:
            origin = config.pubsub_subscription
            return (
                pbegin
                | "ReadPubSub" >> beam.io.ReadFromPubSub(subscription=origin)
                | "AsLines" >> beam.Map(lambda data, origin=origin: (origin, data.decode("utf-8", "replace")))
                | "Parse" >> parse
            )
        return (
            pbegin
            | "ListSegments" >> beam.Create(self._segments)
            | "ReadLines" >> beam.io.ReadAllFromText(with_filename=True)
            | "Parse" >> parse
        )

    def on_success(self) -> None:
        """Mark this run's segments processed (call only after the run succeeded)."""
        mark_processed(self._config.spool, self._segments)
