"""GitHub objects -> public-contract payloads: webhook deliveries, polled workflow runs and their jobs.

One normalizer serves both paths, so that a run or a job seen through a
webhook (``POST /github/webhook`` of the gateway) and the same run or job seen
by the ``github`` poller give the same events and metrics:

- :func:`normalize_github` (``X-GitHub-Event`` name, decoded body): what the
  gateway calls for each verified delivery;
- :func:`completed_run_payloads` (one run of the REST API's
  ``GET /repos/{owner}/{repo}/actions/runs``): what the poller calls; it wraps
  the run the way GitHub's ``workflow_run`` webhook does
  (``{"action": "completed", "workflow_run": run, "repository": run["repository"]}``);
- :func:`completed_job_payloads` (one job of
  ``GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs``, the object a
  ``workflow_job`` webhook carries): what the poller calls for each job of a
  completed run; it wraps the job the way the ``workflow_job`` webhook does
  (``{"action": "completed", "workflow_job": job, "repository": run["repository"]}``).

``workflow_run`` gives a ``workflow_run`` event and, once completed, a
``workflow_duration`` metric (``updated_at - run_started_at``). ``workflow_job``
(every action: ``queued``, ``waiting``, ``in_progress``, ``completed``) gives a
``workflow_job`` event (severity ``error`` for a failure, timeout or startup
failure, ``warning`` for a cancellation, else ``info``) and, for ``completed``
with both times known, a ``job_duration`` metric (``completed_at - started_at``)
and a ``job_queue_duration`` metric (``started_at - created_at``, when known),
tagged repository, workflow, job, conclusion, run_id and the runner ``labels``
(sorted, joined with ``,``).

Times are epoch milliseconds; ``duration_s``, ``queue_s`` and the metrics are
seconds (unit ``s``). Never raises: missing fields become ``None``, and times
missing from the body become ``received_ms``.
"""

from __future__ import annotations

import re
from typing import Any

from sources.normalize_util import as_dict, as_str, event, first_line, first_time_ms, time_ms

__all__ = [
    "EVENT_SOURCE",
    "FAILED_CONCLUSIONS",
    "JOB_ERROR_CONCLUSIONS",
    "JOB_WARNING_CONCLUSIONS",
    "METRIC_SOURCE",
    "completed_job_payloads",
    "completed_run_payloads",
    "normalize_github",
]

#: ``source`` of the events.
EVENT_SOURCE = "github"
#: ``source`` of the ``workflow_duration`` metrics payloads (the payload contract's name for GitHub Actions data).
METRIC_SOURCE = "github_actions"
#: Conclusions that make a ``workflow_run`` event a ``warning``.
FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "cancelled", "startup_failure"})
#: Tags of ``workflow_duration``, read from the event's data.
DURATION_TAGS = ("repository", "workflow", "status", "conclusion", "branch", "actor")
#: Conclusions that make a ``workflow_job`` event an ``error``.
JOB_ERROR_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})
#: Conclusions that make a ``workflow_job`` event a ``warning``.
JOB_WARNING_CONCLUSIONS = frozenset({"cancelled"})
#: Tags of ``job_duration`` and ``job_queue_duration``, read from the event's data (``labels`` joined).
JOB_TAGS = ("repository", "workflow", "job", "conclusion", "run_id", "labels")


def _login(user: Any) -> str | None:
    return as_str(as_dict(user).get("login"))


def _repository(body: dict, *fallbacks: Any) -> str | None:
    for candidate in (body.get("repository"), *fallbacks):
        name = as_str(as_dict(candidate).get("full_name"))
        if name:
            return name
    return None


