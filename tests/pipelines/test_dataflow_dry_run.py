"""The whole graph, batch and --streaming, translates for Dataflow offline (``--dry_run``: nothing is submitted,
no network), with every configured source and sink, unbounded pollers in streaming, and stable step labels."""

import re
from pathlib import Path

import apache_beam as beam
import pytest
import yaml
from apache_beam.options.pipeline_options import PipelineOptions

from airis_mon.config import load_config
from airis_mon.registry import known_types
from pipelines.main import build_pipeline

REPO = Path(__file__).resolve().parents[2]
DRY_RUN = [
    "--runner=DataflowRunner",
    "--dry_run=True",
    "--no_auth",
    "--project=airis-mon-dry-run",
    "--region=us-central1",
    "--temp_location=gs://airis-mon-dry-run/tmp",  # a valid bucket name: an invalid one makes Beam look one up
    "--staging_location=gs://airis-mon-dry-run/staging",
    "--sdk_location=container",
]
SECRETS = {
    "AIRIS_TOKEN_CI": "example-token",
    "LDAP_BIND_PASSWORD": "example-password",
    "DRY_SLACK_URL": "https://hooks.slack.com/services/T0/B0/XXXX",
    "DRY_TEAMS_URL": "https://example.webhook.office.com/webhookb2/x",
    "DRY_PD_KEY": "P" * 32,
    "DRY_SIEM_TOKEN": "siem-token",
    "DRY_HOOK_SECRET": "whsec_" + "A" * 32,
}
SINKS = [
    {"name": "storage", "type": "parquet", "path": "./airis-mon-output"},
    {"name": "warehouse", "type": "bigquery", "project": "airis-mon-dry-run", "dataset": "airis_mon"},
    {"name": "log", "type": "notification_log"},
    {"name": "chat", "type": "slack", "webhook_url": {"env": "DRY_SLACK_URL"}},
    {"name": "teams", "type": "teams", "webhook_url": {"env": "DRY_TEAMS_URL"}},
    {"name": "pager", "type": "pagerduty", "routing_key": {"env": "DRY_PD_KEY"}},
    {"name": "siem", "type": "siem", "url": "https://siem.example.com/ingest", "token": {"env": "DRY_SIEM_TOKEN"},
     "signing_secret": {"env": "DRY_SIEM_TOKEN"}},
    {"name": "hooks", "type": "webhooks", "endpoints": [{"name": "ops", "url": "https://hooks.example.com/airis",
                                                          "events": ["*"], "secret": {"env": "DRY_HOOK_SECRET"}}]},
    {"name": "mail", "type": "email", "host": "smtp.example.com", "from_address": "a@example.com",
     "to": ["oncall@example.com"]},
]  # fmt: skip


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """examples/integrations.yaml (every source; the gateway hands off through Pub/Sub) and every sink type."""
    folder = tmp_path_factory.mktemp("dry-run")
    document = yaml.safe_load((REPO / "examples" / "integrations.yaml").read_text())
    for integration in document["integrations"]:
        for key in ("paths",):
            if key in integration:
                integration[key] = [str((REPO / "examples" / p).resolve()) for p in integration[key]]
        if integration["type"] == "gateway":
            integration.update(
                handoff="pubsub", pubsub_topic="projects/airis-mon-dry-run/topics/ingest", spool=str(folder / "spool")
            )
            integration["pubsub_subscription"] = "projects/airis-mon-dry-run/subscriptions/pipeline"
    document["sinks"] = SINKS
    document["routes"] = [{"name": "everyone", "sinks": [s["name"] for s in SINKS[2:]]}]  # the notification sinks
    path = folder / "dataflow.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        patch.chdir(folder)
        return load_config(path)


def translate(config, streaming: bool):
    options = PipelineOptions([*DRY_RUN, *(["--streaming"] if streaming else [])])
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, config, output="/tmp/airis-mon-dry-run")
    result = pipeline.run()  # DataflowRunner with dry_run: translated and validated, not submitted
    return result.job


def names(job) -> set[str]:
    return {t.unique_name for t in job.proto_pipeline.components.transforms.values()}


@pytest.mark.slow
@pytest.mark.parametrize("streaming", [False, True], ids=["batch", "streaming"])
def test_the_graph_translates_for_dataflow_with_every_source_and_sink(config, streaming):
    assert {i.type for i in config.integrations} == set(known_types("source"))
    assert {s.type for s in config.sinks} == set(known_types("sink"))
    job = translate(config, streaming)
    assert job.proto.type.name == ("JOB_TYPE_STREAMING" if streaming else "JOB_TYPE_BATCH")
    steps = names(job)
    for integration in config.integrations:
        assert f"Read[{integration.name}]" in steps
    for sink in config.sinks:
        assert f"Write[{sink.name}]" in steps
    polled = {f"Read[{i.name}]" for i in config.integrations if getattr(getattr(i, "poll", None), "interval_s", None)}
    assert polled, "the example config polls"
    impulses = {name.split("/")[0] for name in steps if name.endswith("/Poll/Every/GenSequence")}  # PeriodicImpulse
    # Streaming: every polled source is unbounded (PeriodicImpulse). Batch: each polls once.
    assert impulses == (polled if streaming else set())
    if streaming:
        assert any(name.startswith("Read[api]/ReadPubSub") for name in steps)  # the gateway's Pub/Sub hand-off
        assert any(name.startswith("Aggregate/EventTimeWindows") for name in steps)  # per input
        assert any(name.startswith("EvaluateRules/EvaluateWithState") for name in steps)


@pytest.mark.slow
def test_streaming_step_labels_are_explicit_and_stable_for_update(config):
    """``--update`` maps the running job's state by step name: names must not depend on the build."""
    first, second = names(translate(config, True)), names(translate(config, True))
    assert first == second
    ours = [n for n in first if n.count("/") <= 1]  # our transforms and their direct steps (not Beam's internals)
    generated = [n for n in ours if re.search(r"<lambda|at 0x[0-9a-f]+|Map\(<", n)]
    assert generated == []
    stateful = [n for n in first if n.endswith("EvaluateWithState")]
    assert stateful == ["EvaluateRules/EvaluateWithState"]


@pytest.mark.slow
def test_a_launch_on_a_service_runner_returns_at_once_and_a_local_run_waits(config, tmp_path, capsys):
    """A flex template launches ``pipelines.main``: it must return once the job is submitted (the launcher
    would otherwise wait on a streaming job forever); local runners are waited for and summarised."""
    from pipelines.main import run

    config_path = tmp_path / "dataflow.yaml"
    storage = {"name": "s", "type": "parquet", "path": str(tmp_path / "out")}
    config_path.write_text(yaml.safe_dump({"integrations": [], "sinks": [storage]}))
    assert run(["--config", str(config_path), *DRY_RUN, "--streaming"]) == 0
    assert "AIRIS-MON submitted to DataflowRunner" in capsys.readouterr().out
    assert run(["--config", str(config_path), "--output", "gs://bucket/out", *DRY_RUN]) == 0  # own path: fine
    no_path = tmp_path / "no-path.yaml"
    no_path.write_text("integrations: []\n")
    assert run(["--config", str(no_path), "--output", "gs://bucket/out", *DRY_RUN]) == 2
    assert "Parquet storage writes local files, not gs://bucket/out" in capsys.readouterr().err
