"""The polling framework with scripted pollers (stand-ins for a remote API)."""

import time

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.errors import PermanentError, TransientError
from airis_mon.retry import RetryConfig
from sources.polling import PollSettings, ReadFromPoller, poll_once

FAST = RetryConfig(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.002)


class Scripted:
    """Fails with the given errors first, then returns one metrics payload and one event."""

    def __init__(self, *failures: Exception):
        self.failures = list(failures)
        self.calls = 0

    def setup(self):
        pass

    def teardown(self):
        pass

    def poll(self, now_ms):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return [
            {"timestamp": now_ms, "source": "api", "metrics": [{"name": "up", "value": 1, "unit": "count"}]},
            {"timestamp": now_ms, "event_type": "poll", "source": "api", "severity": "info", "data": {}},
            {"timestamp": now_ms, "source": "api", "metrics": [{"name": "", "value": 1}]},  # bad: dead letter
        ]


def test_poll_once_retries_transient_errors_and_stops_on_permanent_ones():
    poller = Scripted(TransientError("HTTP 503"), TransientError("timeout"))
    payloads, attempts, reason = poll_once(poller, 0, FAST, sleep=lambda s: None)
    assert (len(payloads), attempts, reason) == (3, 3, "")
    payloads, attempts, reason = poll_once(
        Scripted(PermanentError("HTTP 403 forbidden")), 0, FAST, sleep=lambda s: None
    )
    assert (payloads, attempts, reason) == (None, 1, "permanent failure: HTTP 403 forbidden")


def test_a_bounded_poll_yields_points_events_dead_letters_and_a_health_record():
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromPoller("api", lambda: Scripted(TransientError("503")), PollSettings(retry=FAST))
        assert_that(out["points"] | beam.FlatMap(lambda t: t.column("name").to_pylist()), equal_to(["up"]), label="p")
        assert_that(out["events"] | beam.Map(lambda e: e.event_type), equal_to(["poll"]), label="e")
        assert_that(out["dead_letters"] | beam.Map(lambda d: d.reason.split(":")[0]), equal_to(["metrics[0].name"]),
                    label="d")  # fmt: skip
        assert_that(out["health"] | beam.Map(lambda h: (h.integration, h.ok, h.records, h.message)),
                    equal_to([("api", True, 2, "2 records in 2 attempt(s)")]), label="h")  # fmt: skip


def test_a_failing_poll_is_an_unhealthy_record_not_a_crashed_run():
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromPoller("api", lambda: Scripted(PermanentError("HTTP 401")), PollSettings(retry=FAST))
        assert_that(out["health"] | beam.Map(lambda h: (h.ok, h.message)),
                    equal_to([(False, "poll failed after 1 attempt(s): permanent failure: HTTP 401")]))  # fmt: skip


def test_repeated_polls_run_between_explicit_start_and_stop():
    start = int(time.time()) - 10
    settings = PollSettings(interval_s=2, start=start, stop=start + 6, retry=FAST)
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromPoller("api", Scripted, settings)
        times = out["health"] | beam.Map(lambda h: h.timestamp_ms // 1000 - start)
        assert_that(times, equal_to([0, 2, 4]))


def test_repeated_polling_needs_a_stop():
    with pytest.raises(ValueError, match=r"poll\.stop is required"):
        ReadFromPoller("api", Scripted, PollSettings(interval_s=60))
