"""The shared delivery layer against a real loopback HTTP server; time is test-controlled."""

import json
import random
import socket

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from sinks.delivery import DeliverAlerts, DeliveryConfig, HttpDeliverer, HttpRequest, RetryConfig, idempotency_key
from sinks.delivery.http import RateLimiter
from sinks.delivery.retry import Outcome, backoff_s, classify, retry_after_s
from tests.sinks.receivers import FakeTime, Receiver, scripted
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate

OK = (200, {}, b"ok")
BUSY = (503, {}, b"busy")


def deliverer(fake: FakeTime, **retry) -> HttpDeliverer:
    config = DeliveryConfig(retry=RetryConfig(**retry), timeout_s=2)
    return HttpDeliverer(config, clock=fake.clock, sleep=fake.sleep, wall_clock=lambda: 1_000_000.0,
                         rng=random.Random(1))  # fmt: skip


def post(url: str) -> HttpRequest:
    return HttpRequest("POST", url + "/hook/T0KEN-SECRET", b'{"a":1}', {"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "status, outcome",
    [(200, Outcome.DELIVERED), (202, Outcome.DELIVERED), (408, Outcome.RETRY), (425, Outcome.RETRY),
     (429, Outcome.RETRY), (500, Outcome.RETRY), (503, Outcome.RETRY), (None, Outcome.RETRY),
     (400, Outcome.PERMANENT), (401, Outcome.PERMANENT), (404, Outcome.PERMANENT), (413, Outcome.PERMANENT)],
)  # fmt: skip
def test_classify(status, outcome):
    assert classify(status) is outcome


def test_retry_after_seconds_and_http_date():
    assert retry_after_s("7", 0) == 7.0
    assert retry_after_s("Thu, 01 Jan 1970 00:00:30 GMT", 10.0) == 20.0
    assert retry_after_s("soon", 0) is None and retry_after_s(None, 0) is None


def test_backoff_is_exponential_capped_and_jittered():
    retry = RetryConfig(initial_backoff_s=1, max_backoff_s=5)
    rng = random.Random(3)
    waits = [[backoff_s(attempt, retry, rng) for _ in range(200)] for attempt in (1, 2, 3, 6)]
    assert [max(w) <= cap for w, cap in zip(waits, (1, 2, 4, 5), strict=True)] == [True] * 4
    assert max(waits[3]) > 4  # the cap, not the exponential, bounds later attempts
    assert len({round(w, 6) for w in waits[0]}) > 100  # jitter


def test_500_twice_then_200_is_delivered_on_the_third_attempt():
    fake = FakeTime()
    with Receiver(scripted(BUSY, (500, {}, b"oops"), OK)) as receiver:
        result = deliverer(fake).deliver(post(receiver.url))
    assert (result.delivered, result.attempts, result.retries, result.status) == (True, 3, 2, 200)
    assert len(receiver.requests) == 3 and len(fake.sleeps) == 2
    assert {r.body for r in receiver.requests} == {b'{"a":1}'}  # the same request each time


def test_retry_after_is_honoured_as_a_minimum_wait():
    fake = FakeTime()
    with Receiver(scripted((429, {"Retry-After": "7"}, b"slow down"), OK)) as receiver:
        result = deliverer(fake, initial_backoff_s=0.1).deliver(post(receiver.url))
    assert result.delivered and fake.sleeps == [7.0]


def test_4xx_is_permanent_and_never_retried():
    fake = FakeTime()
    with Receiver(scripted((400, {}, b"invalid_payload"))) as receiver:
        result = deliverer(fake).deliver(post(receiver.url))
    assert (result.delivered, result.attempts, fake.sleeps) == (False, 1, [])
    assert result.reason == "permanent failure: HTTP 400 invalid_payload"


def test_attempts_and_total_time_are_bounded():
    fake = FakeTime()
    with Receiver(scripted(BUSY)) as receiver:
        result = deliverer(fake, max_attempts=4).deliver(post(receiver.url))
    assert (result.delivered, result.attempts, len(receiver.requests)) == (False, 4, 4)
    assert result.reason == "gave up after 4 attempts: HTTP 503 busy"
    fake = FakeTime()
    with Receiver(scripted((429, {"Retry-After": "100"}, b""))) as receiver:
        result = deliverer(fake, max_total_s=60).deliver(post(receiver.url))
    assert result.attempts == 1 and "would pass max_total_s (60 s)" in result.reason and fake.sleeps == []


def test_connection_errors_retry_and_reasons_never_show_the_url():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    fake = FakeTime()
    result = deliverer(fake, max_attempts=3).deliver(post(f"http://127.0.0.1:{port}"))
    assert (result.delivered, result.attempts, result.status) == (False, 3, None)
    assert result.reason == "gave up after 3 attempts: connection failed (ConnectionError)"
    assert "T0KEN" not in result.reason


def test_rate_limiter_spaces_requests():
    fake = FakeTime()
    limiter = RateLimiter(2.0, fake.clock, fake.sleep)
    for _ in range(3):
        limiter.acquire()
    assert fake.sleeps == [0.5, 0.5]


class _OnePerRequest:
    batch_size = 1

    def __init__(self, url):
        self.url = url

    def encode(self, alerts):
        return [(HttpRequest("POST", self.url, json.dumps({"id": a.id, "n": a.notification}).encode(),
                             {"Idempotency-Key": idempotency_key("test", a)}), [a]) for a in alerts]  # fmt: skip


def test_deliver_alerts_dead_letters_what_fails_with_sink_reason_attempts_and_original():
    trigger, resolve = evaluate(threshold_rule(), GROUP, series(11, 11, 1))[0]

    def respond(request):
        return (400, {}, b"bad") if json.loads(request.body)["n"] == "resolve" else OK

    config = DeliveryConfig(retry=RetryConfig(max_attempts=2, initial_backoff_s=0.01))
    with Receiver(respond) as receiver, beam.Pipeline() as pipeline:
        outputs = (
            pipeline | beam.Create([trigger, resolve]) | DeliverAlerts("test", _OnePerRequest(receiver.url), config)
        )
        assert_that(outputs["delivered"], equal_to([("test", trigger.id, "trigger", 200, 1)]), label="delivered")
        assert_that(
            outputs["dead_letters"]
            | beam.Map(lambda d: (d.component, d.reason, json.loads(d.original)["notification"])),
            equal_to([("sink:test", "permanent failure: HTTP 400 bad (attempts: 1)", "resolve")]),
            label="dead",
        )
    keys = {r.headers["idempotency-key"] for r in receiver.requests}
    assert keys == {idempotency_key("test", trigger), idempotency_key("test", resolve)}


def test_beam_counters_count_sent_retried_and_dead_lettered():
    alerts = evaluate(threshold_rule(), GROUP, series(11, 11, 1, 11, 1))[0]  # trigger, resolve, trigger, resolve
    attempts = {}

    def respond(request):
        body = json.loads(request.body)
        attempts[body["id"], body["n"]] = attempts.get((body["id"], body["n"]), 0) + 1
        if body["n"] == "resolve":
            return (404, {}, b"gone")  # permanent
        return BUSY if attempts[body["id"], body["n"]] == 1 else OK  # one retry each

    config = DeliveryConfig(retry=RetryConfig(max_attempts=3, initial_backoff_s=0.01))
    with Receiver(respond) as receiver:
        pipeline = beam.Pipeline()
        _ = pipeline | beam.Create(alerts) | DeliverAlerts("count", _OnePerRequest(receiver.url), config)
        result = pipeline.run()
        result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]
                if c.key.metric.namespace == "sink:count"}  # fmt: skip
    assert counters == {"sent": 2, "retried": 2, "dead_lettered": 2}


def test_redirects_are_not_followed_a_3xx_is_a_permanent_failure():
    fake = FakeTime()
    with Receiver(scripted(OK)) as inner, Receiver(scripted((307, {"Location": inner.url + "/x"}, b""))) as outer:
        result = deliverer(fake).deliver(post(outer.url))
    assert (result.delivered, result.status, len(inner.requests)) == (False, 307, 0)
    assert result.reason.startswith("permanent failure: HTTP 307")
