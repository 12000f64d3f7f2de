"""Signed inbound webhooks: signatures (computed here, independently), replay
refusal, and normalization of recorded MLflow 3 / GitHub bodies into payloads
that the public contract accepts."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import threading
import uuid
from pathlib import Path

import pytest

from airis_mon.errors import AirisError, PermanentError
from airis_mon.payloads import parse_payload
from sources.gateway.inbound import (
    ReplayGuard,
    WebhookRejected,
    normalize_github,
    normalize_mlflow,
    verify_github,
    verify_mlflow,
)
from tests.conftest import DAY_MS
from tests.mutation import mutate

TESTDATA = Path(__file__).parent / "testdata"
SECRET = b"whsec-airis-mon-test-3f1b"
NOW_S = DAY_MS // 1000 + 305  # 2026-11-28T00:05:05Z, 5 s after the recorded MLflow bodies
RECEIVED_MS = NOW_S * 1000

MLFLOW_SAMPLES = sorted(p.name for p in TESTDATA.glob("mlflow_*.json"))
GITHUB_SAMPLES = sorted(p.name for p in TESTDATA.glob("github_*.json"))

GITHUB_DOC_SECRET = b"It's a Secret to Everybody"
GITHUB_DOC_PAYLOAD = b"Hello, World!"
GITHUB_DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def raw(name: str) -> bytes:
    return (TESTDATA / name).read_bytes()


def body(name: str) -> dict:
    return json.loads(raw(name))


def mlflow_signature(secret: bytes, delivery_id: str, timestamp: str, raw_body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + raw_body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def github_signature(secret: bytes, raw_body: bytes) -> str:
    return "sha256=" + hmac.new(secret, raw_body, hashlib.sha256).hexdigest()


def assert_contract(payloads: list[dict]) -> None:
    """Every payload parses under the public contract, without a dead letter."""
    for payload in payloads:
        points, events, dead = parse_payload(payload)
        assert dead == [], dead
        assert points or events
        json.dumps(payload, allow_nan=False)  # spoolable as strict JSON


def rejected(call, *args, **kwargs) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        call(*args, **kwargs)
    return info.value


# --------------------------------------------------------------------------- MLflow signatures


@pytest.mark.parametrize("name", MLFLOW_SAMPLES)
def test_mlflow_valid_signature_passes(name):
    delivery_id, timestamp = str(uuid.uuid4()), str(NOW_S - 2)
    signature = mlflow_signature(SECRET, delivery_id, timestamp, raw(name))
    assert verify_mlflow(SECRET, delivery_id, timestamp, signature, raw(name), NOW_S) is None


def test_mlflow_signature_agrees_with_mlflows_own_signer():
    delivery = pytest.importorskip("mlflow.webhooks.delivery")
    signer = getattr(delivery, "_generate_hmac_signature", None)
    if signer is None:
        pytest.skip("this MLflow version has no _generate_hmac_signature")
    payload = raw("mlflow_model_version_alias_created.json")
    delivery_id, timestamp = str(uuid.uuid4()), str(NOW_S)
    signature = signer(SECRET.decode(), delivery_id, timestamp, payload.decode())
    assert signature == mlflow_signature(SECRET, delivery_id, timestamp, payload)
    verify_mlflow(SECRET, delivery_id, timestamp, signature, payload, NOW_S)


def test_mlflow_example_payloads_of_every_event_verify_and_normalize():
    """Bodies built exactly as MLflow's sender builds them, for every event it knows."""
    types = pytest.importorskip("mlflow.webhooks.types")
    guard = ReplayGuard()
    for (entity, action), payload_class in types.EVENT_TO_PAYLOAD_CLASS.items():
        envelope = {
            "entity": entity.value,
            "action": action.value,
            "timestamp": "2026-11-28T00:05:00.000001+00:00",
            "data": payload_class.example(),
        }
        payload = json.dumps(envelope).encode("utf-8")
        delivery_id, timestamp = str(uuid.uuid4()), str(NOW_S)
        signature = mlflow_signature(SECRET, delivery_id, timestamp, payload)
        verify_mlflow(SECRET, delivery_id, timestamp, signature, payload, NOW_S)
        assert guard.seen(delivery_id, NOW_S) is False
        out = normalize_mlflow(json.loads(payload), RECEIVED_MS)
        assert_contract(out)
        assert [p["data"]["change"] for p in out] == [f"{entity.value}.{action.value}"]
        assert out[0]["timestamp"] == DAY_MS + 300_000


