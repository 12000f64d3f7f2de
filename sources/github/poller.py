"""The ``github`` poller: GitHub Actions workflow runs -> the webhook path's payloads (no Beam).

Each poll lists the workflow runs of every configured repository created in
the last ``lookback_s`` seconds (newest first, paged; see
:mod:`sources.github.client`), keeps those of the configured ``workflows``
(a run's ``name``, its workflow file's path, or that file's name) and, for
every run that *completed* and was not reported before, emits what the
gateway emits for a ``workflow_run`` webhook with action ``completed``
(:func:`sources.github.events.completed_run_payloads`):

- a ``workflow_run`` event (source ``github``; severity ``warning`` for a
  failure, timeout, cancellation or startup failure, else ``info``) at the
  run's ``updated_at``, with repository, workflow, run id/number/attempt,
  status, conclusion, branch, actor, event, html_url and ``duration_s``;
- a ``workflow_duration`` metric (``s``, ``updated_at - run_started_at``,
  source ``github_actions``) tagged repository, workflow, status, conclusion,
  branch, actor;
- with ``jobs`` (the default), for each completed job of the run's attempt
  (``GET .../actions/runs/{run_id}/jobs``, one more request per newly
  completed run), what the gateway emits for a ``workflow_job`` webhook with
  action ``completed`` (:func:`sources.github.events.completed_job_payloads`):
  a ``workflow_job`` event (severity ``error`` for a failure, timeout or
  startup failure, ``warning`` for a cancellation, else ``info``) with job
  id/name, workflow, run id/attempt, branch, head sha, status, conclusion,
  runner name/group, labels, times, html_url, ``duration_s`` and ``queue_s``,
  and ``job_duration`` (``completed_at - started_at``) and
  ``job_queue_duration`` (``started_at - created_at``) metrics (``s``) tagged
  repository, workflow, job, conclusion, run_id, labels. Jobs of the run's
  earlier attempts (carried over by "re-run failed jobs") are left out: they
  were reported with their own attempt.

With ``environment`` set, an ``environment`` tag (and event field) is added;
left empty, the payloads are identical to the webhook ones, so both paths
feed the same series.

Memory: a run is reported once per attempt (key ``owner/name#id#run_attempt``;
a re-run is a new attempt and is reported when it completes), and its jobs
with it, so a job is reported once too. The first poll
with nothing remembered reports every completed run of the lookback window.
With ``state_file`` the memory is that JSON file, read at every poll and
replaced atomically after it, so a new poller (the next bounded run, another
worker) does not repeat runs; without it the memory lives in the poller only.
Entries are forgotten once their run was created before the lookback (it is
no longer listed). Delivery is at most once: the memory is saved before the
payloads are handed on, and a failed poll (any repository, any jobs
listing) saves nothing.
"""

from __future__ import annotations

import os

from airis_mon.errors import PermanentError
from sources.client_poller import ClientPoller
from sources.github.client import GithubClient
from sources.github.config import GithubConfig
from sources.github.events import completed_job_payloads, completed_run_payloads
from sources.normalize_util import as_dict, as_str, time_ms
from sources.state_file import read_state, write_state

__all__ = ["GithubPoller", "load_memory", "run_jobs", "run_key", "save_memory", "watched"]

_STATE_FILE_VERSION = 1


def run_key(repository: str, run: dict) -> str:
    """The memory key of one attempt of one run: ``owner/name#id#attempt``."""
    return f"{repository}#{run.get('id')}#{run.get('run_attempt') or 1}"


def watched(run: dict, workflows: list[str] | None) -> bool:
    """Whether ``run`` belongs to one of ``workflows`` (None: every workflow), matched on the
    run's ``name``, its workflow file's ``path`` (without an ``@ref`` suffix) or that file's name."""
    if workflows is None:
        return True
    path = (as_str(run.get("path")) or "").split("@", 1)[0]
    names = {as_str(run.get("name")), path, os.path.basename(path)} - {None, ""}
    return not names.isdisjoint(workflows)


