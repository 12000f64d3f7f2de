"""GitHub REST calls of the ``github`` source, through PyGithub (no Beam here).

::

    client = GithubClient("https://api.github.com", token="...", page_size=100, timeout_s=30)
    runs = client.list_runs("octo-org/fraud-model", cutoff_ms)   # workflow run objects (dicts), newest first
    jobs = client.list_jobs("octo-org/fraud-model", runs[0]["id"])  # that run's job objects (dicts)

``list_runs`` reads the repository once (``GET /repos/{owner}/{repo}``, cached)
and then ``GET /repos/{owner}/{repo}/actions/runs?per_page=N&exclude_pull_requests=1``,
following ``Link: rel="next"`` pages until a run was created before
``cutoff_ms`` (the list is newest first), so older pages are never fetched.
Each run is the JSON object GitHub sent, unchanged (the object a
``workflow_run`` webhook carries). PyGithub's ``WorkflowRun.raw_data`` is not
used: items of a list are "incomplete" objects, and reading their
``raw_data`` costs one more ``GET`` per run; a non-completing item class keeps
the answer as received.

``list_jobs`` sends what PyGithub's ``WorkflowRun.jobs()`` sends,
``GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs?per_page=N`` (GitHub's
default ``filter=latest``: the jobs of the run's latest attempt), paged the
same way, and returns each job as GitHub sent it (the object a
``workflow_job`` webhook carries). It reads the items with the same
non-completing class instead of calling ``jobs()`` on a ``WorkflowRun``: that
would need the run fetched again, and each ``WorkflowJob.raw_data`` would
cost one more ``GET``; the URL is built from the repository's ``url`` rather
than the run's ``jobs_url``, so that GitHub Enterprise Server and proxies
get the same treatment as the run listing.

PyGithub is set up so that the polling framework owns retries and waits:
``retry=None`` (no urllib3 retries: one attempt per request), an integer
``timeout`` per request (s) and ``seconds_between_requests`` (GitHub asks
integrators to send requests serially).

Rate limits (``X-RateLimit-Remaining`` / ``X-RateLimit-Reset``, read by
PyGithub from every answer into ``requester.rate_limiting`` and
``requester.rate_limiting_resettime``): once an answer says the budget is 0,
no further request is sent until the reset time; each call raises
:class:`~airis_mon.errors.TransientError` saying when the budget resets. A
refused request (403 or 429 with ``X-RateLimit-Remaining: 0``, PyGithub's
``RateLimitExceededException``, or a secondary limit with ``Retry-After``) is
a ``TransientError`` too and blocks requests the same way.

Other errors: connection errors, timeouts, 408 and 5xx are ``TransientError``;
401 (bad token), other 403s, 404 (repository missing or invisible to the
token), other 4xx and unreadable answers (bad JSON, a proxy's HTML page) are
:class:`~airis_mon.errors.PermanentError`. Messages
name the call, the status and GitHub's message, never the token.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import requests
from github import Auth, Github
from github.GithubException import GithubException
from github.GithubObject import NonCompletableGithubObject
from github.PaginatedList import PaginatedList
from github.Requester import Requester

from airis_mon.errors import PermanentError, TransientError
from airis_mon.timeutil import ms_to_iso
from sources.normalize_util import as_str, time_ms

__all__ = ["MAX_JOBS", "MAX_RUNS", "USER_AGENT", "GithubClient", "translate_error"]

log = logging.getLogger(__name__)

#: A bound on the runs read from one repository in one call, against a server that keeps paging.
MAX_RUNS = 10_000
#: A bound on the jobs read from one run (GitHub allows 256 per matrix), against a server that keeps paging.
MAX_JOBS = 1_000
USER_AGENT = "airis-mon"
_RETRY_STATUSES = frozenset({408})
_HINTS = {
    401: " (check the token)",
    403: " (check the token's access: Actions read permission on the repository)",
    404: " (repository missing, or not visible to the token)",
}


def _header(headers: Any, name: str) -> str | None:
    """A response header (PyGithub lower-cases their names)."""
    return as_str((headers or {}).get(name.lower())) if isinstance(headers, dict) else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _message(error: Any) -> str:
    """GitHub's ``message`` of an error answer, on one line, at most 200 characters."""
    data = getattr(error, "data", None)
    message = as_str(data.get("message")) if isinstance(data, dict) else as_str(data)
    return " ".join((message or "").split())[:200]


def _until_text(until_s: float, now_s: float) -> str:
    return f"resets at {ms_to_iso(int(until_s * 1000))} (in {max(0, round(until_s - now_s))} s)"


def _rate_limited_until(status: int, headers: Any, message: str, now_s: float) -> float | None:
    """When a refused request may be sent again (epoch s); None when the refusal is not a rate limit."""
    remaining = _header(headers, "X-RateLimit-Remaining")
    reset = _number(_header(headers, "X-RateLimit-Reset"))
    retry_after = _number(_header(headers, "Retry-After"))
    limited = status == 429 or remaining == "0" or Requester.isRateLimitError(message)
    if status not in (403, 429) or not limited:
        return None
    if retry_after is not None:
        return now_s + retry_after
    if remaining == "0" and reset is not None:
        return reset
    return now_s + 60  # GitHub: without either header, wait at least a minute