def test_mlflow_wrong_secret_is_403():
    payload = raw("mlflow_model_version_created.json")
    signature = mlflow_signature(b"another-secret", "d-1", str(NOW_S), payload)
    error = rejected(verify_mlflow, SECRET, "d-1", str(NOW_S), signature, payload, NOW_S)
    assert error.status == 403


@pytest.mark.parametrize(
    "change",
    ["body", "delivery_id", "timestamp", "version", "garbage", "non_ascii", "truncated"],
)
def test_mlflow_tampered_request_is_403(change):
    payload = raw("mlflow_model_version_alias_created.json")
    delivery_id, timestamp = "7d0c2f0e-4a9b-4c36-9d5e-2f7f3a1b6c11", str(NOW_S)
    signature = mlflow_signature(SECRET, delivery_id, timestamp, payload)
    if change == "body":
        payload = payload.replace(b"champion", b"challenger")
    elif change == "delivery_id":
        delivery_id = "7d0c2f0e-4a9b-4c36-9d5e-2f7f3a1b6c12"
    elif change == "timestamp":
        timestamp = str(NOW_S - 1)  # still fresh, but not what was signed
    elif change == "version":
        signature = "v2," + signature[3:]
    elif change == "garbage":
        signature = "v1,!!!not-base64!!!"
    elif change == "non_ascii":
        signature = "v1,é" + signature[4:]
    elif change == "truncated":
        signature = signature[:-4]
    error = rejected(verify_mlflow, SECRET, delivery_id, timestamp, signature, payload, NOW_S)
    assert (error.status, error.reason) == (403, "signature mismatch")


def test_mlflow_accepts_any_matching_entry_of_a_signature_list():
    payload = raw("mlflow_model_version_tag_set.json")
    good = mlflow_signature(SECRET, "d-2", str(NOW_S), payload)
    stale_key = mlflow_signature(b"rotated-out-secret", "d-2", str(NOW_S), payload)
    verify_mlflow(SECRET, "d-2", str(NOW_S), f"{stale_key} {good}", payload, NOW_S)


@pytest.mark.parametrize("missing", ["delivery_id", "timestamp", "signature"])
@pytest.mark.parametrize("absent", [None, "", "  "])
def test_mlflow_missing_header_is_400(missing, absent):
    payload = raw("mlflow_model_version_created.json")
    headers = {"delivery_id": "d-3", "timestamp": str(NOW_S)}
    headers["signature"] = mlflow_signature(SECRET, "d-3", str(NOW_S), payload)
    headers[missing] = absent
    error = rejected(verify_mlflow, SECRET, raw_body=payload, now_s=NOW_S, **headers)
    assert error.status == 400
    assert {"delivery_id": "X-MLflow-Delivery-Id", "timestamp": "X-MLflow-Timestamp"}.get(
        missing, "X-MLflow-Signature"
    ) in error.reason


@pytest.mark.parametrize("offset_s", [-301, 301, -86_400, 10**6])
def test_mlflow_stale_or_future_timestamp_is_401(offset_s):
    payload = raw("mlflow_model_version_created.json")
    timestamp = str(NOW_S + offset_s)
    signature = mlflow_signature(SECRET, "d-4", timestamp, payload)
    error = rejected(verify_mlflow, SECRET, "d-4", timestamp, signature, payload, NOW_S)
    assert (error.status, error.reason) == (401, "stale timestamp")


