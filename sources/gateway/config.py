"""Config of the ``gateway`` integration: the HTTP ingestion API and its spool.

One entry configures both sides: ``python -m pipelines.gateway`` serves the
API and writes the spool; ``python -m pipelines.main`` reads what the spool
holds (closed segments) as a source.

::

    integrations:
      - name: api
        type: gateway
        spool: ./spool                      # relative to the config file
        host: 127.0.0.1
        port: 8080
        tokens:                             # Bearer tokens; stored hashed in memory
          - {name: ci, token: {env: AIRIS_TOKEN_CI}}                      # scopes: [ingest] (the default)
          - {name: oncall, token: {env: AIRIS_TOKEN_ONCALL}, scopes: [ingest, silences:write]}
        silences_file: null                 # default SPOOL/config/silences.json (read by the live runner)
        max_body_bytes: 1048576             # larger bodies: 413 (see "Default limits" below)
        rate_limit_per_s: 20000             # requests per second per token; bursts up to rate_limit_burst; then 429
        rate_limit_burst: 40000
        dedup_window_s: 3600                # Idempotency-Key and webhook delivery ids remembered this long, s
        dedup_max_keys: 1000000             # ... and at most this many (the oldest are forgotten first)
        processed_retention_s: 604800       # processed segments (spool/done/) are deleted after 7 days, s
        mlflow_webhook_secret: {env: MLFLOW_WEBHOOK_SECRET}   # optional: enables POST /mlflow/webhook
        github_webhook_secret: {env: GITHUB_WEBHOOK_SECRET}   # optional: enables POST /github/webhook
        webhook_tolerance_s: 300            # MLflow timestamps older or newer than this: refused
        webhook_allowed_networks: []        # CIDRs registered webhook URLs may use although private (default none)
        timestamps:                         # accepted payload timestamps; others: 400 (gateway), dead letter (pipeline)
          not_before: "2000-01-01T00:00:00Z"   # ISO-8601 or epoch s/ms/µs/ns; default 1970-01-01T00:00:00Z
          max_future_s: 86400                  # s ahead of the wall clock at validation (the default)
        health_report: ./airis-mon-output/health_report.json   # served at /api/v1/integrations/health
        max_segment_bytes: 67108864         # spool rotation, bytes
        max_segment_age_s: 5                # spool rotation, s: a record is readable by a run within this
        handoff: spool                      # or pubsub (on GCP): publish, answer 2xx after the ack
        pubsub_topic: projects/my-project/topics/airis-mon-ingest
        pubsub_endpoint: null               # host:port of an emulator; null: Google's endpoint
        pubsub_subscription: projects/my-project/subscriptions/airis-mon-pipeline   # read by --streaming runs

Default limits, and why:

- ``max_body_bytes`` 1 MiB: a metrics payload point is ~100 bytes, so one request carries up to ~10,000
  points; a client with more sends several requests. The body is read within this bound, so a request
  costs at most this much memory however large it claims to be.
- ``rate_limit_per_s`` 20,000 requests/s per token (bursts of 40,000): about four times what one
  gateway process can answer at all (``python -m benchmarks.gateway`` on 2 cores: ~5,300 requests/s
  accepted at 1 metric a request from 32 clients), so a client alone is never refused
  traffic the gateway could take; it is a guard against a runaway client among several, and meant to be
  set lower per deployment (the share one client may take). It limits requests, not points: a client
  batching 100 points a request is not penalised for batching. An earlier default of 50/s refused 90 %
  of the requests of 8 ordinary clients.
- ``dedup_window_s`` 1 h: MLflow retries a delivery within minutes (and its signatures are only accepted
  within ``webhook_tolerance_s``), clients retry a failed request within seconds to minutes. Each
  remembered key costs ~200 bytes of memory; ``dedup_max_keys`` bounds that at ~200 MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from airis_mon.contract import TimestampRange
from airis_mon.models import ComponentConfig, ConfigPath, StrictModel
from airis_mon.secrets import Secret

__all__ = ["TOKEN_SCOPES", "GatewayConfig", "GatewayToken"]

#: What a token may do beyond reading: ``ingest`` (every ``/api/v1`` route, as before scopes existed) and
#: ``silences:write`` (create and expire silences, ``/api/v2/silences``). Any valid token may read silences.
TOKEN_SCOPES = ("ingest", "silences:write")


class GatewayToken(StrictModel):
    """One client's Bearer token; ``name`` identifies it in rate limits and logs."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    token: Secret
    scopes: list[Literal[TOKEN_SCOPES]] = Field(
        default_factory=lambda: ["ingest"], description="ingest; silences:write (create and expire silences)"
    )


