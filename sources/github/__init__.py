"""GitHub: Actions workflow runs and jobs polled through PyGithub (``type: github``), and the
normalization of GitHub webhooks shared with the gateway (:mod:`sources.github.events`).

Importing :mod:`sources.github.events` loads neither PyGithub nor Beam (the
gateway imports it); ``GithubConfig``, ``GithubPoller`` and ``ReadFromGithub``
are loaded on first use.
"""

from airis_mon.lazy import lazy_exports

# Loaded on first use: importing the config does not import the client library (the extra).
__getattr__, __all__ = lazy_exports(
    __name__, {"GithubConfig": "config", "GithubPoller": "poller", "ReadFromGithub": "transform"}
)