@pytest.mark.parametrize("offset_s", [-300, 0, 300])
def test_mlflow_timestamp_at_the_tolerance_edge_passes(offset_s):
    payload = raw("mlflow_model_version_created.json")
    timestamp = str(NOW_S + offset_s)
    signature = mlflow_signature(SECRET, "d-5", timestamp, payload)
    verify_mlflow(SECRET, "d-5", timestamp, signature, payload, NOW_S)


def test_mlflow_tolerance_is_configurable():
    payload = raw("mlflow_model_version_created.json")
    timestamp = str(NOW_S - 60)
    signature = mlflow_signature(SECRET, "d-6", timestamp, payload)
    verify_mlflow(SECRET, "d-6", timestamp, signature, payload, NOW_S, tolerance_s=60)
    error = rejected(verify_mlflow, SECRET, "d-6", timestamp, signature, payload, NOW_S, tolerance_s=59)
    assert error.status == 401


@pytest.mark.parametrize("timestamp", ["abc", "1.5", "-5", "1e9", "0x10", "2026-11-28T00:05:00Z", "1" * 20])
def test_mlflow_non_integer_timestamp_is_401(timestamp):
    payload = raw("mlflow_model_version_created.json")
    signature = mlflow_signature(SECRET, "d-7", timestamp, payload)
    error = rejected(verify_mlflow, SECRET, "d-7", timestamp, signature, payload, NOW_S)
    assert error.status == 401


def test_empty_secret_is_a_configuration_error_not_a_rejection():
    payload = raw("mlflow_model_version_created.json")
    with pytest.raises(ValueError, match="secret"):
        verify_mlflow(b"", "d-8", str(NOW_S), "v1,AAAA", payload, NOW_S)
    with pytest.raises(ValueError, match="secret"):
        verify_github(b"", "sha256=00", payload)
    with pytest.raises(ValueError, match="secret"):  # even when the request would be refused anyway
        verify_mlflow(b"", None, None, None, payload, NOW_S)
    with pytest.raises(ValueError, match="secret"):
        verify_github(b"", None, payload)


def test_webhook_rejected_is_a_permanent_airis_error():
    error = WebhookRejected(403, "signature mismatch")
    assert isinstance(error, PermanentError)
    assert isinstance(error, AirisError)
    assert (error.status, error.reason) == (403, "signature mismatch")
    assert "403" in str(error)


# --------------------------------------------------------------------------- replay guard


def test_replay_guard_refuses_a_repeated_id():
    guard = ReplayGuard(tolerance_s=300)
    assert guard.seen("a", 1000.0) is False
    assert guard.seen("b", 1001.0) is False
    assert guard.seen("a", 1002.0) is True
    assert guard.seen("a", 1599.0) is True  # still inside 2 * tolerance


def test_replay_guard_forgets_after_twice_the_tolerance():
    guard = ReplayGuard(tolerance_s=300)
    guard.seen("a", 1000.0)
    guard.seen("b", 1500.0)
    assert guard.seen("a", 1600.0) is False  # forgotten, recorded again
    assert guard.seen("a", 1601.0) is True
    guard.seen("c", 5000.0)
    assert len(guard) == 1  # old ids are evicted, not kept


def test_replay_guard_is_bounded():
    guard = ReplayGuard(tolerance_s=300, max_entries=3)
    for index, delivery_id in enumerate("abcd"):
        assert guard.seen(delivery_id, 1000.0 + index) is False
    assert len(guard) == 3
    assert guard.seen("d", 1010.0) is True
    assert guard.seen("a", 1011.0) is False  # the oldest was dropped to make room


def test_replay_guard_counts_one_first_sighting_across_threads():
    guard = ReplayGuard()
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(guard.seen("same", 1000.0))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] + [True] * 15


@pytest.mark.parametrize("kwargs", [{"tolerance_s": 0}, {"max_entries": 0}])
def test_replay_guard_rejects_nonsense_limits(kwargs):
    with pytest.raises(ValueError):
        ReplayGuard(**kwargs)


