"""Config of the ``github`` source: GitHub Actions workflow runs, polled through PyGithub.

::

    integrations:
      - name: gh-actions
        type: github
        base_url: https://api.github.com     # GitHub Enterprise Server: https://ghe.example.com/api/v3
        token: {env: GITHUB_TOKEN}           # optional (public repositories only without one; 60 requests/h)
        repositories: [octo-org/fraud-model, octo-org/feature-store]
        workflows: [Train and evaluate, deploy.yml]   # names or file names; null: every workflow
        page_size: 100                       # runs per page (per_page, max 100)
        lookback_s: 86400                    # runs created in the last day are watched, s
        timeout_s: 30                        # one HTTP request, s
        request_interval_s: 0.25             # pause between two requests, s (GitHub asks for serial requests)
        jobs: true                           # also each new completed run's jobs (one more request per run)
        environment: ""                      # "" keeps the series identical to the gateway's webhook ones
        state_file: ./state/gh-actions.json  # runs already reported, across runs of the pipeline
        poll: {interval_s: 120, start: "2026-11-28T00:00:00Z", stop: "2026-11-29T00:00:00Z"}

Units: ``lookback_s``, ``timeout_s`` and ``request_interval_s`` in seconds; the
emitted ``workflow_duration``, ``job_duration`` and ``job_queue_duration`` in
seconds (``s``). ``lookback_s`` must exceed
the longest workflow run plus one poll interval: a run is watched while its
``created_at`` lies within the lookback.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from airis_mon.models import ComponentConfig, ConfigPath
from airis_mon.secrets import Secret
from sources.polling import PollSettings

__all__ = ["GithubConfig"]

_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


class GithubConfig(ComponentConfig):
    """GitHub Actions workflow runs: a ``workflow_run`` event and a ``workflow_duration`` per completed run,
    and (``jobs``) a ``workflow_job`` event and a ``job_duration`` per job of it."""

    type: Literal["github"] = "github"
    base_url: str = Field(
        default="https://api.github.com", pattern=r"^https?://\S+$", description="REST API root (GHES: .../api/v3)"
    )
    token: Secret | None = Field(default=None, description="token sent as Authorization (PAT, app or Actions token)")
    repositories: list[str] = Field(min_length=1, description='repositories to watch, each "owner/name"')
    workflows: list[str] | None = Field(
        default=None, description="workflow names or file names (train.yml, .github/workflows/train.yml); None: all"
    )
    page_size: int = Field(default=100, ge=1, le=100, description="runs per page (per_page; GitHub's maximum is 100)")
    lookback_s: int = Field(default=86_400, ge=60, description="watch runs created this recently, s")
    timeout_s: int = Field(default=30, ge=1, le=600, description="timeout of one HTTP request, s")
    request_interval_s: float = Field(default=0.25, ge=0, le=60, description="pause between two requests, s")
    jobs: bool = Field(
        default=True, description="also report the jobs of each newly completed run (one more request per run)"
    )
    environment: str = Field(default="", description="environment tag added to metrics and events when set")
    state_file: ConfigPath | None = Field(
        default=None, description="JSON file keeping the runs already reported across pipeline runs (atomic)"
    )
    poll: PollSettings = Field(default_factory=PollSettings)

    @field_validator("repositories")
    @classmethod
    def _owner_slash_name(cls, repositories: list[str]) -> list[str]:
        for repository in repositories:
            if not _REPOSITORY.fullmatch(repository):
                raise ValueError(f'repository {repository!r} is not "owner/name"')
        if len({r.lower() for r in repositories}) != len(repositories):
            raise ValueError("repositories must be unique")
        return repositories

    @field_validator("workflows")
    @classmethod
    def _unique_non_empty_workflows(cls, workflows: list[str] | None) -> list[str] | None:
        if workflows is None:
            return None
        if not workflows or any(not name.strip() for name in workflows):
            raise ValueError("list non-empty workflow names, or leave workflows unset for every workflow")
        if len(set(workflows)) != len(workflows):
            raise ValueError("workflow names must be unique")
        return workflows
