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
        assert_that(health, equal_to([("tf", False, 2), ("gh", True, 1), ("rec", False, 3)]), label="health")


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
            equal_to(
                [
                    ("tf", True, "100 records read, 1 rejected (1.0%)"),
                    ("rec", True, "100 records read, 0 rejected (0.0%)"),
                ]
            ),
        )


def test_config_rejects_patterns_that_match_nothing(tmp_path):
    from airis_mon.errors import ConfigError

    with pytest.raises(ConfigError, match=r"integrations\[0\]\.paths: Value error, no file matches"):
        config_for(tmp_path)


def _event_line(timestamp, data: str = "{}") -> str:
    return f'{{"timestamp": {timestamp}, "event_type": "deploy", "source": "gh", "severity": "info", "data": {data}}}'


def _point_line(timestamp) -> str:
    return f'{{"timestamp": {timestamp}, "source": "tf", "metrics": [{{"name": "lat", "value": 1}}]}}'


def test_lines_the_pipeline_cannot_process_are_dead_letters_and_the_lines_after_them_are_read(tmp_path):
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            _point_line("1e30"),
            _point_line(10**25),
            _point_line("false"),
            _event_line("1e266"),
            _event_line(DAY_MS, '{"x": 1e400}'),
            _event_line(DAY_MS, "[" * 5000 + "]" * 5000),  # beyond what json.loads decodes
            metrics_payload(DAY_MS, "tf", ("lat", 2.0, "ms", {})),
            {"timestamp": DAY_MS, "event_type": "deploy", "source": "gh", "severity": "info", "data": {"ok": 1}},
        ],
    )
    with TestPipeline() as pipeline:
        out = pipeline | ReadFromPayloadFiles(config_for(tmp_path))
        points = out["points"] | beam.FlatMap(lambda t: t.column("name").to_pylist())
        assert_that(points, equal_to(["lat"]), label="points")
        assert_that(out["events"] | beam.Map(lambda e: e.data), equal_to(['{"ok": 1}']), label="events")
        reasons = out["dead_letters"] | beam.Map(lambda d: d.reason.split(",")[0].split(" (")[0])
        expected = ["timestamp: Value error"] * 4 + ["data.x: must be a finite number", "line is not JSON"]
        assert_that(reasons, equal_to(expected), label="dead")
        health = out["health"] | beam.Map(lambda h: (h.integration, h.records, h.message))
        expected_health = [
            ("tf", 1, "4 records read, 3 rejected (75.0% > max_rejected_ratio 1.0%)"),
            ("gh", 1, "3 records read, 2 rejected (66.7% > max_rejected_ratio 1.0%)"),
            ("rec", 7, "8 records read, 1 rejected (12.5% > max_rejected_ratio 1.0%)"),  # its lines: 1 is not JSON
        ]
        assert_that(health, equal_to(expected_health), label="health")


def test_the_parser_applies_the_timestamp_range_it_is_given():
    from airis_mon.payloads import TimestampRange
    from sources.payload_lines import ParsePayloadLines

    accepted = TimestampRange(not_before=DAY_MS, max_future_s=0)
    lines = [("f", json.dumps(metrics_payload(DAY_MS + offset, "tf", ("lat", 1.0, "ms", {})))) for offset in (-1, 0)]
    with TestPipeline() as pipeline:
        out = pipeline | beam.Create(lines) | ParsePayloadLines("rec", "test", 10, 1.0, accepted)
        points = out["points"] | beam.FlatMap(lambda t: t.column("timestamp").to_pylist())
        assert_that(points, equal_to([float(DAY_MS)]), label="points")
        reasons = out["dead_letters"] | beam.Map(lambda d: d.reason)
        expected = "timestamp: Value error, before 2026-11-28T00:00:00.000Z, the earliest accepted time"
        assert_that(reasons, equal_to([f"{expected} (timestamps.not_before)"]), label="dead")


def test_the_config_takes_a_timestamp_range(tmp_path):
    from airis_mon.errors import ConfigError

    write_jsonl(tmp_path / "a.jsonl", [])
    config = config_for(tmp_path, timestamps={"not_before": "2026-11-28T00:00:00Z", "max_future_s": 60})
    assert (config.timestamps.not_before, config.timestamps.max_future_s) == (DAY_MS, 60.0)
    assert config_for(tmp_path).timestamps.not_before == 0  # default: 1970-01-01T00:00:00Z
    assert config_for(tmp_path).timestamps.max_future_s == 86_400.0  # default: one day
    with pytest.raises(ConfigError, match=r"integrations\[0\]\.timestamps\.max_future_s"):
        config_for(tmp_path, timestamps={"max_future_s": -1})


def test_the_source_applies_its_configured_timestamp_range(tmp_path):
    write_jsonl(
        tmp_path / "a.jsonl", [metrics_payload(DAY_MS + offset, "tf", ("lat", 1.0, "ms", {})) for offset in (-1, 0)]
    )
    config = config_for(tmp_path, timestamps={"not_before": "2026-11-28T00:00:00Z"})
    with TestPipeline() as pipeline:
        out = pipeline | ReadFromPayloadFiles(config)
        points = out["points"] | beam.FlatMap(lambda t: t.column("timestamp").to_pylist())
        assert_that(points, equal_to([float(DAY_MS)]), label="points")
        reasons = out["dead_letters"] | beam.Map(lambda d: d.reason.endswith("(timestamps.not_before)"))
        assert_that(reasons, equal_to([True]), label="dead")