# --------------------------------------------------------------------------- MLflow normalization

MLFLOW_EXPECTED = {
    "mlflow_registered_model_created.json": {
        "model_name": "fraud",
        "change": "registered_model.created",
        "tags": {"team": "risk"},
        "description": "Card fraud classifier",
    },
    "mlflow_model_version_created.json": {
        "model_name": "fraud",
        "version": "12",
        "change": "model_version.created",
        "run_id": "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
        "source": "mlflow-artifacts:/1/0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e/artifacts/model",
        "tags": {"validated": "false"},
    },
    "mlflow_model_version_tag_set.json": {
        "model_name": "fraud",
        "version": "12",
        "change": "model_version_tag.set",
        "tags": {"validation_status": "approved"},
    },
    "mlflow_model_version_tag_deleted.json": {
        "model_name": "fraud",
        "version": "12",
        "change": "model_version_tag.deleted",
        "tags": {"validation_status": None},
    },
    "mlflow_model_version_alias_created.json": {
        "model_name": "fraud",
        "version": "12",
        "change": "model_version_alias.created",
        "alias": "champion",
    },
    "mlflow_model_version_alias_deleted.json": {
        "model_name": "fraud",
        "change": "model_version_alias.deleted",
        "alias": "champion",
    },
}


@pytest.mark.parametrize("name", MLFLOW_SAMPLES)
def test_normalize_mlflow_recorded_bodies(name):
    recorded = body(name)
    out = normalize_mlflow(recorded, RECEIVED_MS)
    assert_contract(out)
    assert len(out) == 1
    event = out[0]
    assert (event["event_type"], event["source"], event["severity"]) == ("model_version_status", "mlflow", "info")
    assert event["timestamp"] == DAY_MS + 300_123  # the body's 2026-11-28T00:05:00.123456+00:00
    assert event["data"]["raw"] == recorded["data"]
    assert {k: v for k, v in event["data"].items() if k != "raw"} == MLFLOW_EXPECTED[name]


def test_normalize_mlflow_alias_deleted_has_no_version():
    data = normalize_mlflow(body("mlflow_model_version_alias_deleted.json"), RECEIVED_MS)[0]["data"]
    assert "version" not in data


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (DAY_MS + 7, DAY_MS + 7),
        ("2026-11-28T00:00:01Z", DAY_MS + 1000),
        (None, RECEIVED_MS),
        ("yesterday", RECEIVED_MS),
        (True, RECEIVED_MS),
        ({"t": 1}, RECEIVED_MS),
        (10**30, RECEIVED_MS),
        (-5, RECEIVED_MS),
    ],
)
def test_normalize_mlflow_timestamp_or_receive_time(timestamp, expected):
    recorded = body("mlflow_model_version_created.json")
    recorded["timestamp"] = timestamp
    out = normalize_mlflow(recorded, RECEIVED_MS)
    assert_contract(out)
    assert out[0]["timestamp"] == expected


def test_normalize_mlflow_unknown_entity_or_action_is_kept():
    out = normalize_mlflow(
        {"entity": "budget_policy", "action": "exceeded", "data": {"budget_policy_id": "bp-1"}, "workspace": "ml"},
        RECEIVED_MS,
    )
    assert_contract(out)
    assert out[0]["severity"] == "info"
    assert out[0]["data"]["change"] == "budget_policy.exceeded"
    assert out[0]["data"]["workspace"] == "ml"
    assert out[0]["data"]["model_name"] is None


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        [],
        "model_version.created",
        42,
        {},
        {"entity": "model_version"},
        {"data": "not an object"},
        {"data": [1, 2]},
        {"entity": {"x": 1}, "action": ["y"], "timestamp": [], "data": {"name": {"x": 1}, "version": [1]}},
        {"entity": "model_version_tag", "action": "set", "data": {"key": 5, "value": {"nested": True}}},
        {"entity": "registered_model", "action": "created", "data": {"tags": "not a dict", "name": None}},
    ],
)
def test_normalize_mlflow_garbage_never_raises(garbage):
    out = normalize_mlflow(garbage, RECEIVED_MS)
    assert_contract(out)
    assert len(out) == 1
    assert out[0]["data"]["change"]


