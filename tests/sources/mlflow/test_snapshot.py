"""Snapshots, their differences, the state file and the config (pure code, no server)."""

from __future__ import annotations

import functools
import json
import pickle

import pytest
from pydantic import ValidationError

from airis_mon.payloads import parse_payload
from sources.mlflow import MlflowConfig, MlflowRegistryPoller, model_metadata
from sources.mlflow.snapshot import (
    RegisteredModelInfo,
    State,
    VersionInfo,
    build_snapshot,
    diff_snapshots,
    environment_of,
    load_state,
    registry_fingerprint,
    save_state,
)

NOW = 1_795_996_000_000


def version(model: str, number: str, stage: str = "None", status: str = "READY", **tags: str) -> VersionInfo:
    return VersionInfo(model, number, stage, status, None, f"run-{number}", dict(tags), f"s3://b/{number}", 1, 2)


def snapshot(*versions: VersionInfo, aliases: dict[str, dict[str, str]] | None = None):
    names = sorted({v.model for v in versions} | set(aliases or {}))
    return build_snapshot([RegisteredModelInfo(n, (aliases or {}).get(n, {})) for n in names], versions)


def test_build_snapshot_takes_aliases_from_the_registered_model_and_sorts_versions_numerically():
    snap = snapshot(version("m", "10"), version("m", "9"), version("m", "2"), aliases={"m": {"b": "9", "a": "9"}})
    assert list(snap) == [("m", "2"), ("m", "9"), ("m", "10")]
    assert snap[("m", "9")]["aliases"] == ["a", "b"]
    assert snap[("m", "2")]["aliases"] == []


def test_status_changes_and_failed_registrations():
    waiting = "PENDING_REGISTRATION"
    pending = snapshot(version("m", "1", status=waiting), version("m", "2", status=waiting))
    after = snapshot(version("m", "1", status="READY"), version("m", "2", status="FAILED_REGISTRATION"),
                     version("m", "3", status="FAILED_REGISTRATION"))  # fmt: skip
    events = diff_snapshots(pending, after, NOW)
    assert [(e["data"]["version"], e["data"]["change"], e["severity"]) for e in events] == [
        ("1", "model_version.status_changed", "info"),
        ("2", "model_version.status_changed", "error"),
        ("3", "model_version.created", "error"),
    ]
    assert (events[1]["data"]["from_status"], events[1]["data"]["to_status"]) == (
        "PENDING_REGISTRATION",
        "FAILED_REGISTRATION",
    )
    for event in events:  # every payload passes the public contract's parser
        points, parsed, dead = parse_payload(event, "test")
        assert (points, dead, parsed[0].timestamp_ms, parsed[0].severity) == ([], [], NOW, event["severity"])


def test_no_change_no_event_and_a_tag_value_change_is_one_event():
    before = snapshot(version("m", "1", team="a"))
    assert diff_snapshots(before, snapshot(version("m", "1", team="a")), NOW) == []
    [event] = diff_snapshots(before, snapshot(version("m", "1", team="b")), NOW)
    assert (event["data"]["change"], event["data"]["tags"], event["data"]["previous_value"]) == (
        "model_version_tag.set",
        {"team": "b"},
        "a",
    )


def test_an_alias_that_disappears_points_nowhere():
    before = snapshot(version("m", "1"), aliases={"m": {"champion": "1"}})
    [event] = diff_snapshots(before, snapshot(version("m", "1")), NOW)
    assert (event["data"]["change"], event["data"]["alias"], event["data"]["now_points_to"]) == (
        "model_version_alias.deleted",
        "champion",
        None,
    )


def test_environment_by_stage_maps_the_stage_first_then_aliases_case_insensitively():
    mapping = {"Production": "prod", "champion": "prod-alias", "canary": "canary"}
    assert environment_of({"stage": "production", "aliases": ["canary"]}, mapping) == "prod"
    assert environment_of({"stage": "None", "aliases": ["Canary", "champion"]}, mapping) == "canary"
    assert environment_of({"stage": "Archived", "aliases": []}, mapping) is None
    [event] = diff_snapshots({}, snapshot(version("m", "1", stage="Production")), NOW, mapping)
    assert event["data"]["environment"] == "prod"


def test_model_metadata_is_the_enrichment_view():
    snap = snapshot(version("m", "1", stage="Staging", team="risk"), aliases={"m": {"champion": "1"}})
    assert model_metadata(snap) == {
        ("m", "1"): {"stage": "Staging", "aliases": ["champion"], "run_id": "run-1", "tags": {"team": "risk"}}
    }


def test_the_state_file_round_trips_and_belongs_to_one_registry(tmp_path):
    path = tmp_path / "deep" / "state.json"
    fingerprint = registry_fingerprint("http://mlflow:5000")
    assert load_state(path, fingerprint) == State()  # no file yet: a fresh poller
    state = State(snapshot(version("m", "1", team="x"), aliases={"m": {"champion": "1"}}), {"gone"})
    save_state(path, state, fingerprint)
    assert load_state(path, fingerprint) == state
    assert "http://mlflow" not in path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]
    with pytest.raises(ValueError, match="another registry"):
        load_state(path, registry_fingerprint("http://other:5000"))
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="unknown format"):
        load_state(path, fingerprint)
    path.write_text(json.dumps({"format": 1, "registry": fingerprint, "versions": [{"stage": "x"}]}))
    with pytest.raises(ValueError, match="malformed"):
        load_state(path, fingerprint)


def test_models_dropped_from_the_config_are_forgotten_not_reported_deleted(tmp_path):
    path = tmp_path / "state.json"
    uri = "http://127.0.0.1:9"
    save_state(path, State(snapshot(version("a", "1"), version("b", "1")), {"c"}), registry_fingerprint(uri))
    poller = MlflowRegistryPoller(MlflowConfig(name="r", tracking_uri=uri, models=["a"], state_file=str(path)))
    poller.setup()
    assert (list(poller.state.snapshot), poller.state.missing) == ([("a", "1")], set())


def test_config_rules_and_a_picklable_factory(tmp_path):
    config = MlflowConfig.model_validate(
        {"name": "r", "type": "mlflow", "tracking_uri": "http://m:5000", "state_file": "state/s.json"},
        context={"base_dir": str(tmp_path)},
    )
    assert config.state_file == str(tmp_path / "state" / "s.json")
    assert config.effective_registry_uri() == "http://m:5000"
    factory = pickle.loads(pickle.dumps(functools.partial(MlflowRegistryPoller, config)))
    assert isinstance(factory(), MlflowRegistryPoller)
    bad = [
        {"models": []},
        {"models": ["a", "a"]},
        {"username": "u"},
        {"page_size": 0},
        {"unknown_key": 1},
    ]
    for extra in bad:
        with pytest.raises(ValidationError):
            MlflowConfig.model_validate({"name": "r", "tracking_uri": "http://m:5000", **extra})
