"""The ``mlflow`` source against a real ``mlflow server`` (sqlite backend, one per module).

Models, versions, aliases, stages and tags are made with ``MlflowClient``;
each test uses its own model names so that tests do not see each other's
changes (except the one that polls every model, which filters nothing and
runs against whatever exists: it asserts "no change, no event" exactly).
"""

from __future__ import annotations

import json
import sqlite3
import time
import warnings

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from mlflow.tracking import MlflowClient

from airis_mon.errors import TransientError
from airis_mon.retry import RetryConfig
from sources.mlflow import MlflowConfig, MlflowRegistryPoller, ReadFromMlflow, model_metadata
from sources.polling import PollSettings

FAST = RetryConfig(max_attempts=2, initial_backoff_s=0.01, max_backoff_s=0.02, max_total_s=5)
T0 = 1_795_996_000_000


@pytest.fixture(scope="module")
def client(mlflow_server) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)


@pytest.fixture(scope="module")
def run(client):
    return client.create_run(client.create_experiment("airis-mon-tests"))


def register(client: MlflowClient, run, name: str, tags: dict | None = None) -> str:
    """A new version of ``name`` (the model is created when needed); its version number."""
    if name not in {model.name for model in client.search_registered_models(max_results=1000)}:
        client.create_registered_model(name)
    version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags)
    return version.version


def transition(client: MlflowClient, name: str, version: str, stage: str) -> None:
    with warnings.catch_warnings():  # stages are deprecated since MLflow 2.9, and still work
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage(name, version, stage)


def make_config(server, **fields) -> MlflowConfig:
    return MlflowConfig(name="registry", tracking_uri=server.url, poll=PollSettings(retry=FAST), **fields)


def started(config: MlflowConfig) -> MlflowRegistryPoller:
    poller = MlflowRegistryPoller(config)
    poller.setup()
    return poller


def changes(events: list[dict]) -> list[tuple]:
    return [(e["data"]["model_name"], e["data"]["version"], e["data"]["change"], e["severity"]) for e in events]


def test_first_poll_reports_every_version_then_only_what_changed(mlflow_server, client, run):
    v1 = register(client, run, "fraud", tags={"validated": "true"})
    v2 = register(client, run, "fraud")
    client.set_registered_model_alias("fraud", "champion", v1)
    transition(client, "fraud", v1, "Production")
    environments = {"production": "prod", "challenger": "canary"}
    poller = started(make_config(mlflow_server, page_size=1, environment_by_stage=environments))

    first = [e for e in poller.poll(T0) if e["data"]["model_name"] == "fraud"]
    assert changes(first) == [
        ("fraud", "1", "model_version.created", "info"),
        ("fraud", "2", "model_version.created", "info"),
    ]
    data = first[0]["data"]
    assert (first[0]["timestamp"], first[0]["event_type"], first[0]["source"]) == (T0, "model_version_status", "mlflow")
    assert (data["stage"], data["aliases"], data["tags"], data["status"]) == (
        "Production",
        ["champion"],
        {"validated": "true"},
        "READY",
    )
    assert (data["run_id"], data["environment"]) == (run.info.run_id, "prod")
    assert data["source"] == f"{run.info.artifact_uri}/model"
    assert first[1]["data"]["stage"] == "None" and first[1]["data"]["aliases"] == []

    assert poller.poll(T0 + 60_000) == []  # nothing changed: no event at all (every model is polled)

    client.set_registered_model_alias("fraud", "challenger", v2)
    transition(client, "fraud", v2, "Staging")
    client.set_model_version_tag("fraud", v1, "owner", "risk")
    v3 = register(client, run, "fraud")
    third = poller.poll(T0 + 120_000)
    assert changes(third) == [
        ("fraud", "1", "model_version_tag.set", "info"),
        ("fraud", "2", "model_version.stage_changed", "info"),
        ("fraud", "2", "model_version_alias.created", "info"),
        ("fraud", v3, "model_version.created", "info"),
    ]
    tag, stage, alias, _ = (e["data"] for e in third)
    assert (tag["key"], tag["tags"], tag["previous_value"]) == ("owner", {"owner": "risk"}, None)
    assert (stage["from_stage"], stage["to_stage"]) == ("None", "Staging")
    assert (alias["alias"], alias["aliases"], alias["environment"]) == ("challenger", ["challenger"], "canary")

    assert poller.poll(T0 + 180_000) == []
    meta = model_metadata(poller.state.snapshot)
    assert meta[("fraud", "1")] == {
        "stage": "Production",
        "aliases": ["champion"],
        "run_id": run.info.run_id,
        "tags": {"owner": "risk", "validated": "true"},
    }
    assert [key for key in meta if key[0] == "fraud"] == [("fraud", "1"), ("fraud", "2"), ("fraud", "3")]