# --------------------------------------------------------------------------- GitHub signatures


def test_github_documented_test_vector():
    # The vector of GitHub's "Validating webhook deliveries" page, recomputed here.
    assert github_signature(GITHUB_DOC_SECRET, GITHUB_DOC_PAYLOAD) == GITHUB_DOC_SIGNATURE
    verify_github(GITHUB_DOC_SECRET, GITHUB_DOC_SIGNATURE, GITHUB_DOC_PAYLOAD)


@pytest.mark.parametrize("name", GITHUB_SAMPLES)
def test_github_valid_signature_passes(name):
    assert verify_github(SECRET, github_signature(SECRET, raw(name)), raw(name)) is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        GITHUB_DOC_SIGNATURE.replace("sha256=", "sha1="),
        GITHUB_DOC_SIGNATURE.upper(),
        GITHUB_DOC_SIGNATURE[:-1],
        GITHUB_DOC_SIGNATURE + "0",
        GITHUB_DOC_SIGNATURE[:-1] + "é",
        GITHUB_DOC_SIGNATURE.removeprefix("sha256="),
    ],
)
def test_github_missing_or_malformed_signature_is_403(header):
    error = rejected(verify_github, GITHUB_DOC_SECRET, header, GITHUB_DOC_PAYLOAD)
    assert error.status == 403


def test_github_wrong_secret_or_tampered_body_is_403():
    payload = raw("github_push.json")
    signature = github_signature(SECRET, payload)
    assert rejected(verify_github, b"another-secret", signature, payload).status == 403
    assert rejected(verify_github, SECRET, signature, payload.replace(b"main", b"mainx", 1)).status == 403
    assert rejected(verify_github, SECRET, signature, payload + b"\n").status == 403


# --------------------------------------------------------------------------- GitHub normalization


def test_workflow_run_completed_failure_gives_a_warning_and_a_duration_metric():
    out = normalize_github("workflow_run", body("github_workflow_run_completed_failure.json"), RECEIVED_MS)
    assert_contract(out)
    event, metrics = out
    assert (event["event_type"], event["source"], event["severity"]) == ("workflow_run", "github", "warning")
    assert event["timestamp"] == DAY_MS + 13 * 60_000 + 30_000  # updated_at
    assert event["data"] == {
        "repository": "octo-org/fraud-model",
        "workflow": "Train and evaluate",
        "action": "completed",
        "run_number": 562,
        "run_id": 30433642,
        "run_attempt": 1,
        "status": "completed",
        "conclusion": "failure",
        "branch": "main",
        "actor": "mona",
        "event": "push",
        "html_url": "https://github.com/octo-org/fraud-model/actions/runs/30433642",
        "duration_s": 750.0,
    }
    assert metrics == {
        "timestamp": event["timestamp"],
        "source": "github_actions",
        "metrics": [
            {
                "name": "workflow_duration",
                "value": 750.0,
                "unit": "s",
                "tags": {
                    "repository": "octo-org/fraud-model",
                    "workflow": "Train and evaluate",
                    "status": "completed",
                    "conclusion": "failure",
                    "branch": "main",
                    "actor": "mona",
                },
            }
        ],
    }
    points, _, _ = parse_payload(metrics)
    assert [(p[2], p[3], p[4]) for p in points] == [("workflow_duration", 750.0, "s")]


def test_workflow_run_completed_success_is_info_with_its_duration():
    out = normalize_github("workflow_run", body("github_workflow_run_completed_success.json"), RECEIVED_MS)
    assert_contract(out)
    assert out[0]["severity"] == "info"
    assert out[1]["metrics"][0]["value"] == 495.0