def _workflow_run(body: dict, received_ms: int) -> list[dict]:
    run = as_dict(body.get("workflow_run"))
    action = as_str(body.get("action"))
    conclusion = as_str(run.get("conclusion"))
    status = as_str(run.get("status"))
    started_ms = time_ms(run.get("run_started_at"))
    updated_ms = time_ms(run.get("updated_at"))
    data: dict[str, Any] = {
        "repository": _repository(body, run.get("repository")),
        "workflow": as_str(run.get("name")) or as_str(as_dict(body.get("workflow")).get("name")),
        "action": action,
        "run_number": run.get("run_number"),
        "run_id": run.get("id"),
        "run_attempt": run.get("run_attempt"),
        "status": status,
        "conclusion": conclusion,
        "branch": as_str(run.get("head_branch")),
        "actor": _login(run.get("actor")) or _login(run.get("triggering_actor")) or _login(body.get("sender")),
        "event": as_str(run.get("event")),
        "html_url": as_str(run.get("html_url")),
    }
    duration_s = None
    if started_ms is not None and updated_ms is not None and updated_ms >= started_ms:
        duration_s = (updated_ms - started_ms) / 1000
        data["duration_s"] = duration_s
    timestamp = first_time_ms(received_ms, run.get("updated_at"), run.get("run_started_at"), run.get("created_at"))
    severity = "warning" if conclusion in FAILED_CONCLUSIONS else "info"
    payloads = [event(timestamp, "workflow_run", EVENT_SOURCE, severity, data)]

    completed = action == "completed" or status == "completed"
    if completed and duration_s is not None:
        tags = {key: data[key] or "" for key in DURATION_TAGS}
        metric = {"name": "workflow_duration", "value": duration_s, "unit": "s", "tags": tags}
        payloads.append({"timestamp": timestamp, "source": METRIC_SOURCE, "metrics": [metric]})
    return payloads


def _labels(value: Any) -> list[str]:
    """The runner labels of a job: its text items, in GitHub's order."""
    if not isinstance(value, list):
        return []
    return [label for label in (as_str(item) for item in value) if label]


def _seconds_between(start_ms: int | None, end_ms: int | None) -> float | None:
    if start_ms is None or end_ms is None or end_ms < start_ms:
        return None
    return (end_ms - start_ms) / 1000


def _job_severity(conclusion: str | None) -> str:
    if conclusion in JOB_ERROR_CONCLUSIONS:
        return "error"
    if conclusion in JOB_WARNING_CONCLUSIONS:
        return "warning"
    return "info"


def _workflow_job(body: dict, received_ms: int) -> list[dict]:
    job = as_dict(body.get("workflow_job"))
    action = as_str(body.get("action"))
    conclusion = as_str(job.get("conclusion"))
    labels = _labels(job.get("labels"))
    data: dict[str, Any] = {
        "repository": _repository(body),
        "workflow": as_str(job.get("workflow_name")),
        "job": as_str(job.get("name")),
        "job_id": job.get("id"),
        "action": action,
        "run_id": job.get("run_id"),
        "run_attempt": job.get("run_attempt"),
        "status": as_str(job.get("status")),
        "conclusion": conclusion,
        "branch": as_str(job.get("head_branch")),
        "head_sha": as_str(job.get("head_sha")),
        "runner_name": as_str(job.get("runner_name")),
        "runner_group": as_str(job.get("runner_group_name")),
        "labels": labels,
        "created_at": as_str(job.get("created_at")),
        "started_at": as_str(job.get("started_at")),
        "completed_at": as_str(job.get("completed_at")),
        "html_url": as_str(job.get("html_url")),
    }
    created_ms, started_ms, completed_ms = (
        time_ms(job.get(key)) for key in ("created_at", "started_at", "completed_at")
    )
    timestamp = first_time_ms(received_ms, job.get("completed_at"), job.get("started_at"), job.get("created_at"))
    duration_s = queue_s = None
    if action == "completed":
        duration_s = _seconds_between(started_ms, completed_ms)
        queue_s = _seconds_between(created_ms, started_ms)
        if duration_s is not None:
            data["duration_s"] = duration_s
        if queue_s is not None:
            data["queue_s"] = queue_s
    payloads = [event(timestamp, "workflow_job", EVENT_SOURCE, _job_severity(conclusion), data)]

    if duration_s is not None:
        tags = {key: as_str(data[key]) or "" for key in JOB_TAGS if key != "labels"}
        tags["labels"] = ",".join(sorted(labels))
        metrics = [{"name": "job_duration", "value": duration_s, "unit": "s", "tags": tags}]
        if queue_s is not None:
            metrics.append({"name": "job_queue_duration", "value": queue_s, "unit": "s", "tags": dict(tags)})
        payloads.append({"timestamp": completed_ms, "source": METRIC_SOURCE, "metrics": metrics})
    return payloads