def test_moved_alias_changed_and_deleted_tags_failed_status_and_deleted_version(mlflow_server, client, run):
    v1 = register(client, run, "churn", tags={"a": "1", "b": "2"})
    v2 = register(client, run, "churn")
    v3 = register(client, run, "churn")
    client.set_registered_model_alias("churn", "champion", v1)
    poller = started(make_config(mlflow_server, models=["churn"]))
    assert len(poller.poll(T0)) == 3

    client.set_registered_model_alias("churn", "champion", v2)  # moves from v1 to v2
    client.set_model_version_tag("churn", v1, "a", "3")
    client.delete_model_version_tag("churn", v1, "b")
    client.delete_model_version("churn", v3)
    with sqlite3.connect(mlflow_server.db) as db:  # MLflow has no API to set a status: the server's own store
        db.execute(
            "UPDATE model_versions SET status='FAILED_REGISTRATION', status_message='copy failed' "
            "WHERE name='churn' AND version=?",
            (int(v2),),
        )
    events = poller.poll(T0 + 60_000)
    assert changes(events) == [
        ("churn", "1", "model_version_alias.deleted", "info"),
        ("churn", "1", "model_version_tag.set", "info"),
        ("churn", "1", "model_version_tag.deleted", "info"),
        ("churn", "2", "model_version.status_changed", "error"),
        ("churn", "2", "model_version_alias.created", "info"),
        ("churn", "3", "model_version.deleted", "warning"),
    ]
    moved, changed, deleted, failed, _, gone = (e["data"] for e in events)
    assert (moved["alias"], moved["now_points_to"], moved["aliases"]) == ("champion", "2", [])
    assert (changed["key"], changed["tags"], changed["previous_value"]) == ("a", {"a": "3"}, "1")
    assert (deleted["key"], deleted["tags"], deleted["previous_value"]) == ("b", {"b": None}, "2")
    assert (failed["from_status"], failed["to_status"], failed["status_message"]) == (
        "READY",
        "FAILED_REGISTRATION",
        "copy failed",
    )
    assert (gone["stage"], gone["run_id"]) == ("None", run.info.run_id)
    assert poller.poll(T0 + 120_000) == []


def test_the_state_file_survives_a_new_poller(mlflow_server, client, run, tmp_path):
    version = register(client, run, "ranker")
    state_file = tmp_path / "state" / "mlflow.json"
    config = make_config(mlflow_server, models=["ranker"], state_file=str(state_file))

    assert changes(started(config).poll(T0)) == [("ranker", version, "model_version.created", "info")]
    saved = json.loads(state_file.read_text())
    assert [(v["model"], v["version"], v["status"]) for v in saved["versions"]] == [("ranker", version, "READY")]
    assert sorted(p.name for p in state_file.parent.iterdir()) == ["mlflow.json"]  # no temporary file left

    assert started(config).poll(T0 + 60_000) == []  # a restarted pipeline: no duplicate
    client.set_model_version_tag("ranker", version, "drift", "checked")
    assert changes(started(config).poll(T0 + 120_000)) == [("ranker", version, "model_version_tag.set", "info")]
    assert started(config).poll(T0 + 180_000) == []

    without_state = make_config(mlflow_server, models=["ranker"])
    assert changes(started(without_state).poll(T0)) == [("ranker", version, "model_version.created", "info")]

    state_file.write_text("{not json")
    events = started(config).poll(T0 + 240_000)
    assert changes(events) == [
        (None, None, "state_file.unreadable", "warning"),
        ("ranker", version, "model_version.created", "info"),
    ]
    assert started(config).poll(T0 + 300_000) == []  # rewritten by the poll that reported it