def run_jobs(run: dict, jobs: list[dict]) -> list[dict]:
    """The completed jobs of ``jobs`` that belong to ``run``'s attempt, by completion time then id."""
    attempt = run.get("run_attempt") or 1
    kept = [
        job
        for job in jobs
        if as_str(job.get("status")) == "completed" and (job.get("run_attempt") or attempt) == attempt
    ]
    return sorted(kept, key=lambda job: (time_ms(job.get("completed_at")) or 0, as_str(job.get("id")) or ""))


def load_memory(path: str) -> dict[str, int] | None:
    """Reported runs in ``path`` (key -> created_at epoch ms); None when the file does not exist yet."""
    document = read_state(path, "github", _STATE_FILE_VERSION)
    if document is None:
        return None
    runs = document.get("runs")
    if not isinstance(runs, dict) or not all(isinstance(v, int) for v in runs.values()):
        raise PermanentError(f"state file {path} is not a github state file (bad 'runs'); delete it to start over")
    return dict(runs)


def save_memory(path: str, memory: dict[str, int]) -> None:
    """Remember the reported runs (atomically)."""
    write_state(path, {"runs": dict(sorted(memory.items()))}, _STATE_FILE_VERSION)


class GithubPoller(ClientPoller):
    """Polls GitHub Actions runs; see the module docstring. ``GithubPoller(config)`` is the
    factory :class:`sources.polling.ReadFromPoller` needs (pickle it with ``functools.partial``)."""

    def __init__(self, config: GithubConfig):
        self._config = config
        self._memory: dict[str, int] | None = None  # without a state file

    def make_client(self) -> GithubClient:
        config = self._config
        token = config.token.get_secret_value() if config.token is not None else None
        return GithubClient(config.base_url, token, config.page_size, config.timeout_s,
                            config.request_interval_s)  # fmt: skip

    def poll(self, now_ms: int) -> list[dict]:
        config = self._config
        cutoff_ms = now_ms - config.lookback_s * 1000
        listed = {repository: self.client.list_runs(repository, cutoff_ms) for repository in config.repositories}
        memory = (load_memory(config.state_file) if config.state_file else self._memory) or {}
        kept = {key: created for key, created in memory.items() if created >= cutoff_ms}
        completed: list[tuple[int, str, str, dict]] = []
        for repository, runs in listed.items():
            for run in runs:
                if as_str(run.get("status")) != "completed" or not watched(run, config.workflows):
                    continue
                key = run_key(repository, run)
                if key not in memory:
                    completed.append((time_ms(run.get("updated_at")) or now_ms, key, repository, run))
                kept[key] = time_ms(run.get("created_at")) or now_ms
        completed.sort(key=lambda item: item[:2])
        jobs = [self._jobs(repository, run) for _, _, repository, run in completed]  # before the memory is saved
        if config.state_file:
            save_memory(config.state_file, kept)
        else:
            self._memory = kept
        payloads: list[dict] = []
        for (_, _, _, run), attempt_jobs in zip(completed, jobs, strict=True):
            payloads.extend(self._with_environment(completed_run_payloads(run, now_ms)))
            for job in attempt_jobs:
                payloads.extend(self._with_environment(completed_job_payloads(job, run, now_ms)))
        return payloads

    def _jobs(self, repository: str, run: dict) -> list[dict]:
        """The completed jobs of ``run``'s attempt ([] with ``jobs`` off or a run without an id)."""
        run_id = as_str(run.get("id"))
        if not self._config.jobs or not run_id:
            return []
        return run_jobs(run, self.client.list_jobs(repository, run_id))

    def _with_environment(self, payloads: list[dict]) -> list[dict]:
        environment = self._config.environment
        if not environment:
            return payloads
        for payload in payloads:
            for metric in payload.get("metrics", []):
                metric["tags"]["environment"] = environment
            if "event_type" in payload:
                as_dict(payload.get("data"))["environment"] = environment
        return payloads
