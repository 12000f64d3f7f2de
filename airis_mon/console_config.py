"""The ``console:`` section of the config: the web console and its GraphQL API (``python -m pipelines.console``).

::

    console:
      host: 127.0.0.1
      port: 8090
      public_url: https://airis.example.com   # the address people open; Slack and PagerDuty links point here
      tokens:                                 # Bearer tokens (API) and sign-in tokens (pages)
        - {name: viewer, token: {env: AIRIS_CONSOLE_VIEWER}}              # role: read (the default)
        - {name: oncall, token: {env: AIRIS_CONSOLE_ONCALL}, role: admin} # acknowledge, create/expire silences
      session_ttl: 12h                        # a signed-in page session lasts this long
      slack:
        signing_secret: {env: SLACK_SIGNING_SECRET}   # enables POST /slack/interactivity (the Acknowledge button)
        response_url_hosts: [hooks.slack.com]         # where a message update may be sent
      refresh_interval_s: 5                   # new stored files are indexed this often
      bigquery:                               # optional (GCP): read aggregates, alerts, events, health from BigQuery
        project: my-project
        dataset: airis_mon
        table_prefix: airis_mon_

Roles: ``read`` sees every page and query; ``admin`` also acknowledges alerts and creates and expires silences.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from airis_mon.durations import Duration
from airis_mon.models import ConfigPath, StrictModel
from airis_mon.secrets import Secret

__all__ = ["CONSOLE_ROLES", "ConsoleBigQueryConfig", "ConsoleConfig", "ConsoleToken", "SlackInteractivityConfig"]

#: ``read``: pages and queries; ``admin``: also acknowledge and silences.
CONSOLE_ROLES = ("read", "admin")


class ConsoleToken(StrictModel):
    """One person's or client's token; ``name`` is who they are in acknowledgements and logs."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    token: Secret
    role: Literal[CONSOLE_ROLES] = "read"


class SlackInteractivityConfig(StrictModel):
    """Slack's interactivity request URL (``POST /slack/interactivity``): the Acknowledge button."""

    signing_secret: Secret
    response_url_hosts: list[str] = Field(
        default_factory=lambda: ["hooks.slack.com"],
        description="hosts a message update (response_url) may be posted to; anything else is refused",
    )
    max_age_s: int = Field(default=300, ge=1, le=3600, description="requests older than this are refused, s")


class ConsoleBigQueryConfig(StrictModel):
    """The BigQuery tables the console reads instead of OUTPUT's Parquet files (:mod:`console.bigquery_feed`)."""

    project: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    dataset: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")
    table_prefix: str = Field(default="airis_mon_", pattern=r"^[A-Za-z0-9_]*$")


class ConsoleConfig(StrictModel):
    """The web console: pages, GraphQL, Slack interactivity."""

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    public_url: str = Field(default="http://127.0.0.1:8090", description="the console's address as people open it")
    tokens: list[ConsoleToken] = Field(default_factory=list, description="sign-in and Bearer tokens")
    session_ttl_s: Duration = Field(default=12 * 3600, alias="session_ttl", ge=60, description="session life, s")
    slack: SlackInteractivityConfig | None = None
    refresh_interval_s: float = Field(default=5.0, gt=0, le=3600, description="how often new files are indexed, s")
    index_path: ConfigPath | None = Field(default=None, description="the DuckDB index; default STATE/console.duckdb")
    bigquery: ConsoleBigQueryConfig | None = Field(default=None, description="read the stored kinds from BigQuery")

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True)

    @field_validator("tokens")
    @classmethod
    def _unique_names(cls, tokens: list[ConsoleToken]) -> list[ConsoleToken]:
        names = [t.name for t in tokens]
        if len(names) != len(set(names)):
            raise ValueError("token names must be unique")
        return tokens

    @field_validator("public_url")
    @classmethod
    def _absolute(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("public_url must be an absolute http:// or https:// URL")
        return url.rstrip("/")
