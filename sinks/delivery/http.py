"""``HttpDeliverer``: deliver one HTTP request with bounded retries.

The only place that talks HTTP for sinks. Time is injected (``clock``,
``sleep``, ``wall_clock``, ``rng``) so that tests drive backoff without
waiting. Reasons it reports never contain the URL, headers or body: sink URLs
and headers carry secrets (Slack webhook paths, tokens).

A request may bring its own ``transport`` (a requests transport adapter, such
as :class:`sinks.webhooks.destination.PinnedAdapter`, which connects only to
an address it has just checked). The transport may refuse to send: a
:class:`~airis_mon.errors.PermanentError` fails the delivery at once (not
retried), a :class:`~airis_mon.errors.TransientError` is retried; their
messages become the reason.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from requests.adapters import BaseAdapter

from airis_mon.errors import PermanentError, TransientError
from sinks.delivery.config import DeliveryConfig
from sinks.delivery.retry import Attempt, Outcome, classify, retry_after_s, with_retries

__all__ = ["DeliveryResult", "HttpDeliverer", "HttpRequest", "RateLimiter"]


@dataclass(frozen=True)
class HttpRequest:
    """One request a sink wants delivered; ``body`` is the exact bytes sent."""

    method: str
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    label: str = ""  # which destination (e.g. a webhook endpoint's name), for dead-letter reasons; never a URL
    # Sends the request instead of the session's adapters (no proxies, no redirects); see the module docstring.
    transport: BaseAdapter | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    attempts: int
    status: int | None  # the last HTTP status, None if no response
    reason: str  # "" when delivered
    retries: int  # attempts - 1 when the request was retried
    response_body: bytes = b""


class RateLimiter:
    """At most ``rate_per_s`` acquisitions per second (one at a time, no burst)."""

    def __init__(self, rate_per_s: float | None, clock: Callable[[], float], sleep: Callable[[float], None]):
        self._interval = 1.0 / rate_per_s if rate_per_s else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_free = 0.0

    def acquire(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        if now < self._next_free:
            self._sleep(self._next_free - now)
            now = self._next_free
        self._next_free = now + self._interval


class HttpDeliverer:
    """Deliver requests per a :class:`DeliveryConfig`; never raises for HTTP outcomes."""

    def __init__(
        self,
        config: DeliveryConfig,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self._config = config
        self._session = session or requests.Session()
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self._limiter = RateLimiter(config.rate_limit_per_s, clock, sleep)

    def deliver(self, request: HttpRequest) -> DeliveryResult:
        body = b""

        def attempt() -> Attempt:
            nonlocal body
            self._limiter.acquire()
            sent, body = self._send(request)
            return sent

        last, attempts, reason = with_retries(attempt, self._config.retry, self._clock, self._sleep, self._rng)
        delivered = last.outcome is Outcome.DELIVERED
        return DeliveryResult(delivered, attempts, last.status, reason, attempts - 1, body)

    def _send(self, request: HttpRequest) -> tuple[Attempt, bytes]:
        """One attempt and the response body (b"" without a response)."""
        try:
            if request.transport is None:
                response = self._session.request(
                    request.method,
                    request.url,
                    data=request.body,
                    headers=request.headers,
                    timeout=self._config.timeout_s,
                    # A redirect would resend a signed request to a place the URL checks never saw; 3xx fails.
                    allow_redirects=False,
                )
            else:
                response = self._send_through(request.transport, request)
        except requests.Timeout:
            return Attempt(Outcome.RETRY, None, f"no response within {self._config.timeout_s:g} s"), b""
        except requests.ConnectionError as error:
            return Attempt(Outcome.RETRY, None, f"connection failed ({type(error).__name__})"), b""
        except PermanentError as error:  # the transport refused to send it (e.g. a forbidden destination)
            return Attempt(Outcome.PERMANENT, None, str(error)), b""
        except TransientError as error:  # e.g. the destination's name did not resolve
            return Attempt(Outcome.RETRY, None, str(error)), b""
        snippet = response.text[:200].replace("\n", " ") if response.content else ""
        retry_after = retry_after_s(response.headers.get("Retry-After"), self._wall_clock())
        reason = f"HTTP {response.status_code} {snippet}".strip()
        return Attempt(classify(response.status_code), response.status_code, reason, retry_after), response.content

    def _send_through(self, transport: BaseAdapter, request: HttpRequest) -> requests.Response:
        """``request`` prepared by the session (its headers, auth, environment's CA bundle) and sent by
        ``transport``; the adapter never follows redirects."""
        prepared = self._session.prepare_request(
            requests.Request(request.method, request.url, data=request.body, headers=request.headers)
        )
        settings = self._session.merge_environment_settings(prepared.url, {}, None, None, None)
        response = transport.send(
            prepared,
            timeout=self._config.timeout_s,
            verify=settings["verify"],
            cert=settings["cert"],
            proxies=settings["proxies"],
        )
        response.content  # noqa: B018 (read the body now, as Session.send does, so the connection is released)
        return response