class GatewayConfig(ComponentConfig):
    """The ingestion gateway (server) and its spool (pipeline source)."""

    type: Literal["gateway"] = "gateway"
    spool: ConfigPath = Field(description="spool folder: the durable hand-off to the pipeline")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    tokens: list[GatewayToken] = Field(default_factory=list, description="Bearer tokens allowed on /api/v1")
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="request body limit, bytes")
    rate_limit_per_s: float = Field(default=20_000.0, gt=0, description="requests per second per token")
    rate_limit_burst: int = Field(default=40_000, ge=1, description="requests a token may send at once")
    dedup_window_s: float = Field(
        default=3600.0, gt=0, description="Idempotency-Key and webhook delivery ids are remembered this long, s"
    )
    dedup_max_keys: int = Field(default=1_000_000, ge=1, description="at most this many keys are remembered")
    processed_retention_s: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="processed segments (spool/done/) are deleted this long after they were written, s; the "
        "newest is always kept (it carries the segment numbering), and GET /api/v1/ingest/{id} answers 404 for "
        "what was deleted",
    )
    mlflow_webhook_secret: Secret | None = None
    github_webhook_secret: Secret | None = None
    webhook_tolerance_s: int = Field(default=300, ge=1, description="accepted clock skew of signed webhooks, s")
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs that registered webhook URLs may point into although private, loopback or link-local "
        "(keep equal to the webhooks sink's allowed_networks)",
    )
    timestamps: TimestampRange = Field(
        default_factory=TimestampRange, description="accepted payload timestamps (the API and the spool reader)"
    )
    health_report: ConfigPath | None = Field(default=None, description="health_report.json served by the API")
    silences_file: ConfigPath | None = Field(
        default=None, description="silences of /api/v2/silences (JSON); default SPOOL/config/silences.json"
    )
    max_segment_bytes: int = Field(default=64 << 20, ge=1024, description="spool segment size bound, bytes")
    max_segment_age_s: float = Field(
        default=5.0,
        gt=0,
        description="spool segment age bound, s: a run reads closed segments, so a record waits up to this long "
        "(at most one segment file this often while records arrive; none while the gateway is idle)",
    )
    handoff: Literal["spool", "pubsub"] = Field(default="spool", description="where accepted records go")
    pubsub_topic: str | None = Field(default=None, pattern=r"^projects/[^/]+/topics/[^/]+$")
    pubsub_endpoint: str | None = Field(default=None, description="host:port of a Pub/Sub emulator (plain gRPC)")
    pubsub_subscription: str | None = Field(
        default=None,
        pattern=r"^projects/[^/]+/subscriptions/[^/]+$",
        description="streaming pipelines read the hand-off from this subscription of pubsub_topic",
    )
    batch_rows: int = Field(default=50_000, ge=1, description="reading: metric points per Arrow batch")
    max_rejected_ratio: float = Field(default=0.01, ge=0, le=1, description="reading: unhealthy above this share")

    @model_validator(mode="after")
    def _pubsub_needs_a_topic(self) -> GatewayConfig:
        if self.handoff == "pubsub" and not self.pubsub_topic:
            raise ValueError("handoff pubsub needs pubsub_topic (projects/P/topics/T)")
        return self

    @model_validator(mode="after")
    def _dedup_covers_the_signature_window(self) -> GatewayConfig:
        if self.dedup_window_s < 2 * self.webhook_tolerance_s:
            raise ValueError("dedup_window_s must be at least 2 * webhook_tolerance_s (a signed delivery can be "
                             "replayed while its timestamp is within the tolerance either side)")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _retention_covers_the_dedup_window(self) -> GatewayConfig:
        if self.processed_retention_s < self.dedup_window_s:
            raise ValueError("processed_retention_s must be at least dedup_window_s (retried requests are "
                             "recognised from the segments they were spooled in)")  # fmt: skip
        return self

    def silences_path(self) -> Path:
        """The silence store this gateway writes and the live runner reads."""
        from airis_mon.silence_store import store_path

        return Path(self.silences_file) if self.silences_file else store_path(self.spool)

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        import ipaddress

        for network in networks:
            ipaddress.ip_network(network)  # ValueError names a bad CIDR (or one with host bits set)
        return networks

    @field_validator("tokens")
    @classmethod
    def _unique_names(cls, tokens: list[GatewayToken]) -> list[GatewayToken]:
        names = [t.name for t in tokens]
        if len(names) != len(set(names)):
            raise ValueError("token names must be unique")
        return tokens
