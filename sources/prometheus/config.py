"""Config of the ``prometheus`` source: scrape Prometheus endpoints of model servers.

::

    integrations:
      - name: torchserve-prod
        type: prometheus
        source: torchserve                 # the payloads' `source`
        targets:
          - url: http://torchserve-0:8082/metrics
            labels: {environment: prod, cluster: eu-1}   # added to every point (win over exposed labels)
          - url: http://torchserve-1:8082/metrics
            labels: {environment: prod, cluster: eu-1}
        timeout_s: 10                      # per request, s
        include: ["ts_.*"]                 # regexes on family names (counters: with or without _total); [] = all
        exclude: []
        units: {MyLatency: ms}             # family -> unit, when the name and HELP do not say
        quantiles: [0.5, 0.95, 0.99]       # estimated from histograms
        bearer_token: {env: SCRAPE_TOKEN}  # optional: Authorization: Bearer
        poll: {interval_s: 30, start: "2026-11-28T00:00:00Z", stop: "2026-11-28T01:00:00Z"}

Every point is tagged with the target's ``labels`` and ``instance`` (the URL's
``host:port``) unless ``labels`` sets it. What each family becomes, and the
units, are in :mod:`sources.prometheus.exposition`.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from airis_mon.models import ComponentConfig, StrictModel
from airis_mon.secrets import Secret
from sources.polling import PollSettings

__all__ = ["PrometheusConfig", "PrometheusTarget", "check_scrape_url"]


def check_scrape_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL (the error never echoes it: it may hold credentials)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    return url.strip()


class PrometheusTarget(StrictModel):
    """One endpoint to scrape."""

    url: str = Field(description="http(s) URL of the exposition, e.g. http://host:8082/metrics")
    labels: dict[str, str] = Field(default_factory=dict, description="tags added to every point of this target")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return check_scrape_url(url)

    def tags(self) -> dict[str, str]:
        """``labels`` plus ``instance`` (``host:port`` of the URL) unless ``labels`` sets it."""
        parts = urlsplit(self.url)
        instance = parts.hostname + (f":{parts.port}" if parts.port else "")
        return {"instance": instance, **self.labels}


class PrometheusConfig(ComponentConfig):
    """Scrape Prometheus text exposition; counters as rates, histograms as quantiles."""

    type: Literal["prometheus"] = "prometheus"
    targets: list[PrometheusTarget] = Field(min_length=1)
    source: str = Field(default="prometheus", min_length=1, max_length=256, description="payload `source`")
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="per request, s")
    include: list[str] = Field(default_factory=list, description="regexes (full match) on family names; [] = all")
    exclude: list[str] = Field(default_factory=list, description="regexes (full match) on family names")
    units: dict[str, str] = Field(default_factory=dict, description="family name -> unit, overrides inference")
    quantiles: list[float] = Field(default_factory=lambda: [0.5, 0.95, 0.99], min_length=1)
    bucket_increases: bool = Field(
        default=False,
        description="histograms: also emit <family>_bucket_increase points tagged le (each bucket's increase "
        "since the previous scrape), for drift rules with histogram: true",
    )
    bearer_token: Secret | None = None
    poll: PollSettings = Field(default_factory=PollSettings)

    @field_validator("include", "exclude")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for index, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"[{index}] is not a regular expression: {error}") from None
        return patterns

    @field_validator("quantiles")
    @classmethod
    def _probabilities(cls, quantiles: list[float]) -> list[float]:
        if any(not 0 < q < 1 for q in quantiles):
            raise ValueError("quantiles must lie strictly between 0 and 1")
        return quantiles
