"""A loopback fake of the GitHub REST API for Actions workflow runs and jobs (127.0.0.1 only).

It serves what PyGithub asks for, with the shapes GitHub documents
(docs.github.com/rest/actions/workflow-runs, /rest/actions/workflow-jobs, /rest/repos/repos,
/rest/using-the-rest-api/rate-limits-for-the-rest-api):

- ``GET /repos/{owner}/{repo}`` -> the repository (``url`` points back at the fake);
  404 ``{"message": "Not Found", ...}`` for an unknown one.
- ``GET /repos/{owner}/{repo}/actions/runs?per_page=&page=&exclude_pull_requests=`` and
  ``GET /repositories/{id}/actions/runs?...`` (the form GitHub's ``Link`` URLs take)
  -> ``{"total_count": N, "workflow_runs": [...]}``, newest ``created_at`` first;
  ``per_page`` defaults to 30 and is capped at 100; ``Link`` carries ``next`` /
  ``last`` (and ``prev`` / ``first``) as GitHub writes them.
- ``GET /repos/{owner}/{repo}/actions/runs/{run_id}`` -> one run (counted, so that a
  test can prove no per-run request is made).
- ``GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs?per_page=&page=&filter=`` (and the
  ``/repositories/{id}/...`` form of its ``Link`` URLs) -> ``{"total_count": N, "jobs": [...]}``,
  paged like the runs, each job the object a ``workflow_job`` webhook carries (the octokit
  examples can be served as they are); ``filter=latest`` (the default) keeps the most
  recent execution of each job name, as a "re-run failed jobs" attempt shows the jobs
  it did not re-run with their old ``run_attempt``; ``filter=all`` keeps every execution;
  404 for a run the fake does not know.

Every answer carries ``X-RateLimit-Limit/Remaining/Used/Reset/Resource``; each
request spends one unit. With the budget at 0 a request gets
``rate_limit_status`` (403, or 429) ``{"message": "API rate limit exceeded ..."}``
with ``X-RateLimit-Remaining: 0``, as GitHub does. With ``token`` set, a request
without ``Authorization: token <token>`` (or ``Bearer``) gets 401 ``Bad credentials``.
``fail_with`` (e.g. 500, 502) answers every request with that status;
``secondary_retry_after`` answers with GitHub's secondary-limit 403 and ``Retry-After``;
``delay_s`` stalls every answer; ``list_body`` replaces the body of run listings
(e.g. a proxy's HTML page, truncated JSON); ``jobs_fail_with`` answers job listings only
with that status.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlencode, urlparse

from pydantic import SecretStr

from airis_mon.retry import RetryConfig
from sources.github.config import GithubConfig
from sources.polling import PollSettings
from tests.sinks.receivers import Receiver, Recorded

__all__ = ["TOKEN", "GithubFake", "iso"]

TOKEN = "ghp_airisMonTestToken0123456789abcdefABCD"
_DOCS = "https://docs.github.com/rest"
_RATE_LIMITED = (
    "API rate limit exceeded for user ID 41548062. If you reach out to GitHub Support for help, please include "
    "the request ID 0C8E:3E3F:1A2B3C:1B2C3D:6745A1B2."
)
_SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out "
    "to GitHub Support for help, please include the request ID 0C8E:3E3F:1A2B3C:1B2C3D:6745A1B3."
)
_STATUS_TEXT = {500: "Server Error", 502: "Server Error", 503: "Service Unavailable", 401: "Bad credentials"}


def iso(epoch_ms: int) -> str:
    """A GitHub timestamp: ISO 8601 UTC, whole seconds."""
    return datetime.fromtimestamp(epoch_ms // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(login: str, user_id: int) -> dict:
    return {
        "login": login,
        "id": user_id,
        "node_id": f"MDQ6VXNlcj{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "url": f"https://api.github.com/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": "User",
        "site_admin": False,
    }


class GithubFake(Receiver):
    """See the module docstring. Use as a context manager; :meth:`reset` between tests."""

    def __init__(self):
        self._lock = threading.Lock()
        super().__init__(self._respond)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.repositories: dict[str, int] = {}  # full_name -> id
            self.runs: dict[str, list[dict]] = {}
            self.jobs: dict[tuple[str, str], list[dict]] = {}  # (full_name, run id) -> jobs
            self.token: str | None = TOKEN
            self.limit = 5000
            self.remaining = 5000
            self.reset_at = int(time.time()) + 3600
            self.rate_limit_status = 403
            self.fail_with: int | None = None
            self.secondary_retry_after: int | None = None
            self.delay_s = 0.0
            self.list_body: bytes | None = None
            self.jobs_fail_with: int | None = None
            self.requests.clear()

    # --- test helpers -------------------------------------------------------------------------------

    def add_repository(self, full_name: str) -> int:
        repo_id = self.repositories.setdefault(full_name, 300_029_405 + len(self.repositories))
        self.runs.setdefault(full_name, [])
        return repo_id

    def add_run(self, full_name: str, run_id: int, name: str, created_ms: int, started_ms: int | None = None,
                updated_ms: int | None = None, status: str = "completed", conclusion: str | None = "success",
                branch: str = "main", actor: str = "mona", attempt: int = 1, event: str = "push",
                path: str | None = None, triggering_actor: str | None = None) -> dict:  # fmt: skip
        """Add (or replace) one workflow run with every documented field; returns it."""
        repo_id = self.add_repository(full_name)
        owner, repo = full_name.split("/")
        started_ms = created_ms if started_ms is None else started_ms
        updated_ms = started_ms if updated_ms is None else updated_ms
        path = path or f".github/workflows/{name.lower().replace(' ', '-')}.yml"
        workflow_id = 159_000 + sum(map(ord, path))
        api = f"https://api.github.com/repos/{full_name}"
        repository = {"id": repo_id, "node_id": f"R_{repo_id}", "name": repo, "full_name": full_name,
                      "private": True, "owner": _user(owner, 41_548_062) | {"type": "Organization"},
                      "html_url": f"https://github.com/{full_name}", "url": api}  # fmt: skip
        run = {
            "id": run_id,
            "name": name,
            "node_id": f"WFR_kwLO{run_id}",
            "head_branch": branch,
            "head_sha": f"{run_id:040x}"[-40:],
            "path": path,
            "display_title": f"{name} #{run_id % 1000}",
            "run_number": run_id % 1000,
            "event": event,
            "status": status,
            "conclusion": conclusion,
            "workflow_id": workflow_id,
            "check_suite_id": run_id * 10,
            "check_suite_node_id": f"CS_kwDO{run_id * 10}",
            "url": f"{api}/actions/runs/{run_id}",
            "html_url": f"https://github.com/{full_name}/actions/runs/{run_id}",
            "pull_requests": [],
            "created_at": iso(created_ms),
            "updated_at": iso(updated_ms),
            "actor": _user(actor, 21_031_067),
            "run_attempt": attempt,
            "referenced_workflows": [],
            "run_started_at": iso(started_ms),
            "triggering_actor": _user(triggering_actor or actor, 21_031_068),
            "jobs_url": f"{api}/actions/runs/{run_id}/jobs",
            "logs_url": f"{api}/actions/runs/{run_id}/logs",
            "check_suite_url": f"{api}/check-suites/{run_id * 10}",
            "artifacts_url": f"{api}/actions/runs/{run_id}/artifacts",
            "cancel_url": f"{api}/actions/runs/{run_id}/cancel",
            "rerun_url": f"{api}/actions/runs/{run_id}/rerun",
            "previous_attempt_url": f"{api}/actions/runs/{run_id}/attempts/{attempt - 1}" if attempt > 1 else None,
            "workflow_url": f"{api}/actions/workflows/{workflow_id}",
            "head_commit": {
                "id": f"{run_id:040x}"[-40:],
                "tree_id": f"{run_id + 1:040x}"[-40:],
                "message": f"Change {run_id}\n\nDetails.",
                "timestamp": iso(created_ms - 5000),
                "author": {"name": "Mona Octocat", "email": "mona@example.com"},
                "committer": {"name": "GitHub", "email": "noreply@github.com"},
            },
            "repository": repository,
            "head_repository": repository,
        }
        self.put_run(full_name, run)
        return run

    def put_run(self, full_name: str, run: dict) -> None:
        """Add ``run`` as is (e.g. a recorded webhook's ``workflow_run``), replacing one with its id."""
        self.add_repository(full_name)
        with self._lock:
            self.runs[full_name] = [r for r in self.runs[full_name] if r["id"] != run["id"]] + [run]

    def add_job(self, full_name: str, run: dict, job_id: int, name: str, started_ms: int, completed_ms: int | None,
                conclusion: str | None = "success", labels: tuple[str, ...] = ("ubuntu-latest",),
                created_ms: int | None = None, attempt: int | None = None, runner: str | None = "GitHub Actions 5",
                runner_group: str | None = "GitHub Actions") -> dict:  # fmt: skip
        """Add (or replace) one job of ``run`` (an :meth:`add_run` result) with every documented field;
        ``completed_ms=None`` leaves it in progress. Returns it."""
        api = f"https://api.github.com/repos/{full_name}"
        job = {
            "id": job_id,
            "run_id": run["id"],
            "workflow_name": run["name"],
            "head_branch": run["head_branch"],
            "run_url": f"{api}/actions/runs/{run['id']}",
            "run_attempt": run["run_attempt"] if attempt is None else attempt,
            "node_id": f"CR_kwDO{job_id}",
            "head_sha": run["head_sha"],
            "url": f"{api}/actions/jobs/{job_id}",
            "html_url": f"https://github.com/{full_name}/actions/runs/{run['id']}/job/{job_id}",
            "status": "completed" if completed_ms is not None else "in_progress",
            "conclusion": conclusion if completed_ms is not None else None,
            "created_at": iso(started_ms if created_ms is None else created_ms),
            "started_at": iso(started_ms),
            "completed_at": iso(completed_ms) if completed_ms is not None else None,
            "name": name,
            "steps": [
                {
                    "name": "Set up job",
                    "status": "completed",
                    "conclusion": "success",
                    "number": 1,
                    "started_at": iso(started_ms),
                    "completed_at": iso(started_ms + 1000),
                },
            ],
            "check_run_url": f"{api}/check-runs/{job_id}",
            "labels": list(labels),
            "runner_id": 5 if runner else None,
            "runner_name": runner,
            "runner_group_id": 2 if runner_group else None,
            "runner_group_name": runner_group,
        }
        self.put_job(full_name, job)
        return job

    def put_job(self, full_name: str, job: dict) -> None:
        """Add ``job`` as is (e.g. a recorded webhook's ``workflow_job``) to the jobs of its ``run_id``,
        replacing one with its id."""
        self.add_repository(full_name)
        with self._lock:
            key = (full_name, str(job["run_id"]))
            self.jobs[key] = [j for j in self.jobs.get(key, []) if j["id"] != job["id"]] + [job]

    def paths(self, prefix: str = "") -> list[str]:
        """Request paths (without query) starting with ``prefix``, in order."""
        return [p for p in (urlparse(r.path).path for r in self.requests) if p.startswith(prefix)]

    def queries(self, suffix: str) -> list[dict[str, str]]:
        """Query parameters of the requests whose path ends with ``suffix``."""
        found = []
        for request in self.requests:
            parsed = urlparse(request.path)
            if parsed.path.endswith(suffix):
                found.append({k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()})
        return found

    # --- serving ------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Request-Id": "0C8E:3E3F:1A2B3C:1B2C3D:6745A1B2",
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Used": str(self.limit - self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
            "X-RateLimit-Resource": "core",
        }

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None):
        body = {"message": message, "documentation_url": _DOCS, "status": str(status)}
        return status, self._headers() | (headers or {}), json.dumps(body).encode()

    def _respond(self, request: Recorded):
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            return self._answer(request)

    def _answer(self, request: Recorded):
        if self.token is not None and request.headers.get("authorization") not in (
            f"token {self.token}",
            f"Bearer {self.token}",
        ):
            return self._error(401, "Bad credentials")
        if self.remaining <= 0:
            return self._error(self.rate_limit_status, _RATE_LIMITED)
        self.remaining -= 1
        if self.secondary_retry_after is not None:
            return self._error(403, _SECONDARY, {"Retry-After": str(self.secondary_retry_after)})
        if self.fail_with is not None:
            return self._error(self.fail_with, _STATUS_TEXT.get(self.fail_with, "Error"))
        parsed = urlparse(request.path)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        parts = parsed.path.strip("/").split("/")
        by_id = {str(repo_id): name for name, repo_id in self.repositories.items()}
        if parts[0] == "repositories" and len(parts) >= 2 and parts[1] in by_id:
            full_name, rest = by_id[parts[1]], parts[2:]
        elif parts[0] == "repos" and len(parts) >= 3 and f"{parts[1]}/{parts[2]}" in self.repositories:
            full_name, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return self._error(404, "Not Found")
        if not rest:
            return 200, self._headers(), json.dumps(self._repository(full_name)).encode()
        if rest == ["actions", "runs"]:
            if self.list_body is not None:
                return 200, self._headers() | {"Content-Type": "text/html; charset=utf-8"}, self.list_body
            return self._list_runs(full_name, query)
        if rest[:2] == ["actions", "runs"] and len(rest) == 3:
            for run in self.runs[full_name]:
                if str(run["id"]) == rest[2]:
                    return 200, self._headers(), json.dumps(run).encode()
        if rest[:2] == ["actions", "runs"] and len(rest) == 4 and rest[3] == "jobs":
            if self.jobs_fail_with is not None:
                return self._error(self.jobs_fail_with, _STATUS_TEXT.get(self.jobs_fail_with, "Error"))
            return self._list_jobs(full_name, rest[2], query)
        return self._error(404, "Not Found")

    def _repository(self, full_name: str) -> dict:
        owner, name = full_name.split("/")
        return {
            "id": self.repositories[full_name],
            "name": name,
            "full_name": full_name,
            "private": True,
            "owner": _user(owner, 41_548_062) | {"type": "Organization"},
            "html_url": f"https://github.com/{full_name}",
            "url": f"{self.url}/repos/{full_name}",
            "default_branch": "main",
            "visibility": "private",
        }

    def _page(self, items: list[dict], query: dict[str, str], base: str, list_key: str):
        """One page of ``items`` as GitHub pages lists: ``per_page`` (default 30, at most 100),
        ``page``, a ``Link`` header with ``next``/``last`` and ``prev``/``first`` URLs on ``base``."""
        try:
            per_page = min(100, max(1, int(query.get("per_page", "30"))))
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            return self._error(422, "Invalid request.")
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(items) // per_page))
        keep = {k: v for k, v in query.items() if k not in ("page",)}

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode(keep | {"page": number})}>; rel="{rel}"'

        links = []
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links = [link(page - 1, "prev"), link(1, "first"), *links]
        headers = self._headers() | ({"Link": ", ".join(links)} if links else {})
        body = {"total_count": len(items), list_key: chunk}
        return 200, headers, json.dumps(body).encode()

    def _list_runs(self, full_name: str, query: dict[str, str]):
        runs = sorted(self.runs[full_name], key=lambda r: (r["created_at"], r["id"]), reverse=True)
        if query.get("exclude_pull_requests") in ("1", "true"):
            runs = [{k: v for k, v in run.items() if k != "pull_requests"} for run in runs]
        base = f"{self.url}/repositories/{self.repositories[full_name]}/actions/runs"
        return self._page(runs, query, base, "workflow_runs")

    def _list_jobs(self, full_name: str, run_id: str, query: dict[str, str]):
        if not any(str(run["id"]) == run_id for run in self.runs[full_name]) and (full_name, run_id) not in self.jobs:
            return self._error(404, "Not Found")
        jobs = list(self.jobs.get((full_name, run_id), []))
        if query.get("filter", "latest") == "latest":
            newest: dict[str, dict] = {}
            for job in jobs:
                if job["name"] not in newest or (job.get("run_attempt") or 1) > (
                    newest[job["name"]].get("run_attempt") or 1
                ):
                    newest[job["name"]] = job
            jobs = [job for job in jobs if newest[job["name"]] is job]
        elif query.get("filter") != "all":
            return self._error(422, "Invalid request.")
        base = f"{self.url}/repositories/{self.repositories[full_name]}/actions/runs/{run_id}/jobs"
        return self._page(jobs, query, base, "jobs")


#: The repository the tests poll, and a retry policy fast enough for tests.
REPO = "octo-org/fraud-model"
FAST = RetryConfig(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.002)


def poller_config(fake: GithubFake, **overrides) -> GithubConfig:
    """A ``github`` source config polling ``REPO`` on ``fake`` (fields overridable)."""
    values = {"name": "gh", "base_url": fake.url, "token": SecretStr(TOKEN), "repositories": [REPO],
              "request_interval_s": 0, "timeout_s": 5, "poll": PollSettings(retry=FAST)}  # fmt: skip
    return GithubConfig(**(values | overrides))
