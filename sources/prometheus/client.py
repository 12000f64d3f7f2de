"""Scrape a Prometheus endpoint over HTTP(S) with ``requests`` and map failures to the error family.

- connection errors, timeouts, HTTP 408/425/429 and 5xx: :class:`~airis_mon.errors.TransientError`
- other HTTP 4xx, a body that is not exposition text, other request errors:
  :class:`~airis_mon.errors.PermanentError`

Error messages name the URL without credentials or query string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from prometheus_client.metrics_core import Metric

from airis_mon.errors import PermanentError, TransientError
from sources.prometheus.exposition import parse_exposition

__all__ = ["ACCEPT", "Scrape", "display_url", "scrape"]

#: What we ask for: the text format 0.0.4 (OpenMetrics is parsed too when a peer sends it anyway).
ACCEPT = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1"
_RETRYABLE = (408, 425, 429)


@dataclass(frozen=True)
class Scrape:
    """One scrape: the parsed families and how long the request took (s)."""

    families: list[Metric]
    duration_s: float


def display_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe in logs and events."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def scrape(session: requests.Session, url: str, timeout_s: float, headers: Mapping[str, str] | None = None) -> Scrape:
    """GET ``url`` and parse the exposition text; raise Transient/PermanentError on failure."""
    shown = display_url(url)
    try:
        response = session.get(url, timeout=timeout_s, headers={"Accept": ACCEPT, **(headers or {})})
    except requests.Timeout:
        raise TransientError(f"GET {shown}: no answer within {timeout_s} s") from None
    except requests.ConnectionError as error:
        raise TransientError(f"GET {shown}: connection failed ({type(error).__name__})") from None
    except requests.RequestException as error:
        raise PermanentError(f"GET {shown}: {type(error).__name__}") from None
    status = response.status_code
    if status >= 500 or status in _RETRYABLE:
        raise TransientError(f"GET {shown}: HTTP {status}")
    if status >= 400:
        raise PermanentError(f"GET {shown}: HTTP {status}")
    try:
        families = parse_exposition(response.text, response.headers.get("Content-Type", ""))
    except ValueError as error:
        raise PermanentError(f"GET {shown}: not Prometheus exposition text ({str(error)[:200]})") from None
    return Scrape(families, response.elapsed.total_seconds())
