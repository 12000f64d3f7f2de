"""The ``github`` source against a loopback fake of the GitHub REST API (``github_fake.py``),
driven by PyGithub. The webhook signature check (GitHub's documented test vector) is
tested in ``tests/sources/gateway/test_inbound.py::test_github_documented_test_vector``."""

from __future__ import annotations

import copy
import functools
import json
import logging
import pickle
import socket
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from pydantic import ValidationError

from airis_mon.errors import PermanentError, TransientError
from airis_mon.payloads import parse_payload
from airis_mon.schema import tags_from_json
from airis_mon.timeutil import ms_to_iso
from sources.gateway.inbound import normalize_github
from sources.github import GithubConfig, ReadFromGithub
from sources.github.client import GithubClient
from sources.github.poller import GithubPoller
from tests.conftest import DAY_MS
from tests.sources.github.github_fake import REPO, TOKEN, GithubFake, poller_config

NOW = int(time.time()) * 1000  # whole seconds, like GitHub's timestamps
MINUTE, HOUR = 60_000, 3_600_000
WEBHOOK_TESTDATA = Path(__file__).parents[1] / "gateway" / "testdata"


config = poller_config


def make_poller(fake: GithubFake, **overrides) -> GithubPoller:
    poller = GithubPoller(config(fake, **overrides))
    poller.setup()
    return poller


def durations(payloads: list[dict]) -> list[tuple[int, float, dict]]:
    """(timestamp, value, tags) of every workflow_duration point."""
    return [
        (p["timestamp"], m["value"], m["tags"])
        for p in payloads
        if "metrics" in p
        for m in p["metrics"]
        if m["name"] == "workflow_duration"
    ]


def run_events(payloads: list[dict]) -> list[dict]:
    return [p for p in payloads if p.get("event_type") == "workflow_run"]


def closed_port_url() -> str:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# --- what a poll emits ----------------------------------------------------------------------------


def test_durations_are_exact_and_tags_and_events_match_the_runs(fake):
    t = NOW - 2 * HOUR
    fake.add_run(REPO, 9001, "Train and evaluate", t, t + 15_000, t + 15_000 + 12 * MINUTE + 45_000,
                 conclusion="failure", branch="feature/v7", actor="hubot", triggering_actor="mona")  # fmt: skip
    fake.add_run(REPO, 9002, "Deploy", t + MINUTE, t + MINUTE, t + MINUTE + 61_000, event="workflow_dispatch")
    fake.add_run(REPO, 9003, "Lint", t + 2 * MINUTE, status="in_progress", conclusion=None)
    payloads = make_poller(fake).poll(NOW)

    train = {"repository": REPO, "workflow": "Train and evaluate", "status": "completed", "conclusion": "failure",
             "branch": "feature/v7", "actor": "hubot"}  # fmt: skip
    deploy = {"repository": REPO, "workflow": "Deploy", "status": "completed", "conclusion": "success",
              "branch": "main", "actor": "mona"}  # fmt: skip
    assert durations(payloads) == [(t + 121_000, 61.0, deploy), (t + 780_000, 765.0, train)]  # by completion time
    failed, deployed = sorted(run_events(payloads), key=lambda e: e["data"]["run_id"])
    assert (failed["timestamp"], failed["severity"], failed["source"]) == (t + 780_000, "warning", "github")
    assert failed["data"] == {
        "repository": REPO, "workflow": "Train and evaluate", "action": "completed", "run_number": 1,
        "run_id": 9001, "run_attempt": 1, "status": "completed", "conclusion": "failure", "branch": "feature/v7",
        "actor": "hubot", "event": "push", "html_url": f"https://github.com/{REPO}/actions/runs/9001",
        "duration_s": 765.0,
    }  # fmt: skip
    assert (deployed["severity"], deployed["data"]["event"]) == ("info", "workflow_dispatch")
    assert {p["source"] for p in payloads if "metrics" in p} == {"github_actions"}
    assert {m["unit"] for p in payloads if "metrics" in p for m in p["metrics"]} == {"s"}
    for payload in payloads:  # every payload passes the public contract
        points, events, dead = parse_payload(payload, "test")
        assert dead == [] and len(points) + len(events) == 1


