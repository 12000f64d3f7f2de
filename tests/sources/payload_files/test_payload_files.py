import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.config import parse_config
from sources.payload_files import PayloadFilesConfig, ReadFromPayloadFiles
from tests.conftest import DAY_MS, metrics_payload, write_jsonl


def config_for(tmp_path, **extra) -> PayloadFilesConfig:
    document = {"integrations": [{"name": "rec", "type": "payload_files", "paths": ["*.jsonl*"], **extra}]}
    return parse_config(document, tmp_path).integrations[0]


def test_reads_plain_and_gzip_files_into_points_events_dead_letters_and_health(tmp_path):
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            metrics_payload(DAY_MS, "tf", ("lat", 1.0, "ms", {"m": "x"}), ("lat", "slow", "ms", {})),
            "",
            "not json at all",
        ],
    )
    write_jsonl(
        tmp_path / "b.jsonl.gz",
        [
            {"timestamp": DAY_MS, "event_type": "deploy", "source": "gh", "severity": "info", "data": {}},
            metrics_payload(DAY_MS + 1000, "tf", ("lat", 2.0, "ms", {})),
        ],
        compress=True,
    )
    config = config_for(tmp_path, batch_rows=1)
    with TestPipeline() as pipeline:
        out = pipeline | ReadFromPayloadFiles(config)
        points = out["points"] | beam.FlatMap(lambda t: [tuple(r.values()) for r in t.to_pylist()])
        assert_that(
            points,
            equal_to([(DAY_MS, "tf", "lat", 1.0, "ms", '{"m":"x"}'), (DAY_MS + 1000, "tf", "lat", 2.0, "ms", "{}")]),
            label="points",
        )
        assert_that(
            out["events"] | beam.Map(lambda e: (e.event_type, e.source)), equal_to([("deploy", "gh")]), label="events"
        )
        reasons = out["dead_letters"] | beam.Map(lambda d: (d.component, d.reason.split(" (")[0].split(":")[0]))
        assert_that(
            reasons,
            equal_to([("payload_files:rec", "metrics[1].value"), ("payload_files:rec", "line is not JSON")]),
            label="dead",
        )
        health = out["health"] | beam.Map(lambda h: (h.integration, h.ok, h.records))
        assert_that(health, equal_to([("tf", False, 2), ("gh", True, 1), ("rec", False, 0)]), label="health")


def test_the_original_of_a_non_json_line_is_kept_verbatim(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", ['{"timestamp": 1, "sour'])
    with TestPipeline() as pipeline:
        out = pipeline | ReadFromPayloadFiles(config_for(tmp_path))
        assert_that(
            out["dead_letters"] | beam.Map(lambda d: json.loads(d.original)), equal_to(['{"timestamp": 1, "sour'])
        )


def test_a_source_within_its_rejection_budget_stays_healthy(tmp_path):
    payloads = [metrics_payload(DAY_MS + i, "tf", ("lat", 1.0, "ms", {})) for i in range(99)] + [
        {"bad": 1, "source": "tf"}
    ]
    write_jsonl(tmp_path / "a.jsonl", payloads)
    with TestPipeline() as pipeline:
        out = pipeline | ReadFromPayloadFiles(config_for(tmp_path, max_rejected_ratio=0.01))
        assert_that(
            out["health"] | beam.Map(lambda h: (h.integration, h.ok, h.message)),
            equal_to([("tf", True, "100 records read, 1 rejected (1.0%)")]),
        )


def test_config_rejects_patterns_that_match_nothing(tmp_path):
    from airis_mon.errors import ConfigError

    with pytest.raises(ConfigError, match=r"integrations\[0\]\.paths: Value error, no file matches"):
        config_for(tmp_path)
