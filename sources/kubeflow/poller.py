"""The ``kubeflow`` poller: Kubeflow Pipelines runs -> metrics and state-change events (no Beam).

Each poll lists the runs created in the last ``lookback_s`` seconds (newest
first, paged) and emits public-contract payloads with ``source: "kubeflow"``:

- ``pipeline_duration`` (``s``): ``finished_at - created_at`` of each run that
  finished since the previous poll, at ``finished_at``; tags ``pipeline``,
  ``run_name``, ``state``, ``experiment_id``, ``environment``;
- ``step_duration`` (``s``): ``end_time - start_time`` (``create_time`` when the
  task never started) of each task of those runs, at the task's ``end_time``;
  tags ``pipeline``, ``step``, ``state``, ``environment``. When a listing
  carries no ``run_details``, the run is read once with ``get_run``;
- ``success_rate`` (``ratio``, 0..1) per pipeline over the runs of the window
  that ended SUCCEEDED, FAILED or CANCELED (SKIPPED runs are not counted), and
  ``run_count`` (``count``) per pipeline and state over every run of the
  window, both at poll time; tags ``pipeline``, ``environment`` (+ ``state``);
- one ``pipeline_run_state`` event per run whose state changed since the
  previous poll, or that appeared since (``from_state`` null), at the time
  of the change (``state_history``); severity ``error`` for FAILED,
  ``warning`` for CANCELED, else ``info``; data ``run_id``, ``display_name``,
  ``pipeline``, ``experiment_id``, ``environment``, ``from_state``,
  ``to_state`` and ``error`` (the run's error message, when it has one).

``pipeline`` is the pipeline's display name (``get_pipeline`` of
``pipeline_version_reference.pipeline_id``, cached), else the
``pipelineInfo.name`` of an embedded ``pipeline_spec``, else the pipeline id,
else the run's display name.

Memory: the first poll with nothing remembered is a *baseline*: it reports the
durations of the runs already finished in the window but no state events (an
unknown previous state is not a change; this avoids a burst of stale FAILED
events when monitoring starts). Later polls compare with the remembered
states. With ``state_file`` the memory is that JSON file, read at every poll
and replaced atomically (temp file, fsync, rename) after it, so a new poller
(the next bounded run, another worker) neither repeats events and durations
nor misses changes. Without it the memory lives in the poller only.
Delivery is at most once: the memory is saved before the payloads are handed on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from airis_mon.errors import PermanentError
from sources.client_poller import ClientPoller
from sources.kubeflow.client import KubeflowClient, RunInfo
from sources.kubeflow.config import KubeflowConfig
from sources.state_file import read_state, write_state

__all__ = ["EVENT_TYPE", "SOURCE", "KubeflowPoller", "RunMemory", "load_memory", "save_memory"]

SOURCE = "kubeflow"
EVENT_TYPE = "pipeline_run_state"
#: States after which a run no longer changes (unless retried, which starts a new finish).
TERMINAL_STATES = frozenset({"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"})
#: Finished states counted by success_rate.
RATE_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})
_SEVERITY = {"FAILED": "error", "CANCELED": "warning"}
_STATE_FILE_VERSION = 1


@dataclass(frozen=True)
class RunMemory:
    """What a poll remembers of one run."""

    state: str
    finished_ms: int | None
    created_ms: int


def load_memory(path: str) -> dict[str, RunMemory] | None:
    """The runs remembered in ``path``; None when the file does not exist yet (baseline)."""
    document = read_state(path, "kubeflow", _STATE_FILE_VERSION)
    if document is None:
        return None
    try:
        return {
            run_id: RunMemory(str(entry["state"]), entry.get("finished_ms"), int(entry["created_ms"]))
            for run_id, entry in document["runs"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PermanentError(
            f"state file {path} is not a kubeflow state file ({error}); delete it to start over"
        ) from None


def save_memory(path: str, memory: dict[str, RunMemory]) -> None:
    """Remember the runs (atomically)."""
    runs = {
        run_id: {"state": m.state, "finished_ms": m.finished_ms, "created_ms": m.created_ms}
        for run_id, m in sorted(memory.items())
    }
    write_state(path, {"runs": runs}, _STATE_FILE_VERSION)


def _seconds(start_ms: int | None, end_ms: int | None) -> float | None:
    if start_ms is None or end_ms is None or end_ms < start_ms:
        return None
    return (end_ms - start_ms) / 1000


def _newly_finished(run: RunInfo, previous: RunMemory | None) -> bool:
    if run.state not in TERMINAL_STATES or run.finished_ms is None:
        return False
    if previous is None:
        return True
    return previous.state not in TERMINAL_STATES or previous.finished_ms != run.finished_ms


def _changed_at(run: RunInfo, now_ms: int) -> int:
    """When the run reached its current state: the last matching state_history entry."""
    for at_ms, state in reversed(run.history):
        if state == run.state and at_ms:
            return at_ms
    if run.state in TERMINAL_STATES and run.finished_ms:
        return run.finished_ms
    return now_ms


class KubeflowPoller(ClientPoller):
    """Polls one KFP deployment; see the module docstring. ``KubeflowPoller(config)`` is
    the factory :func:`sources.polling.ReadFromPoller` needs (pickle it with ``functools.partial``)."""

    def __init__(self, config: KubeflowConfig):
        self._config = config
        self._memory: dict[str, RunMemory] | None = None  # without a state file
        self._pipelines: dict[str, str] = {}  # pipeline_id -> name

    def make_client(self) -> KubeflowClient:
        config = self._config
        token = config.token.get_secret_value() if config.token is not None else None
        return KubeflowClient(config.host, config.namespace, config.experiment_id, token,
                              config.request_timeout_s)  # fmt: skip

    def poll(self, now_ms: int) -> list[dict]:
        config = self._config
        runs = self.client.list_runs(now_ms - config.lookback_s * 1000, config.page_size)
        memory = load_memory(config.state_file) if config.state_file else self._memory
        baseline = memory is None
        memory = memory or {}
        points: dict[int, list[dict]] = defaultdict(list)
        events: list[dict] = []
        by_pipeline: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for run in runs:
            pipeline = self._pipeline_name(run)
            previous = memory.get(run.run_id)
            by_pipeline[pipeline][run.state] += 1
            if _newly_finished(run, previous):
                self._durations(run, pipeline, points)
            if not baseline and (previous is None or previous.state != run.state):
                events.append(self._event(run, pipeline, previous, now_ms))
        points[now_ms].extend(self._rates(by_pipeline))
        new_memory = {run.run_id: RunMemory(run.state, run.finished_ms, run.created_ms) for run in runs}
        if config.state_file:
            save_memory(config.state_file, new_memory)
        else:
            self._memory = new_memory
        payloads = [{"timestamp": ts, "source": SOURCE, "metrics": ms} for ts, ms in sorted(points.items()) if ms]
        return payloads + sorted(events, key=lambda e: (e["timestamp"], e["data"]["run_id"]))

    # --- helpers ----------------------------------------------------------------------------------

    def _pipeline_name(self, run: RunInfo) -> str:
        if run.pipeline_id:
            if run.pipeline_id not in self._pipelines:
                name = self.client.pipeline_display_name(run.pipeline_id)
                self._pipelines[run.pipeline_id] = name or run.spec_name or run.pipeline_id
            return self._pipelines[run.pipeline_id]
        return run.spec_name or run.display_name or run.run_id

    def _durations(self, run: RunInfo, pipeline: str, points: dict[int, list[dict]]) -> None:
        environment = self._config.environment
        seconds = _seconds(run.created_ms, run.finished_ms)
        if seconds is not None:
            tags = {"pipeline": pipeline, "run_name": run.display_name, "state": run.state,
                    "experiment_id": run.experiment_id, "environment": environment}  # fmt: skip
            points[run.finished_ms].append({"name": "pipeline_duration", "value": seconds, "unit": "s", "tags": tags})
        tasks = run.tasks
        if tasks is None:  # the listing had no run_details: read the run once
            detailed = self.client.get_run(run.run_id)
            tasks = (detailed.tasks if detailed is not None else None) or ()
        for task in tasks:
            seconds = _seconds(task.start_ms or task.create_ms, task.end_ms)
            if seconds is None:
                continue
            tags = {"pipeline": pipeline, "step": task.display_name, "state": task.state, "environment": environment}
            points[task.end_ms].append({"name": "step_duration", "value": seconds, "unit": "s", "tags": tags})

    def _rates(self, by_pipeline: dict[str, dict[str, int]]) -> list[dict]:
        environment = self._config.environment
        metrics = []
        for pipeline, counts in sorted(by_pipeline.items()):
            for state, count in sorted(counts.items()):
                tags = {"pipeline": pipeline, "state": state, "environment": environment}
                metrics.append({"name": "run_count", "value": count, "unit": "count", "tags": tags})
            finished = sum(count for state, count in counts.items() if state in RATE_STATES)
            if finished:
                rate = counts.get("SUCCEEDED", 0) / finished
                tags = {"pipeline": pipeline, "environment": environment}
                metrics.append({"name": "success_rate", "value": rate, "unit": "ratio", "tags": tags})
        return metrics

    def _event(self, run: RunInfo, pipeline: str, previous: RunMemory | None, now_ms: int) -> dict:
        data = {
            "run_id": run.run_id,
            "display_name": run.display_name,
            "pipeline": pipeline,
            "experiment_id": run.experiment_id,
            "environment": self._config.environment,
            "from_state": previous.state if previous is not None else None,
            "to_state": run.state,
        }
        if run.error:
            data["error"] = run.error
        return {
            "timestamp": _changed_at(run, now_ms),
            "event_type": EVENT_TYPE,
            "source": SOURCE,
            "severity": _SEVERITY.get(run.state, "info"),
            "data": data,
        }