def test_pages_follow_the_link_header_and_stop_at_the_lookback(fake):
    fresh = [fake.add_run(REPO, 100 + i, "Train", NOW - (i + 1) * MINUTE, updated_ms=NOW - i * MINUTE)
             for i in range(7)]  # fmt: skip
    for i in range(5):  # finished long ago: outside a 6 h lookback
        fake.add_run(REPO, 10 + i, "Train", NOW - 30 * HOUR - i * MINUTE, updated_ms=NOW - 29 * HOUR)
    payloads = make_poller(fake, page_size=3, lookback_s=6 * 3600).poll(NOW)

    assert sorted(e["data"]["run_id"] for e in run_events(payloads)) == [r["id"] for r in fresh]
    first = fake.queries(f"/repos/{REPO}/actions/runs")
    later = fake.queries(f"/repositories/{fake.repositories[REPO]}/actions/runs")
    assert first == [{"per_page": "3", "exclude_pull_requests": "1"}]
    # 12 runs, 4 pages of 3: page 3 reaches the old runs, so page 4 is never asked for
    assert later == [{"per_page": "3", "exclude_pull_requests": "1", "page": "2"},
                     {"per_page": "3", "exclude_pull_requests": "1", "page": "3"}]  # fmt: skip
    paged = f"/repositories/{fake.repositories[REPO]}/actions/runs"
    listing = [path for path in fake.paths() if not path.endswith("/jobs")]
    assert listing == [f"/repos/{REPO}", f"/repos/{REPO}/actions/runs", paged, paged]  # no per-run request
    # one job listing per newly completed run, newest completion last (none for the old runs)
    assert fake.paths()[len(listing) :] == [f"/repos/{REPO}/actions/runs/{106 - i}/jobs" for i in range(7)]


def test_a_second_poll_does_not_repeat_runs_and_reports_runs_completed_since(fake):
    t = NOW - HOUR
    fake.add_run(REPO, 1, "Train", t, t, t + 100_000)
    fake.add_run(REPO, 2, "Train", t + MINUTE, status="in_progress", conclusion=None)
    poller = make_poller(fake)
    assert [e["data"]["run_id"] for e in run_events(poller.poll(NOW))] == [1]

    fake.add_run(REPO, 2, "Train", t + MINUTE, t + MINUTE, t + MINUTE + 200_000)  # it completed
    second = poller.poll(NOW + MINUTE)
    assert [(ts, v) for ts, v, _ in durations(second)] == [(t + 260_000, 200.0)]

    fake.add_run(REPO, 1, "Train", t, t + 30 * MINUTE, t + 31 * MINUTE, attempt=2)  # re-run: a new attempt
    third = poller.poll(NOW + 2 * MINUTE)
    assert [(e["data"]["run_id"], e["data"]["run_attempt"], e["data"]["duration_s"]) for e in run_events(third)] == [
        (1, 2, 60.0)
    ]
    assert poller.poll(NOW + 3 * MINUTE) == []


def test_a_state_file_keeps_new_pollers_from_repeating_runs_and_forgets_old_ones(fake, tmp_path):
    state_file = tmp_path / "state" / "gh.json"
    t = NOW - HOUR
    fake.add_run(REPO, 1, "Train", t, t, t + 10_000)
    fake.add_run(REPO, 2, "Train", t + MINUTE, status="queued", conclusion=None)
    assert len(durations(make_poller(fake, state_file=str(state_file)).poll(NOW))) == 1

    again = make_poller(fake, state_file=str(state_file)).poll(NOW + MINUTE)  # e.g. the next bounded run
    assert again == []
    fake.add_run(REPO, 2, "Train", t + MINUTE, t + 2 * MINUTE, t + 3 * MINUTE)
    later = make_poller(fake, state_file=str(state_file)).poll(NOW + 2 * MINUTE)
    assert [e["data"]["run_id"] for e in run_events(later)] == [2]

    saved = json.loads(state_file.read_text())
    assert saved == {"version": 1, "runs": {f"{REPO}#1#1": t, f"{REPO}#2#1": t + MINUTE}}
    make_poller(fake, state_file=str(state_file), lookback_s=60).poll(NOW + 2 * MINUTE)  # both runs now too old
    assert json.loads(state_file.read_text())["runs"] == {}
    assert sorted(p.name for p in state_file.parent.iterdir()) == ["gh.json"]  # no temp file left behind


def test_a_corrupt_state_file_is_a_permanent_error(fake, tmp_path):
    state_file = tmp_path / "gh.json"
    state_file.write_text('{"version": 1, "runs": ["not", "a", "map"]}')
    with pytest.raises(PermanentError, match="not a github state file"):
        make_poller(fake, state_file=str(state_file)).poll(NOW)


