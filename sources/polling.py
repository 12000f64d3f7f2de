"""Polling sources: one framework for every integration that asks a remote API.

An integration writes a *poller* (no Beam): ``setup()``, ``poll(now_ms) ->
list of public-contract payloads``, ``teardown()``; it raises
:class:`~airis_mon.errors.TransientError` for what may pass (timeouts,
throttling, 5xx) and :class:`~airis_mon.errors.PermanentError` for the rest.
:class:`ReadFromPoller` turns it into a source:

- bounded (``poll.interval_s`` unset or ``bounded=True``): one poll at
  pipeline run time (tests, local runs);
- unbounded: a poll every ``interval_s`` driven by Beam's ``PeriodicImpulse``
  from ``start`` to ``stop`` (both explicit: the default start is fixed at
  import time, and local runners need a stop).

Each poll is retried with the shared backoff (:mod:`airis_mon.retry`); its
payloads go through the public contract's parser (bad ones become dead
letters), and it yields one :class:`~airis_mon.schema.HealthRecord`: ok or
not, latency, records and freshness, so integration health is data the rule
engine can alert on. A poll that finally fails is a health record, never a
crashed run.

::

    class MyPoller:
        def setup(self): self.client = make_client()
        def poll(self, now_ms): return [{"timestamp": now_ms, "source": "my", "metrics": [...]}]
        def teardown(self): self.client.close()

    outputs = pipeline | ReadFromPoller("my-integration", MyPoller, PollSettings(interval_s=60))
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol

import apache_beam as beam
from pydantic import Field

from airis_mon import streams
from airis_mon.batching import rows_to_table
from airis_mon.errors import PermanentError, TransientError
from airis_mon.logs import integration_context
from airis_mon.models import StrictModel
from airis_mon.payloads import parse_payload
from airis_mon.progress import count_read
from airis_mon.retry import Attempt, Outcome, RetryConfig, with_retries
from airis_mon.schema import RAW_POINT_SCHEMA, HealthRecord
from airis_mon.timeutil import to_epoch_ms

__all__ = ["PollSettings", "Poller", "ReadFromPoller", "poll_once"]


class Poller(Protocol):
    def setup(self) -> None: ...

    def poll(self, now_ms: int) -> list[dict]: ...

    def teardown(self) -> None: ...


class PollSettings(StrictModel):
    """``poll:`` settings of a polling integration."""

    interval_s: int | None = Field(default=None, ge=1, description="seconds between polls; None: poll once")
    start: str | int | None = Field(default=None, description="first poll (ISO-8601 or epoch); default: now")
    stop: str | int | None = Field(default=None, description="last poll (ISO-8601 or epoch); required when unbounded")
    retry: RetryConfig = Field(default_factory=lambda: RetryConfig(max_attempts=3, max_total_s=60))

    def window_s(self) -> tuple[float, float]:
        """(start, stop) in epoch seconds for ``PeriodicImpulse``."""
        start = to_epoch_ms(self.start) / 1000 if self.start is not None else time.time()
        if self.stop is None:
            raise ValueError("poll.stop is required for repeated polling (local runners need an end)")
        stop = to_epoch_ms(self.stop) / 1000
        if stop <= start:
            raise ValueError("poll.stop must be after poll.start")
        return start, stop


def poll_once(poller: Poller, now_ms: int, retry: RetryConfig, sleep: Callable[[float], None] = time.sleep,
              rng: random.Random | None = None) -> tuple[list[dict] | None, int, str]:  # fmt: skip
    """Poll with retries: (payloads or None when it failed, attempts, failure reason)."""
    result: list[dict] = []

    def attempt() -> Attempt:
        nonlocal result
        try:
            result = poller.poll(now_ms)
        except TransientError as error:
            return Attempt(Outcome.RETRY, None, str(error))
        except PermanentError as error:
            return Attempt(Outcome.PERMANENT, None, str(error))
        return Attempt(Outcome.DELIVERED, None, "")

    last, attempts, reason = with_retries(attempt, retry, time.monotonic, sleep, rng or random.Random())
    return (result if last.outcome is Outcome.DELIVERED else None), attempts, reason


class _Poll(beam.DoFn):
    def __init__(self, name: str, make_poller: Callable[[], Poller], retry: RetryConfig):
        self._name = name
        self._make_poller = make_poller
        self._retry = retry
        self._polls = beam.metrics.Metrics.counter(f"source:{name}", "polls")
        self._failed = beam.metrics.Metrics.counter(f"source:{name}", "failed_polls")
        self._read = count_read(name, "records")

    # The poller's log lines carry its integration (``integration`` of --log-format json).
    def setup(self):
        with integration_context(self._name):
            self._poller = self._make_poller()
            self._poller.setup()

    def teardown(self):
        with integration_context(self._name):
            self._poller.teardown()

    def process(self, fire_time):
        now_ms = int(float(fire_time) * 1000)
        started = time.monotonic()
        with integration_context(self._name):  # around the poll only: the yields below run downstream steps
            payloads, attempts, reason = poll_once(self._poller, now_ms, self._retry)
        latency_ms = (time.monotonic() - started) * 1000
        self._polls.inc()
        if payloads is None:
            self._failed.inc()
            message = f"poll failed after {attempts} attempt(s): {reason}"
            yield beam.pvalue.TaggedOutput(
                streams.HEALTH, HealthRecord(now_ms, self._name, False, message, latency_ms, -1, 0)
            )
            return
        points, good, newest = [], 0, 0
        for payload in payloads:
            payload_points, events, dead = parse_payload(payload, f"source:{self._name}")
            points.extend(payload_points)
            good += len(payload_points) + len(events)
            newest = max([newest, *(p[0] for p in payload_points[:1]), *(e.timestamp_ms for e in events)])
            for event in events:
                yield beam.pvalue.TaggedOutput(streams.EVENTS, event)
            for dead_letter in dead:
                yield beam.pvalue.TaggedOutput(streams.DEAD_LETTERS, dead_letter)
        if points:
            yield rows_to_table(points, RAW_POINT_SCHEMA)
        self._read.inc(good)
        message = f"{good} records in {attempts} attempt(s)"
        freshness = now_ms - newest if newest else -1
        yield beam.pvalue.TaggedOutput(
            streams.HEALTH, HealthRecord(now_ms, self._name, True, message, latency_ms, freshness, good)
        )


class ReadFromPoller(beam.PTransform):
    """A poller as a source: the dict of :mod:`airis_mon.streams` outputs."""

    def __init__(self, name: str, make_poller: Callable[[], Poller], settings: PollSettings, bounded: bool = False):
        super().__init__()
        self._name = name
        self._make_poller = make_poller
        self._settings = settings
        self._bounded = bounded or settings.interval_s is None
        if not self._bounded:
            settings.window_s()  # fail at construction, not on a worker

    def expand(self, pbegin):
        if self._bounded:
            ticks = pbegin | "Now" >> beam.Create([None]) | "PollTime" >> beam.Map(lambda _: time.time())
        else:
            from apache_beam.transforms.periodicsequence import PeriodicImpulse

            start, stop = self._settings.window_s()
            ticks = pbegin | "Every" >> PeriodicImpulse(
                start_timestamp=start, stop_timestamp=stop, fire_interval=self._settings.interval_s
            )
        outputs = ticks | "Poll" >> beam.ParDo(_Poll(self._name, self._make_poller, self._settings.retry)).with_outputs(
            streams.EVENTS, streams.DEAD_LETTERS, streams.HEALTH, main=streams.POINTS
        )
        return {name: outputs[name] for name in streams.SOURCE_OUTPUTS}