def _push(body: dict, received_ms: int) -> list[dict]:
    ref = as_str(body.get("ref"))
    head = as_dict(body.get("head_commit"))
    commits = body.get("commits")
    pusher = as_dict(body.get("pusher"))
    data: dict[str, Any] = {
        "repository": _repository(body),
        "ref": ref,
        "branch": ref.removeprefix("refs/heads/") if ref and ref.startswith("refs/heads/") else None,
        "before": as_str(body.get("before")),
        "after": as_str(body.get("after")),
        "pusher": as_str(pusher.get("name")) or _login(body.get("sender")),
        "commits": len(commits) if isinstance(commits, list) else 0,
        "head_commit": first_line(head.get("message")),
        "created": body.get("created") is True,
        "deleted": body.get("deleted") is True,
        "forced": body.get("forced") is True,
    }
    timestamp = first_time_ms(received_ms, head.get("timestamp"), as_dict(body.get("repository")).get("pushed_at"))
    return [event(timestamp, "push", EVENT_SOURCE, "info", data)]


def _pull_request(body: dict, received_ms: int) -> list[dict]:
    pull = as_dict(body.get("pull_request"))
    number = body.get("number", pull.get("number"))
    data: dict[str, Any] = {
        "repository": _repository(body, as_dict(pull.get("base")).get("repo")),
        "action": as_str(body.get("action")),
        "number": number,
        "title": first_line(pull.get("title")),
        "state": as_str(pull.get("state")),
        "merged": pull.get("merged") is True,
        "base": as_str(as_dict(pull.get("base")).get("ref")),
        "head": as_str(as_dict(pull.get("head")).get("ref")),
        "user": _login(pull.get("user")),
        "html_url": as_str(pull.get("html_url")),
    }
    timestamp = first_time_ms(received_ms, pull.get("updated_at"), pull.get("created_at"))
    return [event(timestamp, "pull_request", EVENT_SOURCE, "info", data)]


def _event_name(event_name: Any) -> str:
    """``X-GitHub-Event`` reduced to ``[a-z0-9_]``, at most 64 characters."""
    name = re.sub(r"[^a-z0-9_]+", "_", (as_str(event_name) or "").strip().lower()).strip("_")
    return name[:64] or "unknown"


def normalize_github(event_name: str, body: Any, received_ms: int) -> list[dict]:
    """Payloads of the public contract for one GitHub webhook delivery.

    ``event_name`` is the ``X-GitHub-Event`` header. ``workflow_run`` gives an
    event (severity ``warning`` when the conclusion is a failure, timeout or
    cancellation) and, for a completed run whose start and end are known, a
    ``workflow_duration`` metrics payload (seconds, source ``github_actions``,
    tags repository, workflow, status, conclusion, branch, actor);
    ``workflow_job`` (every action) gives a ``workflow_job`` event (severity
    ``error`` for a failed, timed-out or not started job, ``warning`` for a
    cancelled one) and, for ``completed`` with start and end known, one
    metrics payload at ``completed_at`` with ``job_duration`` and
    ``job_queue_duration`` (seconds, source ``github_actions``, tags
    repository, workflow, job, conclusion, run_id, labels);
    ``push`` and ``pull_request`` give one event each; ``ping`` gives
    nothing; any other event gives one ``github_<event>`` event with the
    repository, action and sender. Never raises: missing fields become
    ``None``, and times missing from the body become ``received_ms``.
    """
    name = _event_name(event_name)
    payload = body if isinstance(body, dict) else {}
    if name == "ping":
        return []
    if name == "workflow_run":
        return _workflow_run(payload, received_ms)
    if name == "workflow_job":
        return _workflow_job(payload, received_ms)
    if name == "push":
        return _push(payload, received_ms)
    if name == "pull_request":
        return _pull_request(payload, received_ms)
    data = {
        "repository": _repository(payload),
        "action": as_str(payload.get("action")),
        "sender": _login(payload.get("sender")),
    }
    return [event(int(received_ms), f"github_{name}", EVENT_SOURCE, "info", data)]


def completed_run_payloads(run: dict, received_ms: int) -> list[dict]:
    """What a ``workflow_run`` webhook with action ``completed`` gives for ``run``, a
    workflow run object of the REST API (the same object the webhook carries)."""
    body = {"action": "completed", "workflow_run": run, "repository": as_dict(run.get("repository"))}
    return normalize_github("workflow_run", body, received_ms)


def completed_job_payloads(job: dict, run: dict, received_ms: int) -> list[dict]:
    """What a ``workflow_job`` webhook with action ``completed`` gives for ``job``, a job
    object of the REST API (the object the webhook carries) of the workflow run ``run``.
    The run gives the repository, and the workflow name when the job has none."""
    body = {"action": "completed", "workflow_job": job, "repository": as_dict(run.get("repository"))}
    if not as_str(job.get("workflow_name")):
        body["workflow_job"] = job | {"workflow_name": run.get("name")}
    return normalize_github("workflow_job", body, received_ms)
