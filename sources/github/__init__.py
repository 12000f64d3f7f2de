"""GitHub: Actions workflow runs and jobs polled through PyGithub (``type: github``), and the
normalization of GitHub webhooks shared with the gateway (:mod:`sources.github.events`).

Importing :mod:`sources.github.events` loads neither PyGithub nor Beam (the
gateway imports it); ``GithubConfig``, ``GithubPoller`` and ``ReadFromGithub``
are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sources.github.config import GithubConfig
    from sources.github.poller import GithubPoller
    from sources.github.transform import ReadFromGithub

__all__ = ["GithubConfig", "GithubPoller", "ReadFromGithub"]


def __getattr__(name: str) -> Any:
    if name == "GithubConfig":
        from sources.github.config import GithubConfig

        return GithubConfig
    if name == "ReadFromGithub":
        from sources.github.transform import ReadFromGithub

        return ReadFromGithub
    if name == "GithubPoller":
        from sources.github.poller import GithubPoller

        return GithubPoller
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