def test_only_the_configured_workflows_of_every_repository_are_reported(fake):
    other = "octo-org/feature-store"
    t = NOW - HOUR
    fake.add_run(REPO, 1, "Train and evaluate", t, t, t + 1000, path=".github/workflows/train.yml")
    fake.add_run(REPO, 2, "Deploy", t, t, t + 2000, path=".github/workflows/deploy.yml@refs/heads/main")
    fake.add_run(REPO, 3, "Lint", t, t, t + 3000, path=".github/workflows/lint.yml")
    fake.add_run(other, 4, "Nightly", t, t, t + 4000, path=".github/workflows/nightly.yml")
    fake.add_run(other, 5, "Docs", t, t, t + 5000, path=".github/workflows/docs.yml")
    poller = make_poller(fake, repositories=[REPO, other],
                         workflows=["Train and evaluate", "deploy.yml", ".github/workflows/nightly.yml"])  # fmt: skip
    got = sorted((tags["repository"], tags["workflow"], v) for _, v, tags in durations(poller.poll(NOW)))
    assert got == [(other, "Nightly", 4.0), (REPO, "Deploy", 2.0), (REPO, "Train and evaluate", 1.0)]


def test_the_environment_is_added_when_set(fake):
    fake.add_run(REPO, 1, "Train", NOW - HOUR, NOW - HOUR, NOW - HOUR + 5000)
    payloads = make_poller(fake, environment="prod").poll(NOW)
    assert durations(payloads)[0][2]["environment"] == "prod"
    assert run_events(payloads)[0]["data"]["environment"] == "prod"


def test_webhook_and_polling_give_the_same_payloads_for_the_same_run(fake):
    for name in ("github_workflow_run_completed_failure.json", "github_workflow_run_completed_success.json"):
        body = json.loads((WEBHOOK_TESTDATA / name).read_text())  # a recorded webhook delivery
        run = copy.deepcopy(body["workflow_run"])
        fake.put_run(run["repository"]["full_name"], run)  # the REST API lists the same run object
        received_ms = DAY_MS + HOUR
        webhook = normalize_github("workflow_run", body, received_ms)
        polled = make_poller(fake, repositories=[run["repository"]["full_name"]]).poll(received_ms)
        assert len(durations(webhook)) == 1
        assert [p for p in polled if "metrics" in p] == [p for p in webhook if "metrics" in p]
        assert run_events(polled) == run_events(webhook)
        fake.reset()


# --- rate limits and errors -----------------------------------------------------------------------


def test_an_exhausted_budget_stops_requests_until_the_reset(fake):
    for i in range(9):
        fake.add_run(REPO, 100 + i, "Train", NOW - (i + 1) * MINUTE, updated_ms=NOW - i * MINUTE)
    fake.remaining, fake.reset_at = 2, int(time.time()) + 2
    poller = make_poller(fake, page_size=3)
    resets = f"resets at {ms_to_iso(fake.reset_at * 1000)}"
    with pytest.raises(TransientError, match=f"0 of 5000 requests left; {resets}") as raised:
        poller.poll(NOW)  # the repository and page 1 spend the budget; page 2 is not asked for
    assert "no request sent" in str(raised.value)
    assert fake.paths() == [f"/repos/{REPO}", f"/repos/{REPO}/actions/runs"]
    with pytest.raises(TransientError, match=resets):
        poller.poll(NOW)  # a retry or the next poll: still nothing sent
    assert len(fake.requests) == 2

    time.sleep(max(0.0, fake.reset_at - time.time()) + 0.1)
    fake.remaining = 5000
    assert len(run_events(poller.poll(NOW))) == 9  # after the reset, the poll goes through


@pytest.mark.parametrize("status", [403, 429])
def test_a_refused_request_says_when_the_limit_resets_and_blocks_the_next_ones(fake, status):
    fake.remaining, fake.rate_limit_status = 0, status
    client = GithubClient(fake.url, TOKEN, timeout_s=5, request_interval_s=0)
    resets = f"resets at {ms_to_iso(fake.reset_at * 1000)}"
    with pytest.raises(TransientError, match=f"get_repo {REPO}: HTTP {status} rate limit exceeded; {resets}"):
        client.list_runs(REPO, 0)
    with pytest.raises(TransientError, match=f"{resets}.*no request sent"):
        client.list_runs(REPO, 0)
    assert len(fake.requests) == 1