def translate_error(error: BaseException, action: str) -> TransientError | PermanentError:
    """The AIRIS error for a failure of ``action`` (see the module docstring)."""
    if isinstance(error, GithubException):
        status = int(error.status or 0)
        now_s = time.time()
        until = _rate_limited_until(status, error.headers, _message(error), now_s)
        if until is not None:
            return TransientError(f"{action}: HTTP {status} rate limit exceeded; {_until_text(until, now_s)}")
        message = _message(error)
        text = f"{action}: HTTP {status} {message}".rstrip()
        if status in _RETRY_STATUSES or status >= 500:
            return TransientError(text)
        return PermanentError(text + _HINTS.get(status, ""))
    if isinstance(error, requests.exceptions.RequestException | OSError):  # refused, reset, timeouts
        return TransientError(f"{action}: {type(error).__name__}: {error}"[:400])
    return PermanentError(f"{action}: unreadable answer: {type(error).__name__}: {error}"[:400])  # e.g. bad JSON


class _RunJson(NonCompletableGithubObject):
    """A list item (a run or a job) kept as received: its ``raw_data`` never sends a request."""

    def _initAttributes(self) -> None:  # noqa: N802 (PyGithub's hook names)
        pass

    def _useAttributes(self, attributes: Any) -> None:  # noqa: N802
        pass


class GithubClient:
    """The GitHub calls the ``github`` source makes; see the module docstring."""

    def __init__(self, base_url: str, token: str | None = None, page_size: int = 100, timeout_s: int = 30,
                 request_interval_s: float = 0.25):  # fmt: skip
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._page_size = page_size
        self._timeout_s = timeout_s
        self._request_interval_s = request_interval_s
        self._github: Any = None
        self._repos: dict[str, Any] = {}
        self._blocked_until_s = 0.0  # set by refused requests (secondary limits, Retry-After)

    def connect(self) -> None:
        """Create the PyGithub client (no request is sent) unless it exists."""
        if self._github is not None:
            return
        self._github = Github(
            base_url=self._base_url,
            auth=Auth.Token(self._token) if self._token else None,
            timeout=self._timeout_s,
            per_page=self._page_size,
            user_agent=USER_AGENT,
            retry=None,  # urllib3 retries off: ReadFromPoller's backoff retries whole polls
            seconds_between_requests=self._request_interval_s or None,
        )
        requester = self._github.requester
        send = requester.requestJsonAndCheck

        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._check_budget()
            return send(*args, **kwargs)

        requester.requestJsonAndCheck = guarded  # every REST call of PyGithub, list pages included

    def close(self) -> None:
        if self._github is not None:
            self._github.close()
        self._github = None
        self._repos.clear()

    def rate_limit(self) -> tuple[int, int, int]:
        """(remaining, limit, reset epoch s) from the last answer; (-1, -1, 0) before any."""
        self.connect()
        requester = self._github.requester
        remaining, limit = requester.rate_limiting
        return remaining, limit, requester.rate_limiting_resettime

    def _check_budget(self) -> None:
        """Raise TransientError instead of sending a request the rate limit would refuse."""
        remaining, limit, reset_s = self.rate_limit()
        now_s = time.time()
        until = max(self._blocked_until_s, float(reset_s) if remaining == 0 else 0.0)
        if until > now_s:
            budget = f"0 of {limit} requests left" if remaining == 0 else "requests refused"
            raise TransientError(f"GitHub rate limit: {budget}; {_until_text(until, now_s)}; no request sent")

    @contextlib.contextmanager
    def _vendor_errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (GithubException, requests.exceptions.RequestException, OSError, ValueError) as error:
            translated = translate_error(error, action)
            if isinstance(error, GithubException):
                until = _rate_limited_until(int(error.status or 0), error.headers, _message(error), time.time())
                self._blocked_until_s = max(self._blocked_until_s, until or 0.0)
            raise translated from None

    def _repository(self, full_name: str) -> Any:
        if full_name not in self._repos:
            with self._vendor_errors(f"get_repo {full_name}"):
                self._repos[full_name] = self._github.get_repo(full_name)
        return self._repos[full_name]

    def list_runs(self, full_name: str, cutoff_ms: int) -> list[dict]:
        """Workflow runs of ``owner/name`` created at or after ``cutoff_ms`` (epoch ms), newest first,
        as GitHub sent them. Runs without a readable ``created_at`` are kept."""
        self.connect()
        repository = self._repository(full_name)
        pages = PaginatedList(
            _RunJson,
            self._github.requester,
            f"{repository.url}/actions/runs",
            {"exclude_pull_requests": 1},
            list_item="workflow_runs",
        )
        action = f"list workflow runs of {full_name}"
        runs: list[dict] = []
        with self._vendor_errors(action):
            for item in pages:
                run = item.raw_data
                if not isinstance(run, dict):  # e.g. a proxy's HTML page answered with 200
                    raise PermanentError(f"{action}: unreadable answer (not a list of workflow run objects)")
                created_ms = time_ms(run.get("created_at"))
                if created_ms is not None and created_ms < cutoff_ms:
                    return runs
                runs.append(run)
                if len(runs) >= MAX_RUNS:
                    log.warning("list workflow runs of %s: stopped after %d runs", full_name, MAX_RUNS)
                    return runs
        return runs

    def list_jobs(self, full_name: str, run_id: int | str) -> list[dict]:
        """Jobs of the latest attempt of run ``run_id`` of ``owner/name``, as GitHub sent them."""
        self.connect()
        repository = self._repository(full_name)
        pages = PaginatedList(
            _RunJson, self._github.requester, f"{repository.url}/actions/runs/{run_id}/jobs", None, list_item="jobs"
        )
        action = f"list jobs of run {run_id} of {full_name}"
        jobs: list[dict] = []
        with self._vendor_errors(action):
            for item in pages:
                job = item.raw_data
                if not isinstance(job, dict):
                    raise PermanentError(f"{action}: unreadable answer (not a list of job objects)")
                jobs.append(job)
                if len(jobs) >= MAX_JOBS:
                    log.warning("%s: stopped after %d jobs", action, MAX_JOBS)
                    return jobs
        return jobs
