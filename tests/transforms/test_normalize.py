import json
import math

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.batching import rows_to_table
from airis_mon.schema import RAW_POINT_SCHEMA, canonical_tags
from transforms.normalize import Normalize, canonical_unit, normalize_table, snake_case

MS = 1_795_824_000_000


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Invocation4XXErrors", "invocation_4xx_errors"),
        ("Invocation5XXErrors", "invocation_5xx_errors"),
        ("ModelLatency", "model_latency"),
        ("OverheadLatency", "overhead_latency"),
        ("CPUUtilization", "cpu_utilization"),
        ("GPUMemoryUtilization", "gpu_memory_utilization"),
        ("p99Latency", "p99_latency"),
        ("HTTPRequests", "http_requests"),
        ("SampleCount", "sample_count"),
        ("inference_latency", "inference_latency"),  # already snake_case: unchanged
        ("invocation_5xx_errors", "invocation_5xx_errors"),
        ("request.count", "request_count"),
        ("model-version", "model_version"),
        ("vllm:num_requests_running", "vllm_num_requests_running"),
        ("vllm:e2e_request_latency_seconds", "vllm_e2e_request_latency_seconds"),
        (":tensorflow:serving:request_count", "tensorflow_serving_request_count"),
    ],
)
def test_snake_case(raw, expected):
    assert snake_case(raw) == expected
    assert snake_case(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "unit, canonical, factor",
    [
        ("Microseconds", "ms", 1e-3),
        ("µs", "ms", 1e-3),
        ("ns", "ms", 1e-6),
        ("Seconds", "ms", 1e3),
        ("s", "ms", 1e3),
        ("ms", "ms", 1.0),
        ("Percent", "percent", 1.0),
        ("Count", "count", 1.0),
        ("Kilobytes", "bytes", 1e3),
        ("None", "", 1.0),
        ("Tokens", "tokens", 1.0),  # unknown units are kept, lower-cased
    ],
)
def test_canonical_unit(unit, canonical, factor):
    assert canonical_unit(unit) == (canonical, factor)


def raw(*rows):
    return rows_to_table(list(rows), RAW_POINT_SCHEMA)


def test_names_units_timestamps_and_tags_are_normalized():
    table, dead = normalize_table(
        raw(
            (
                MS / 1000,
                "aws",
                "ModelLatency",
                41_500.0,
                "Microseconds",
                canonical_tags({"EndpointName": "e", "Statistic": "SampleCount"}),
            ),
            (MS * 1000.0, "tf", "inference_latency", 0.25, "s", canonical_tags({"model_version": 12})),
            (float(MS), "gh", "Invocation4XXErrors", 3.0, "Count", "{}"),
        )
    )
    assert dead == []
    assert table.to_pylist() == [
        {
            "timestamp_ms": MS,
            "source": "aws",
            "name": "model_latency",
            "value": pytest.approx(41.5),
            "unit": "ms",
            "tags": '{"endpoint_name":"e","statistic":"sample_count"}',
        },
        {
            "timestamp_ms": MS,
            "source": "tf",
            "name": "inference_latency",
            "value": 250.0,
            "unit": "ms",
            "tags": '{"model_version":"12"}',
        },
        {
            "timestamp_ms": MS,
            "source": "gh",
            "name": "invocation_4xx_errors",
            "value": 3.0,
            "unit": "count",
            "tags": "{}",
        },
    ]
    assert table.schema.field("timestamp_ms").type == pa.int64()


def test_nan_infinity_bad_timestamps_and_empty_names_are_dead_lettered_with_reason_and_original():
    table, dead = normalize_table(
        raw(
            (float(MS), "tf", "ok", 1.0, "ms", "{}"),
            (float(MS), "tf", "lat", math.nan, "ms", '{"m":"a"}'),
            (float(MS), "tf", "lat", math.inf, "ms", "{}"),
            (float(MS), "tf", "lat", -math.inf, "ms", "{}"),
            (math.nan, "tf", "lat", 1.0, "ms", "{}"),
            (float(MS), "tf", "", 1.0, "ms", "{}"),
        )
    )
    assert table.column("name").to_pylist() == ["ok"]
    assert [d.reason for d in dead] == [
        "value: NaN is not a metric value",
        "value: infinite values are not metric values",
        "value: infinite values are not metric values",
        "timestamp: not a finite number",
        "name: empty metric name",
    ]
    assert {d.component for d in dead} == {"normalize"}
    original = json.loads(dead[0].original)
    assert original["timestamp"] == MS and original["source"] == "tf"
    assert original["metrics"][0]["name"] == "lat" and math.isnan(original["metrics"][0]["value"])
    assert original["metrics"][0]["tags"] == {"m": "a"}
    assert dead[0].timestamp_ms == MS and dead[3].timestamp_ms == 0


def test_timestamps_beyond_int64_milliseconds_are_dead_letters_not_garbage_times():
    # Sources that bypass the payload parser (point files) can carry them: 1e25 ns is 1e19 ms > 2**63.
    table, dead = normalize_table(
        raw(
            (1e25, "pf", "lat", 1.0, "ms", "{}"),
            (-1e30, "pf", "lat", 1.0, "ms", "{}"),
            (float(MS), "pf", "ok", 1.0, "", "{}"),
        )
    )
    assert table.column("name").to_pylist() == ["ok"] and table.column("timestamp_ms").to_pylist() == [MS]
    assert [d.reason for d in dead] == ["timestamp: beyond the range of int64 epoch milliseconds"] * 2
    assert [d.timestamp_ms for d in dead] == [0, 0]  # no date: stored as unknown
    assert json.loads(dead[0].original)["timestamp"] == int(1e25)  # the raw value, replayable


def test_dead_letters_are_stamped_in_epoch_ms_whatever_the_unit_of_the_point():
    _, dead = normalize_table(
        raw((MS / 1000, "pf", "lat", math.nan, "", "{}"), (MS * 1000.0, "pf", "lat", math.inf, "", "{}"))
    )
    assert [d.timestamp_ms for d in dead] == [MS, MS]  # seconds and microseconds, stamped in ms


def test_an_all_bad_batch_gives_an_empty_table_not_an_error():
    table, dead = normalize_table(raw((float(MS), "tf", "x", math.nan, "ms", "{}")))
    assert table.num_rows == 0 and len(dead) == 1


def test_normalize_transform_under_test_pipeline():
    batches = [
        raw((float(MS), "tf", "ModelLatency", 2000.0, "us", "{}"), (float(MS), "tf", "x", math.nan, "ms", "{}")),
        raw((MS / 1000, "aws", "Invocations", 7.0, "Count", "{}")),
    ]
    with TestPipeline() as pipeline:
        outputs = pipeline | beam.Create(batches) | Normalize()
        rows = outputs["points"] | beam.FlatMap(lambda t: [tuple(r.values()) for r in t.to_pylist()])
        assert_that(
            rows,
            equal_to([(MS, "tf", "model_latency", 2.0, "ms", "{}"), (MS, "aws", "invocations", 7.0, "count", "{}")]),
            label="points",
        )
        assert_that(
            outputs["dead_letters"] | beam.Map(lambda d: d.reason),
            equal_to(["value: NaN is not a metric value"]),
            label="dead",
        )