def test_a_secondary_rate_limit_waits_for_retry_after(fake):
    fake.secondary_retry_after = 60
    client = GithubClient(fake.url, TOKEN, timeout_s=5, request_interval_s=0)
    with pytest.raises(TransientError, match=r"HTTP 403 rate limit exceeded; resets at .* \(in 60 s\)"):
        client.list_runs(REPO, 0)
    fake.secondary_retry_after = None
    with pytest.raises(TransientError, match=r"requests refused; resets at .*no request sent"):
        client.list_runs(REPO, 0)
    assert len(fake.requests) == 1


def test_vendor_errors_are_translated(fake):
    client = GithubClient(fake.url, "ghp_wrongToken", timeout_s=1, request_interval_s=0)
    with pytest.raises(PermanentError, match=r"HTTP 401 Bad credentials \(check the token\)") as raised:
        client.list_runs(REPO, 0)
    assert "ghp_wrongToken" not in str(raised.value)
    client = GithubClient(fake.url, TOKEN, timeout_s=1, request_interval_s=0)
    with pytest.raises(PermanentError, match=r"get_repo octo-org/gone: HTTP 404 Not Found \(repository missing"):
        client.list_runs("octo-org/gone", 0)
    fake.fail_with = 500
    with pytest.raises(TransientError, match=f"get_repo {REPO}: HTTP 500 Server Error"):
        client.list_runs(REPO, 0)
    fake.fail_with = None
    client.list_runs(REPO, 0)  # the repository is read once and kept
    fake.fail_with = 502
    with pytest.raises(TransientError, match=f"list workflow runs of {REPO}: HTTP 502 Server Error"):
        client.list_runs(REPO, 0)
    fake.fail_with, fake.delay_s = None, 1.5
    with pytest.raises(TransientError, match="ReadTimeout"):
        client.list_runs(REPO, 0)
    fake.delay_s = 0
    with pytest.raises(TransientError, match="ConnectionError"):
        GithubClient(closed_port_url(), TOKEN, request_interval_s=0).list_runs(REPO, 0)
    runs = f"/repos/{REPO}/actions/runs"
    # one request per call (PyGithub's retries are off), the repository read once after it succeeded
    assert fake.paths() == [
        f"/repos/{REPO}",
        "/repos/octo-org/gone",
        f"/repos/{REPO}",
        f"/repos/{REPO}",
        runs,
        runs,
        runs,
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "not a list of workflow run objects"),
        (b'{"total_count": 3, "workflow_runs": [{"id": 1', "JSONDecodeError"),
    ],
)
def test_an_unreadable_answer_is_a_permanent_error(fake, body, reason):
    fake.list_body = body
    with pytest.raises(PermanentError, match=f"list workflow runs of {REPO}: unreadable answer.*{reason}"):
        make_poller(fake).poll(NOW)


def test_the_token_is_sent_as_authorization_and_never_shown(fake, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="github")  # PyGithub sets its logger to INFO on import
    fake.add_run(REPO, 1, "Train", NOW - HOUR, NOW - HOUR, NOW - HOUR + 5000)
    cfg = config(fake)
    payloads = GithubPoller(cfg).poll(NOW)
    assert len(payloads) == 2
    assert {r.headers["authorization"] for r in fake.requests} == {f"token {TOKEN}"}
    assert any(r.name.startswith("github") for r in caplog.records)  # PyGithub logged its requests...
    assert TOKEN not in caplog.text  # ...without the token
    assert TOKEN not in json.dumps(payloads)
    assert TOKEN not in repr(cfg) and TOKEN not in str(cfg.model_dump())