def test_workflow_run_requested_gives_only_an_event():
    out = normalize_github("workflow_run", body("github_workflow_run_requested.json"), RECEIVED_MS)
    assert_contract(out)
    assert len(out) == 1
    assert out[0]["data"]["status"] == "queued"
    assert out[0]["data"]["conclusion"] is None
    assert out[0]["severity"] == "info"


def test_workflow_run_in_progress_gives_only_an_event():
    recorded = body("github_workflow_run_requested.json")
    recorded["action"] = "in_progress"
    recorded["workflow_run"]["status"] = "in_progress"
    recorded["workflow_run"]["updated_at"] = "2026-11-28T00:02:00Z"
    out = normalize_github("workflow_run", recorded, RECEIVED_MS)
    assert_contract(out)
    assert len(out) == 1
    assert out[0]["data"]["duration_s"] == 75.0  # elapsed so far
    assert out[0]["timestamp"] == DAY_MS + 120_000


@pytest.mark.parametrize(
    ("conclusion", "severity"),
    [
        ("failure", "warning"),
        ("timed_out", "warning"),
        ("cancelled", "warning"),
        ("startup_failure", "warning"),
        ("success", "info"),
        ("skipped", "info"),
        ("neutral", "info"),
        (None, "info"),
    ],
)
def test_workflow_run_severity_follows_the_conclusion(conclusion, severity):
    recorded = body("github_workflow_run_completed_success.json")
    recorded["workflow_run"]["conclusion"] = conclusion
    out = normalize_github("workflow_run", recorded, RECEIVED_MS)
    assert_contract(out)
    assert out[0]["severity"] == severity
    assert out[1]["metrics"][0]["tags"]["conclusion"] == (conclusion or "")


def test_workflow_run_without_start_time_has_no_duration_metric():
    recorded = body("github_workflow_run_completed_success.json")
    del recorded["workflow_run"]["run_started_at"]
    out = normalize_github("workflow_run", recorded, RECEIVED_MS)
    assert_contract(out)
    assert len(out) == 1
    assert "duration_s" not in out[0]["data"]


def test_workflow_run_falls_back_to_workflow_name_and_sender():
    recorded = body("github_workflow_run_completed_success.json")
    recorded["workflow_run"]["name"] = ""
    del recorded["workflow_run"]["actor"]
    del recorded["workflow_run"]["triggering_actor"]
    recorded["sender"]["login"] = "release-bot"
    data = normalize_github("workflow_run", recorded, RECEIVED_MS)[0]["data"]
    assert (data["workflow"], data["actor"]) == ("Train and evaluate", "release-bot")


def test_push():
    out = normalize_github("push", body("github_push.json"), RECEIVED_MS)
    assert_contract(out)
    assert len(out) == 1
    event = out[0]
    assert (event["event_type"], event["source"], event["severity"]) == ("push", "github", "info")
    assert event["timestamp"] == DAY_MS + 38_000  # head_commit.timestamp
    assert event["data"] == {
        "repository": "octo-org/fraud-model",
        "ref": "refs/heads/main",
        "branch": "main",
        "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "after": "acb5820ced9479c074f688cc328bf03f341a511d",
        "pusher": "mona",
        "commits": 2,
        "head_commit": "Retrain fraud model on November data",
        "created": False,
        "deleted": False,
        "forced": False,
    }


def test_push_of_a_deleted_tag_uses_pushed_at_and_has_no_branch():
    recorded = body("github_push.json")
    recorded.update(ref="refs/tags/v7.0.0", after="0" * 40, deleted=True, commits=[], head_commit=None)
    out = normalize_github("push", recorded, RECEIVED_MS)
    assert_contract(out)
    data = out[0]["data"]
    assert (data["branch"], data["head_commit"], data["commits"], data["deleted"]) == (None, None, 0, True)
    assert out[0]["timestamp"] == DAY_MS + 40_000  # repository.pushed_at, unix seconds in push events


