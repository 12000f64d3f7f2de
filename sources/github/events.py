"""GitHub objects -> public-contract payloads: webhook deliveries and polled workflow runs.

One normalizer serves both paths, so that a run seen through a webhook
(``POST /github/webhook`` of the gateway) and the same run seen by the
``github`` poller give the same ``workflow_run`` event and the same
``workflow_duration`` metric:

- :func:`normalize_github` (``X-GitHub-Event`` name, decoded body): what the
  gateway calls for each verified delivery;
- :func:`completed_run_payloads` (one run of the REST API's
  ``GET /repos/{owner}/{repo}/actions/runs``): what the poller calls; it wraps
  the run the way GitHub's ``workflow_run`` webhook does
  (``{"action": "completed", "workflow_run": run, "repository": run["repository"]}``).

Times are epoch milliseconds; ``duration_s`` and ``workflow_duration`` are
seconds (``updated_at - run_started_at``). Never raises: missing fields
become ``None``, and times missing from the body become ``received_ms``.
"""

from __future__ import annotations

import re
from typing import Any

from sources.normalize_util import as_dict, as_str, event, first_line, first_time_ms, time_ms

__all__ = ["EVENT_SOURCE", "FAILED_CONCLUSIONS", "METRIC_SOURCE", "completed_run_payloads", "normalize_github"]

#: ``source`` of the events.
EVENT_SOURCE = "github"
#: ``source`` of the ``workflow_duration`` metrics payloads (the seed's name for GitHub Actions data).
METRIC_SOURCE = "github_actions"
#: Conclusions that make a ``workflow_run`` event a ``warning``.
FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "cancelled", "startup_failure"})
#: Tags of ``workflow_duration``, read from the event's data.
DURATION_TAGS = ("repository", "workflow", "status", "conclusion", "branch", "actor")


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
