"""GitHub Actions jobs: the ``workflow_job`` webhook and the ``github`` poller's job listing give the
same ``workflow_job`` event and ``job_duration`` metric.

The webhook bodies are GitHub's own examples, copied unmodified from octokit/webhooks
(``testdata/workflow_job/``, see its README). The poller runs against the loopback GitHub
REST fake (``github_fake.py``, driven by PyGithub), which serves those example jobs from
``GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs``.
"""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path

import pyarrow as pa
import pytest

from airis_mon.errors import TransientError
from airis_mon.payloads import EventPayload, MetricsPayload, parse_payload
from airis_mon.schema import RAW_POINT_SCHEMA, tags_from_json
from airis_mon.timeutil import to_epoch_ms
from sources.gateway.inbound import normalize_github
from sources.github.poller import GithubPoller
from tests.mutation import mutate
from tests.sources.github.github_fake import REPO, GithubFake, poller_config
from transforms.aggregate import aggregate_table
from transforms.normalize import normalize_table
from transforms.rules.config import ThresholdRule
from transforms.rules.engine import GroupContext, evaluate
from transforms.rules.select import combine_windows, select_partials

TESTDATA = Path(__file__).parent / "testdata" / "workflow_job"
EXAMPLES = sorted(p.name for p in TESTDATA.glob("*.json"))
FAILURE = "completed.failure.with-organization.payload.json"
SUCCESS = "completed.success.with-organization.payload.json"
RECEIVED_MS = 1_795_824_000_000  # 2026-11-28T00:00:00Z
MINUTE, HOUR = 60_000, 3_600_000
NOW = int(time.time()) * 1000


def example(name: str) -> dict:
    return json.loads((TESTDATA / name).read_text())


def job_events(payloads: list[dict]) -> list[dict]:
    return [p for p in payloads if p.get("event_type") == "workflow_job"]


def job_metrics(payloads: list[dict], name: str = "job_duration") -> list[tuple[int, float, dict]]:
    """(timestamp, value, tags) of every ``name`` point."""
    return [(p["timestamp"], m["value"], m["tags"]) for p in payloads if "metrics" in p
            for m in p["metrics"] if m["name"] == name]  # fmt: skip


def job_payloads(payloads: list[dict]) -> list[dict]:
    """The payloads of jobs: their events and the metrics payloads holding job_duration."""
    return [p for p in payloads if p.get("event_type") == "workflow_job"
            or any(m["name"] == "job_duration" for m in p.get("metrics", []))]  # fmt: skip


def assert_contract(payloads: list[dict]) -> None:
    """Every payload validates against the public contract's models and parses without dead letters."""
    for payload in payloads:
        model = MetricsPayload if "metrics" in payload else EventPayload
        model.model_validate(payload)
        points, events, dead = parse_payload(payload, "test")
        assert dead == []
        assert len(events) == (0 if "metrics" in payload else 1)
        assert len(points) == len(payload.get("metrics", []))


# --- the webhook: GitHub's own examples -----------------------------------------------------------


def test_the_failed_job_example_gives_an_error_event_and_a_198_s_job_duration():
    out = normalize_github("workflow_job", example(FAILURE), RECEIVED_MS)
    assert_contract(out)
    completed_ms = to_epoch_ms("2021-08-05T10:38:16Z")
    tags = {"repository": "Codertocat/Hello-World", "workflow": "CodeQL", "job": "linters", "conclusion": "failure",
            "run_id": "2202229078", "labels": "ubuntu-latest"}  # fmt: skip
    assert out == [
        {
            "timestamp": completed_ms,
            "event_type": "workflow_job",
            "source": "github",
            "severity": "error",
            "data": {
                "repository": "Codertocat/Hello-World",
                "workflow": "CodeQL",
                "job": "linters",
                "job_id": 289782451,
                "action": "completed",
                "run_id": 2202229078,
                "run_attempt": 1,
                "status": "completed",
                "conclusion": "failure",
                "branch": "main",
                "head_sha": "3484a3fb816e0859fd6e1cea078d76385ff50625",
                "runner_name": "GitHub Actions 5",
                "runner_group": "GitHub Actions",
                "labels": ["ubuntu-latest"],
                "created_at": "2021-08-05T10:33:58Z",
                "started_at": "2021-08-05T10:34:58Z",
                "completed_at": "2021-08-05T10:38:16Z",
                "html_url": "https://github.com/octo-org/octo-repo/runs/1291536064",
                "duration_s": 198.0,
                "queue_s": 60.0,
            },
        },
        {
            "timestamp": completed_ms,
            "source": "github_actions",
            "metrics": [
                {"name": "job_duration", "value": 198.0, "unit": "s", "tags": tags},
                {"name": "job_queue_duration", "value": 60.0, "unit": "s", "tags": tags},
            ],
        },
    ]