def test_a_missing_model_is_a_warning_and_the_others_are_still_polled(mlflow_server, client, run):
    version = register(client, run, "scorer")
    poller = started(make_config(mlflow_server, models=["scorer", "never-existed"]))
    first = poller.poll(T0)
    assert changes(first) == [
        ("never-existed", None, "registered_model.missing", "warning"),
        ("scorer", version, "model_version.created", "info"),
    ]
    assert "RESOURCE_DOES_NOT_EXIST" in first[0]["data"]["message"]
    assert poller.poll(T0 + 60_000) == []  # reported when it goes missing, not on every poll

    client.delete_registered_model("scorer")
    assert changes(poller.poll(T0 + 120_000)) == [
        ("scorer", None, "registered_model.missing", "warning"),
        ("scorer", version, "model_version.deleted", "warning"),
    ]
    assert poller.poll(T0 + 180_000) == []
    register(client, run, "scorer")  # back again: its versions are new
    assert changes(poller.poll(T0 + 240_000)) == [("scorer", "1", "model_version.created", "info")]


def _summary(event) -> tuple:
    data = json.loads(event.data)
    return event.event_type, event.source, event.severity, data["model_name"], data["version"], data["change"]


def test_read_from_mlflow_in_a_pipeline_reports_changes_once(mlflow_server, client, run, tmp_path):
    register(client, run, "pipeline-model")
    register(client, run, "pipeline-model")
    config = make_config(mlflow_server, models=["pipeline-model"], state_file=str(tmp_path / "state.json"))

    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromMlflow(config)
        assert_that(out["events"] | beam.Map(_summary), equal_to([
            ("model_version_status", "mlflow", "info", "pipeline-model", "1", "model_version.created"),
            ("model_version_status", "mlflow", "info", "pipeline-model", "2", "model_version.created"),
        ]), label="events")  # fmt: skip
        assert_that(out["health"] | beam.Map(lambda h: (h.integration, h.ok, h.records)),
                    equal_to([("registry", True, 2)]), label="health")  # fmt: skip
        assert_that(out["dead_letters"], equal_to([]), label="dead")

    with beam.Pipeline() as pipeline:  # the same bounded run again: nothing changed, nothing reported
        out = pipeline | ReadFromMlflow(config)
        assert_that(out["events"], equal_to([]), label="events")
        assert_that(out["health"] | beam.Map(lambda h: (h.ok, h.records, h.message)),
                    equal_to([(True, 0, "0 records in 1 attempt(s)")]), label="health")  # fmt: skip


def test_a_stopped_server_is_a_transient_error_and_an_unhealthy_record(mlflow_server, client, run, tmp_path):
    register(client, run, "uptime")
    config = make_config(mlflow_server, models=["uptime"], state_file=str(tmp_path / "state.json"))
    assert len(started(config).poll(T0)) == 1

    mlflow_server.stop()
    try:
        poller = started(config)
        began = time.monotonic()
        with pytest.raises(TransientError, match=r"Connection refused|Failed to establish"):
            poller.poll(T0 + 60_000)
        assert time.monotonic() - began < 10  # no minutes of MLflow client retries

        with beam.Pipeline() as pipeline:
            out = pipeline | ReadFromMlflow(config)
            assert_that(out["health"] | beam.Map(lambda h: (h.integration, h.ok, h.message.split(":")[0])),
                        equal_to([("registry", False, "poll failed after 2 attempt(s)")]), label="health")  # fmt: skip
            assert_that(out["events"], equal_to([]), label="events")
    finally:
        mlflow_server.start()  # same port and database

    poller = started(config)  # the failed polls did not touch the state file
    assert poller.poll(T0 + 120_000) == []
    version = register(client, run, "uptime")
    assert changes(poller.poll(T0 + 180_000)) == [("uptime", version, "model_version.created", "info")]


def test_a_model_name_with_a_quote_is_filtered_exactly(mlflow_server, client, run):
    version = register(client, run, "o'brien")
    register(client, run, "o'brien-2")
    assert changes(started(make_config(mlflow_server, models=["o'brien"])).poll(T0)) == [
        ("o'brien", version, "model_version.created", "info")
    ]