def test_config_checks_and_the_factory_pickles(tmp_path, monkeypatch):
    monkeypatch.setenv("GH_TOKEN_FOR_TEST", TOKEN)
    cfg = GithubConfig.model_validate(
        {"name": "gh", "type": "github", "token": {"env": "GH_TOKEN_FOR_TEST"}, "repositories": [REPO],
         "state_file": "state/gh.json"},
        context={"base_dir": str(tmp_path)},
    )  # fmt: skip
    assert cfg.state_file == str(tmp_path / "state" / "gh.json")
    assert (cfg.base_url, cfg.page_size, cfg.lookback_s, cfg.workflows) == ("https://api.github.com", 100, 86_400, None)
    assert cfg.token.get_secret_value() == TOKEN
    restored = pickle.loads(pickle.dumps(functools.partial(GithubPoller, cfg)))()
    assert isinstance(restored, GithubPoller)
    bad = [
        ({"repositories": ["fraud-model"]}, 'is not "owner/name"'),
        ({"repositories": []}, "at least 1 item"),
        ({"repositories": [REPO, REPO.upper()]}, "must be unique"),
        ({"repositories": [REPO], "page_size": 101}, "less than or equal to 100"),
        ({"repositories": [REPO], "workflows": []}, "list non-empty workflow names"),
        ({"repositories": [REPO], "token": TOKEN}, "not a literal value"),
        ({"repositories": [REPO], "base_url": "api.github.com"}, "should match pattern"),
    ]
    for values, message in bad:
        with pytest.raises(ValidationError, match=message) as raised:
            GithubConfig(name="gh", **values)
        assert TOKEN not in str(raised.value)


# --- end to end through Beam ----------------------------------------------------------------------


def _duration_points(table) -> list[tuple[str, float]]:
    columns = (table.column(c).to_pylist() for c in ("name", "value", "tags"))
    return [(tags_from_json(tags)["workflow"], v) for n, v, tags in zip(*columns, strict=True)
            if n == "workflow_duration"]  # fmt: skip


def _job_points(table) -> list[tuple[str, str, float]]:
    columns = (table.column(c).to_pylist() for c in ("name", "value", "tags"))
    return [(n, tags_from_json(tags)["job"], v) for n, v, tags in zip(*columns, strict=True)
            if n.startswith("job_")]  # fmt: skip


@pytest.mark.slow
def test_end_to_end_a_bounded_pipeline_gives_points_events_and_health(fake, tmp_path):
    t = NOW - HOUR
    train = fake.add_run(REPO, 1, "Train", t, t, t + 90_000, conclusion="failure")
    fake.add_job(REPO, train, 11, "fit", t + 10_000, t + 85_000, conclusion="failure", created_ms=t)
    fake.add_run(REPO, 2, "Deploy", t + MINUTE, t + MINUTE, t + MINUTE + 30_000)
    fake.add_run(REPO, 3, "Lint", t + 2 * MINUTE, status="in_progress", conclusion=None)
    with TestPipeline() as pipeline:
        out = pipeline | "Read" >> ReadFromGithub(config(fake, state_file=str(tmp_path / "gh.json")), bounded=True)
        points = out["points"] | "Points" >> beam.FlatMap(_duration_points)
        assert_that(points, equal_to([("Train", 90.0), ("Deploy", 30.0)]), label="points")
        jobs = out["points"] | "Jobs" >> beam.FlatMap(_job_points)
        assert_that(jobs, equal_to([("job_duration", "fit", 75.0), ("job_queue_duration", "fit", 10.0)]),
                    label="job points")  # fmt: skip
        events = out["events"] | "Events" >> beam.Map(lambda e: (e.event_type, e.source, e.severity, e.timestamp_ms))
        assert_that(events, equal_to([("workflow_run", "github", "warning", t + 90_000),
                                      ("workflow_job", "github", "error", t + 85_000),
                                      ("workflow_run", "github", "info", t + 90_000)]), label="events")  # fmt: skip
        health = out["health"] | "Health" >> beam.Map(lambda h: (h.integration, h.ok, h.records))
        assert_that(health, equal_to([("gh", True, 7)]), label="health")
        assert_that(out["dead_letters"], equal_to([]), label="no dead letters")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "attempts", "reason"),
    [
        (500, 3, f"gave up after 3 attempts: get_repo {REPO}: HTTP 500 Server Error"),
        (401, 1, f"permanent failure: get_repo {REPO}: HTTP 401 Bad credentials (check the token)"),
    ],
)
def test_a_failing_server_is_an_unhealthy_record_not_a_crash(fake, status, attempts, reason):
    if status == 401:
        fake.token = "ghp_theServerExpectsAnotherToken"
    else:
        fake.fail_with = status
    with TestPipeline() as pipeline:
        out = pipeline | ReadFromGithub(config(fake), bounded=True)
        health = out["health"] | beam.Map(lambda h: (h.ok, h.message, TOKEN in h.message))
        expected = f"poll failed after {attempts} attempt(s): {reason}"
        assert_that(health, equal_to([(False, expected, False)]), label="health")
        assert_that(out["events"], equal_to([]), label="events")
    assert fake.paths() == [f"/repos/{REPO}"] * attempts