def test_the_successful_job_example_is_info_with_its_duration():
    out = normalize_github("workflow_job", example(SUCCESS), RECEIVED_MS)
    assert_contract(out)
    assert [e["severity"] for e in job_events(out)] == ["info"]
    assert [(v, t["conclusion"]) for _, v, t in job_metrics(out)] == [(198.0, "success")]


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_action_normalizes_and_passes_the_contract(name):
    body = example(name)
    job = body["workflow_job"]
    out = normalize_github("workflow_job", body, RECEIVED_MS)
    assert_contract(out)
    (job_event,) = job_events(out)
    data = job_event["data"]
    assert (job_event["source"], data["action"]) == ("github", body["action"])
    assert (data["job"], data["job_id"], data["run_id"], data["workflow"]) == (
        job["name"], job["id"], job["run_id"], job["workflow_name"]
    )  # fmt: skip
    assert (data["repository"], data["labels"]) == (body["repository"]["full_name"], job["labels"])
    assert (data["runner_name"], data["runner_group"]) == (job["runner_name"], job["runner_group_name"])
    times = [job[key] for key in ("completed_at", "started_at", "created_at") if job[key]]
    assert job_event["timestamp"] == to_epoch_ms(times[0])  # the job's latest known time
    if body["action"] == "completed":
        assert len(out) == 2 and len(job_metrics(out)) == 1
    else:  # queued, waiting, in_progress: an event only
        assert len(out) == 1 and "duration_s" not in data
        assert job_event["severity"] == "info"


def test_the_self_hosted_example_keeps_its_labels_and_joins_them_sorted_in_the_tag():
    body = example("waiting.payload.json")
    assert normalize_github("workflow_job", body, RECEIVED_MS)[0]["data"]["labels"] == ["self-hosted", "k8s"]
    completed = copy.deepcopy(example(FAILURE))
    completed["workflow_job"]["labels"] = ["self-hosted", "linux", "X64", "gpu"]
    out = normalize_github("workflow_job", completed, RECEIVED_MS)
    assert out[0]["data"]["labels"] == ["self-hosted", "linux", "X64", "gpu"]  # as GitHub sent them
    assert job_metrics(out)[0][2]["labels"] == "X64,gpu,linux,self-hosted"


@pytest.mark.parametrize(
    ("conclusion", "severity"),
    [
        ("failure", "error"),
        ("timed_out", "error"),
        ("startup_failure", "error"),
        ("cancelled", "warning"),
        ("success", "info"),
        ("skipped", "info"),
        ("neutral", "info"),
        ("action_required", "info"),
        (None, "info"),
    ],
)
def test_severity_follows_the_conclusion(conclusion, severity):
    body = copy.deepcopy(example(FAILURE))
    body["workflow_job"]["conclusion"] = conclusion
    out = normalize_github("workflow_job", body, RECEIVED_MS)
    assert_contract(out)
    assert out[0]["severity"] == severity
    assert job_metrics(out)[0][2]["conclusion"] == (conclusion or "")


