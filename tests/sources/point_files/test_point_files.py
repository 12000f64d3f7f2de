"""``point_files``: Parquet raw points in bounded batches; unreadable files are dead letters, not crashes."""

import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.config import parse_config
from airis_mon.schema import RAW_POINT_SCHEMA
from sources.point_files import ReadFromPointFiles
from tests.conftest import DAY_MS


def rows(n: int, start_ms: int, name: str = "ModelLatency") -> list[dict]:
    return [
        {"timestamp": (start_ms + i * 60_000) / 1000, "source": "aws_sagemaker", "name": name, "value": float(i),
         "unit": "Microseconds", "tags": '{"EndpointName":"a"}'}
        for i in range(n)
    ]  # fmt: skip


def config_for(tmp_path, **extra):
    document = {"integrations": [{"name": "hist", "type": "point_files", "paths": ["*.parquet"], **extra}]}
    return parse_config(document, tmp_path).integrations[0]


def test_reads_every_point_in_batches_of_batch_rows_with_one_health_record_per_file(tmp_path):
    pq.write_table(pa.Table.from_pylist(rows(7, DAY_MS), schema=RAW_POINT_SCHEMA), tmp_path / "a.parquet")
    # Extra columns are ignored, column order and int timestamps do not matter.
    other = pa.Table.from_pylist(rows(3, DAY_MS + 3_600_000, "Invocations"), schema=RAW_POINT_SCHEMA)
    other = other.set_column(0, "timestamp", pa.array([int(t) for t in other.column("timestamp").to_pylist()]))
    other = other.append_column("extra", pa.array(["x"] * 3)).select(["tags", "extra", *RAW_POINT_SCHEMA.names[:5]])
    pq.write_table(other, tmp_path / "b.parquet")
    with TestPipeline() as pipeline:
        out = pipeline | ReadFromPointFiles(config_for(tmp_path, batch_rows=3))
        assert_that(out["points"] | beam.Map(lambda t: t.num_rows), equal_to([3, 3, 1, 3]), label="batch sizes")
        points = out["points"] | beam.FlatMap(lambda t: [(r["name"], r["timestamp"]) for r in t.to_pylist()])
        expected = [("ModelLatency", (DAY_MS + i * 60_000) / 1000) for i in range(7)]
        expected += [("Invocations", float((DAY_MS + 3_600_000 + i * 60_000) // 1000)) for i in range(3)]
        assert_that(points, equal_to(expected), label="points")
        assert_that(out["points"] | beam.Map(lambda t: t.schema.equals(RAW_POINT_SCHEMA)), equal_to([True] * 4),
                    label="schema")  # fmt: skip
        health = out["health"] | beam.Map(lambda h: (h.integration, h.ok, h.records, h.timestamp_ms))
        assert_that(
            health,
            equal_to([("hist", True, 7, DAY_MS + 6 * 60_000), ("hist", True, 3, DAY_MS + 3_600_000 + 2 * 60_000)]),
            label="health",
        )
        assert_that(out["dead_letters"], equal_to([]), label="no dead letters")


def test_a_file_that_is_not_parquet_or_lacks_a_column_is_a_dead_letter_and_the_rest_is_read(tmp_path):
    pq.write_table(pa.Table.from_pylist(rows(2, DAY_MS), schema=RAW_POINT_SCHEMA), tmp_path / "good.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    pq.write_table(pa.table({"timestamp": [1.0], "value": [2.0]}), tmp_path / "narrow.parquet")
    with TestPipeline() as pipeline:
        out = pipeline | ReadFromPointFiles(config_for(tmp_path))
        assert_that(out["points"] | beam.Map(lambda t: t.num_rows), equal_to([2]), label="good file read")
        dead = out["dead_letters"] | beam.Map(
            lambda d: (d.component, json.loads(d.original)["path"].rsplit("/", 1)[1], "no column source" in d.reason)
        )
        assert_that(
            dead,
            equal_to([("point_files:hist", "broken.parquet", False), ("point_files:hist", "narrow.parquet", True)]),
            label="dead letters",
        )
        health = out["health"] | beam.Map(lambda h: (h.ok, h.records))
        assert_that(health, equal_to([(True, 2), (False, 0), (False, 0)]), label="health")


def test_the_example_history_file_runs_through_the_main_job(tmp_path):
    from pathlib import Path

    from pipelines.main import run

    example = Path(__file__).resolve().parents[3] / "examples" / "history" / "aws_sagemaker-first-hour.parquet"
    config = tmp_path / "c.yaml"
    config.write_text(f"""
integrations: [{{name: hist, type: point_files, paths: ["{example}"]}}]
sinks: [{{name: storage, type: parquet, path: out}}]
""")
    assert run(["--config", str(config), "--output", str(tmp_path / "out")]) == 0
    metrics = pq.read_table(tmp_path / "out" / "metrics")
    stored = metrics.filter(pa.compute.equal(metrics.column("source"), "aws_sagemaker"))
    assert stored.num_rows == pq.read_metadata(example).num_rows  # every point, none dead-lettered
    assert set(stored.column("name").to_pylist()) >= {"model_latency", "invocations"}