def test_push_head_commit_message_is_cut_to_200_characters():
    recorded = body("github_push.json")
    recorded["head_commit"]["message"] = "x" * 500 + "\nsecond line"
    data = normalize_github("push", recorded, RECEIVED_MS)[0]["data"]
    assert data["head_commit"] == "x" * 200


def test_pull_request():
    out = normalize_github("pull_request", body("github_pull_request_closed_merged.json"), RECEIVED_MS)
    assert_contract(out)
    assert len(out) == 1
    event = out[0]
    assert (event["event_type"], event["source"], event["severity"]) == ("pull_request", "github", "info")
    assert event["timestamp"] == DAY_MS + 37_000  # pull_request.updated_at
    data = event["data"]
    assert len(data.pop("title")) == 200
    assert data == {
        "repository": "octo-org/fraud-model",
        "action": "closed",
        "number": 42,
        "state": "closed",
        "merged": True,
        "base": "main",
        "head": "threshold",
        "user": "mona",
        "html_url": "https://github.com/octo-org/fraud-model/pull/42",
    }


def test_ping_gives_nothing():
    assert normalize_github("ping", body("github_ping.json"), RECEIVED_MS) == []


def test_other_events_give_a_minimal_event():
    out = normalize_github("release", body("github_release_published.json"), RECEIVED_MS)
    assert_contract(out)
    assert out == [
        {
            "timestamp": RECEIVED_MS,
            "event_type": "github_release",
            "source": "github",
            "severity": "info",
            "data": {"repository": "octo-org/fraud-model", "action": "published", "sender": "octocat"},
        }
    ]


@pytest.mark.parametrize(
    ("header", "event_type"),
    [
        ("Check Run!", "github_check_run"),
        ("", "github_unknown"),
        (None, "github_unknown"),
        ("x" * 500, "github_" + "x" * 64),
    ],
)
def test_odd_event_names_are_sanitised(header, event_type):
    out = normalize_github(header, {}, RECEIVED_MS)
    assert_contract(out)
    assert out[0]["event_type"] == event_type


GARBAGE_BODIES = [
    None,
    [],
    "text",
    7,
    {},
    {"workflow_run": None, "pull_request": "x", "head_commit": 3, "commits": "many", "repository": []},
    {"workflow_run": {"run_started_at": "later", "updated_at": {"x": 1}, "conclusion": ["failure"], "actor": "mona"}},
    {
        "workflow_run": {"run_started_at": "2026-11-28T00:10:00Z", "updated_at": "2026-11-28T00:00:00Z"},
        "action": "completed",
    },
    {"ref": 5, "pusher": "mona", "head_commit": {"message": ""}, "repository": {"pushed_at": "soon"}},
    {
        "pull_request": {"title": None, "base": "main", "head": None, "user": "mona", "merged": "yes"},
        "number": {"n": 1},
    },
]


@pytest.mark.parametrize("event_name", ["workflow_run", "push", "pull_request", "ping", "issues"])
@pytest.mark.parametrize("garbage", GARBAGE_BODIES)
def test_normalize_github_garbage_never_raises(event_name, garbage):
    out = normalize_github(event_name, garbage, RECEIVED_MS)
    assert_contract(out)
    assert len(out) == (0 if event_name == "ping" else 1)


# --------------------------------------------------------------------------- mutated recorded bodies


@pytest.mark.parametrize("name", GITHUB_SAMPLES + MLFLOW_SAMPLES)
def test_mutated_recorded_bodies_never_raise(name):
    rng = random.Random(name)
    recorded = body(name)
    event_name = name.removeprefix("github_").split(".")[0]
    event_name = next(
        (e for e in ("workflow_run", "push", "pull_request", "ping") if event_name.startswith(e)), "release"
    )
    for _ in range(150):
        mutated = mutate(copy.deepcopy(recorded), rng)
        if name.startswith("mlflow_"):
            out = normalize_mlflow(mutated, RECEIVED_MS)
            assert len(out) == 1
        else:
            out = normalize_github(event_name, mutated, RECEIVED_MS)
        assert_contract(out)