def test_a_completed_job_without_both_times_or_ending_before_it_started_has_no_metric():
    for changes in ({"started_at": None}, {"completed_at": None}, {"completed_at": "2021-08-05T10:30:00Z"}):
        body = copy.deepcopy(example(FAILURE))
        body["workflow_job"].update(changes)
        out = normalize_github("workflow_job", body, RECEIVED_MS)
        assert_contract(out)
        assert len(out) == 1 and "duration_s" not in out[0]["data"]
    body = copy.deepcopy(example(FAILURE))
    body["workflow_job"]["created_at"] = None  # no queue time: job_duration alone
    out = normalize_github("workflow_job", body, RECEIVED_MS)
    assert [m["name"] for m in out[1]["metrics"]] == ["job_duration"] and "queue_s" not in out[0]["data"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_garbage_and_mutated_examples_never_raise_and_stay_in_the_contract(name):
    for garbage in (None, [], "text", {}, {"workflow_job": None}, {"workflow_job": {"labels": "ubuntu"}}):
        out = normalize_github("workflow_job", garbage, RECEIVED_MS)
        assert_contract(out)
        assert [p["event_type"] for p in out] == ["workflow_job"]
    rng = random.Random(name)
    for _ in range(100):
        out = normalize_github("workflow_job", mutate(example(name), rng), RECEIVED_MS)
        assert_contract(out)
        for payload in out:
            for metric in payload.get("metrics", []):
                assert all(isinstance(value, str) for value in metric["tags"].values())


# --- the poller: the same payloads from the REST API ---------------------------------------------


def make_poller(fake: GithubFake, **overrides) -> GithubPoller:
    poller = GithubPoller(poller_config(fake, **overrides))
    poller.setup()
    return poller


def jobs_requests(fake: GithubFake) -> list[str]:
    return [path for path in fake.paths() if path.endswith("/jobs")]


@pytest.mark.parametrize("name", [FAILURE, SUCCESS])
def test_the_poller_gives_the_webhook_payloads_for_the_same_job(fake, name):
    body = example(name)
    job = copy.deepcopy(body["workflow_job"])
    repository = body["repository"]["full_name"]
    started_ms, completed_ms = to_epoch_ms(job["started_at"]), to_epoch_ms(job["completed_at"])
    fake.add_run(repository, job["run_id"], job["workflow_name"], started_ms - MINUTE, started_ms - MINUTE,
                 completed_ms + 5000, conclusion=job["conclusion"])  # fmt: skip
    fake.put_job(repository, job)  # the REST API lists the job object the webhook carried
    polled = make_poller(fake, repositories=[repository]).poll(completed_ms + HOUR)
    webhook = normalize_github("workflow_job", body, RECEIVED_MS)

    assert job_payloads(polled) == webhook
    assert_contract(polled)
    assert jobs_requests(fake) == [f"/repos/{repository}/actions/runs/{job['run_id']}/jobs"]
    assert [q for q in fake.queries("/jobs")] == [{"per_page": "100"}]  # what WorkflowRun.jobs() sends


def test_jobs_of_a_completed_run_come_after_its_run_each_reported_once_across_polls(fake):
    t = NOW - HOUR
    run1 = fake.add_run(REPO, 1, "Train", t, t, t + 10 * MINUTE)
    fake.add_job(REPO, run1, 11, "lint", t + 30_000, t + 90_000, labels=("ubuntu-latest",))
    fake.add_job(REPO, run1, 12, "train", t + 20_000, t + 9 * MINUTE, conclusion="failure",
                 labels=("self-hosted", "gpu"), created_ms=t)  # fmt: skip
    run2 = fake.add_run(REPO, 2, "Train", t + MINUTE, t + MINUTE, status="in_progress", conclusion=None)
    fake.add_job(REPO, run2, 21, "lint", t + MINUTE, None)
    poller = make_poller(fake)

    first = poller.poll(NOW)
    assert [p.get("event_type", "metrics") for p in first] == ["workflow_run", "metrics", "workflow_job",
                                                               "metrics", "workflow_job", "metrics"]  # fmt: skip
    assert [(e["data"]["job"], e["severity"]) for e in job_events(first)] == [("lint", "info"), ("train", "error")]
    assert [(ts, v, tags["job"], tags["labels"]) for ts, v, tags in job_metrics(first)] == [
        (t + 90_000, 60.0, "lint", "ubuntu-latest"),
        (t + 9 * MINUTE, 520.0, "train", "gpu,self-hosted"),
    ]
    assert [v for _, v, _ in job_metrics(first, "job_queue_duration")] == [0.0, 20.0]
    assert jobs_requests(fake) == [f"/repos/{REPO}/actions/runs/1/jobs"]  # not for the run in progress
    assert_contract(first)

    run2 = fake.add_run(REPO, 2, "Train", t + MINUTE, t + MINUTE, t + 5 * MINUTE)  # it completed
    fake.add_job(REPO, run2, 21, "lint", t + MINUTE, t + 4 * MINUTE, conclusion="cancelled")
    second = poller.poll(NOW + MINUTE)
    assert [(e["data"]["run_id"], e["data"]["job_id"], e["severity"]) for e in job_events(second)] == [
        (2, 21, "warning")
    ]
    assert poller.poll(NOW + 2 * MINUTE) == []
    assert jobs_requests(fake) == [f"/repos/{REPO}/actions/runs/1/jobs", f"/repos/{REPO}/actions/runs/2/jobs"]


def test_a_state_file_keeps_new_pollers_from_repeating_jobs(fake, tmp_path):
    state_file = str(tmp_path / "gh.json")
    run = fake.add_run(REPO, 1, "Train", NOW - HOUR, NOW - HOUR, NOW - HOUR + 5 * MINUTE)
    fake.add_job(REPO, run, 11, "build", NOW - HOUR, NOW - HOUR + 4 * MINUTE)
    assert len(job_events(make_poller(fake, state_file=state_file).poll(NOW))) == 1
    assert make_poller(fake, state_file=state_file).poll(NOW + MINUTE) == []  # e.g. the next bounded run
    assert len(jobs_requests(fake)) == 1


def test_a_rerun_reports_only_the_jobs_of_its_own_attempt(fake):
    t = NOW - HOUR
    run = fake.add_run(REPO, 1, "Train", t, t, t + 5 * MINUTE, conclusion="failure")
    fake.add_job(REPO, run, 11, "build", t, t + 2 * MINUTE)
    fake.add_job(REPO, run, 12, "test", t + 2 * MINUTE, t + 5 * MINUTE, conclusion="failure")
    poller = make_poller(fake)
    assert [e["data"]["job_id"] for e in job_events(poller.poll(NOW))] == [11, 12]

    # "Re-run failed jobs": attempt 2 runs "test" again; "build" is listed with its attempt 1
    rerun = fake.add_run(REPO, 1, "Train", t, t + 30 * MINUTE, t + 34 * MINUTE, attempt=2)
    fake.add_job(REPO, rerun, 13, "test", t + 30 * MINUTE, t + 34 * MINUTE)
    second = poller.poll(NOW + MINUTE)
    assert [(e["data"]["job_id"], e["data"]["run_attempt"]) for e in job_events(second)] == [(13, 2)]
    assert [v for _, v, _ in job_metrics(second)] == [240.0]


def test_job_listings_follow_the_link_header(fake):
    run = fake.add_run(REPO, 7, "Matrix", NOW - HOUR, NOW - HOUR, NOW - HOUR + 20 * MINUTE)
    for i in range(5):
        fake.add_job(REPO, run, 70 + i, f"test ({i})", NOW - HOUR + i * MINUTE, NOW - HOUR + (i + 2) * MINUTE)
    payloads = make_poller(fake, page_size=2).poll(NOW)
    assert [e["data"]["job"] for e in job_events(payloads)] == [f"test ({i})" for i in range(5)]
    assert [v for _, v, _ in job_metrics(payloads)] == [120.0] * 5
    paged = f"/repositories/{fake.repositories[REPO]}/actions/runs/7/jobs"
    assert jobs_requests(fake) == [f"/repos/{REPO}/actions/runs/7/jobs", paged, paged]
    assert [q.get("page") for q in fake.queries("/jobs")] == [None, "2", "3"]


def test_a_failed_job_listing_fails_the_poll_and_the_next_poll_reports_the_run_and_its_jobs(fake):
    run = fake.add_run(REPO, 1, "Train", NOW - HOUR, NOW - HOUR, NOW - HOUR + 5 * MINUTE)
    fake.add_job(REPO, run, 11, "build", NOW - HOUR, NOW - HOUR + 4 * MINUTE)
    poller = make_poller(fake)
    fake.jobs_fail_with = 502
    with pytest.raises(TransientError, match=f"list jobs of run 1 of {REPO}: HTTP 502 Server Error"):
        poller.poll(NOW)
    fake.jobs_fail_with = None
    again = poller.poll(NOW + MINUTE)  # nothing was remembered: nothing is lost
    assert [p.get("event_type", "metrics") for p in again] == ["workflow_run", "metrics", "workflow_job", "metrics"]


def test_jobs_off_sends_no_job_request_and_the_environment_tags_jobs_too(fake):
    run = fake.add_run(REPO, 1, "Train", NOW - HOUR, NOW - HOUR, NOW - HOUR + 5 * MINUTE)
    fake.add_job(REPO, run, 11, "build", NOW - HOUR, NOW - HOUR + 4 * MINUTE)
    assert job_payloads(make_poller(fake, jobs=False).poll(NOW)) == []
    assert jobs_requests(fake) == []
    payloads = make_poller(fake, environment="prod").poll(NOW)
    assert job_events(payloads)[0]["data"]["environment"] == "prod"
    assert {tags["environment"] for _, _, tags in job_metrics(payloads)} == {"prod"}


# --- a failed job can alert -----------------------------------------------------------------------


def test_a_rule_on_job_duration_alerts_on_a_failed_job():
    """The webhook's job_duration goes through Normalize (s -> ms), the 60 s aggregation and a
    threshold rule counting failed jobs: the failed example triggers, the successful one does not."""
    rule = ThresholdRule.model_validate({
        "name": "ci-job-failed", "metric": "job_duration", "source": "github_actions",
        "tags": {"conclusion": {"regex": "failure|timed_out|startup_failure"}},
        "group_by": ["repository", "workflow", "job"], "aggregation": "count", "comparator": ">", "threshold": 0,
        "severity": "high",
    })  # fmt: skip
    raw = []
    for name in (FAILURE, SUCCESS):
        for payload in normalize_github("workflow_job", example(name), RECEIVED_MS):
            raw.extend(parse_payload(payload, "test")[0])
    table = pa.Table.from_pylist([dict(zip(RAW_POINT_SCHEMA.names, point, strict=True)) for point in raw],
                                 schema=RAW_POINT_SCHEMA)  # fmt: skip
    metrics, dead = normalize_table(table)
    assert dead == []
    ((key, parts),) = select_partials(aggregate_table(metrics, MINUTE), [rule])
    _, source, group = key
    windows = combine_windows(parts, rule, MINUTE)
    alerts, _ = evaluate(rule, GroupContext(source, group, MINUTE), windows)
    trigger = alerts[0]
    assert (trigger.notification, trigger.severity, trigger.current_value) == ("trigger", "high", 1.0)
    assert tags_from_json(group) == {"job": "linters", "repository": "Codertocat/Hello-World", "workflow": "CodeQL"}
    durations = [v for n, v in zip(metrics.column("name").to_pylist(), metrics.column("value").to_pylist(),
                                   strict=True) if n == "job_duration"]  # fmt: skip
    assert durations == [198_000.0, 198_000.0]  # ms after Normalize
