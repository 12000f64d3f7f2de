import hashlib
import json
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest

from airis_mon.files import write_atomically
from airis_mon.schema import Alert, DeadLetter, Event, Metric, metrics_to_table
from sinks.parquet import ParquetSinkConfig, WriteToStorage

DAY = 1_795_824_000_000  # 2026-11-28
NEXT_DAY = DAY + 86_400_000


def alert(ts, ident):
    return Alert(
        ident, "r", "high", "summary", "description", ts, "s", "m", "prod", "threshold", 1.0, 2.0, 2.0, 60.0,
        "resolved", "resolve", ts - 60_000, ts, "r", "x", "{}", "{}", False,
    )  # fmt: skip


def run_storage(root: Path, run_key: str = "abc123", metrics=None) -> None:
    metrics = metrics or [
        Metric(DAY + 5, "s", "b", 2.0, "ms", "{}"),
        Metric(NEXT_DAY + 1, "s", "a", 1.0, "ms", "{}"),
        Metric(DAY + 1, "s", "a", 1.0, "ms", "{}"),
    ]
    config = ParquetSinkConfig(name="storage", path=str(root))
    with beam.Pipeline() as pipeline:
        inputs = {
            "metrics": pipeline
            | "M" >> beam.Create([("s000", metrics_to_table(metrics[:2])), ("s001", metrics_to_table(metrics[2:]))]),
            "events": pipeline | "E" >> beam.Create([Event(DAY, "deploy", "gh", "info", "{}")]),
            "alerts": pipeline | "A" >> beam.Create([alert(DAY + 10, "b"), alert(DAY + 5, "a")]),
            "dead_letters": pipeline
            | "D" >> beam.Create([DeadLetter(0, "parse", "bad", '"x"'), DeadLetter(DAY, "n", "nan", "{}")]),
            "health_report": pipeline | "H" >> beam.Create([{"overall_status": "healthy", "integrations": {}}]),
        }
        _ = inputs | WriteToStorage(config, run_key)


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_outputs_are_partitioned_by_kind_and_date(tmp_path):
    run_storage(tmp_path)
    assert sorted(digest(tmp_path)) == [
        "alerts-abc123.jsonl",
        "alerts/date=2026-11-28/part-abc123.parquet",
        "dead_letters/date=2026-11-28/part-abc123.jsonl",
        "dead_letters/date=unknown/part-abc123.jsonl",
        "events/date=2026-11-28/part-abc123.parquet",
        "health_report.json",
        "metrics/date=2026-11-28/part-abc123-s000.parquet",  # a part's rows of one date, in its order
        "metrics/date=2026-11-28/part-abc123-s001.parquet",
        "metrics/date=2026-11-29/part-abc123-s000.parquet",
    ]
    day = pq.read_table(tmp_path / "metrics/date=2026-11-28").to_pylist()
    assert sorted((r["name"], r["timestamp_ms"] - DAY) for r in day) == [("a", 1), ("b", 5)]
    events = pq.read_table(tmp_path / "events/date=2026-11-28/part-abc123.parquet").to_pylist()
    assert [e["event_type"] for e in events] == ["deploy"]
    lines = (tmp_path / "alerts-abc123.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]
    assert json.loads((tmp_path / "health_report.json").read_text())["overall_status"] == "healthy"


def test_running_the_same_input_twice_gives_identical_files_not_duplicates(tmp_path):
    run_storage(tmp_path)
    first = digest(tmp_path)
    run_storage(tmp_path)
    assert digest(tmp_path) == first
    assert pq.read_table(tmp_path / "metrics/date=2026-11-28").num_rows == 2


def test_another_input_adds_files_beside_the_first(tmp_path):
    run_storage(tmp_path, "first1")
    run_storage(tmp_path, "second2", metrics=[Metric(DAY + 7, "s", "c", 3.0, "ms", "{}")])
    parts = sorted(p.name for p in (tmp_path / "metrics/date=2026-11-28").iterdir())
    assert parts == ["part-first1-s000.parquet", "part-first1-s001.parquet", "part-second2-s000.parquet"]


def test_write_is_atomic_a_failed_write_leaves_no_file_and_no_temp(tmp_path):
    target = tmp_path / "kind" / "part.parquet"

    def fail(temp_name):
        Path(temp_name).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomically(target, fail)
    assert list(target.parent.iterdir()) == []


def test_dictionary_encoded_strings_are_stored_and_read_back_as_plain_strings(tmp_path):
    from airis_mon.arrowutil import repeat_strings
    from airis_mon.schema import METRIC_SCHEMA

    table = metrics_to_table([Metric(DAY + i, "s", "n", float(i), "ms", "{}") for i in range(3)])
    table = table.set_column(2, "name", repeat_strings(["a", "b"], [1, 0, 1]))
    config = ParquetSinkConfig(name="storage", path=str(tmp_path))
    with beam.Pipeline() as pipeline:
        _ = {"metrics": pipeline | beam.Create([("s000", table)])} | WriteToStorage(config, "abc")
    stored = pq.read_table(tmp_path / "metrics/date=2026-11-28/part-abc-s000.parquet")
    assert stored.schema.equals(METRIC_SCHEMA)
    assert stored.column("name").to_pylist() == ["b", "a", "b"]  # the order given


def test_a_part_name_that_could_escape_the_folder_is_refused(tmp_path):
    config = ParquetSinkConfig(name="storage", path=str(tmp_path))
    table = metrics_to_table([Metric(DAY, "s", "a", 1.0, "ms", "{}")])
    with pytest.raises(Exception, match="part names are"), beam.Pipeline() as pipeline:
        _ = {"metrics": pipeline | beam.Create([("../x", table)])} | WriteToStorage(config, "abc")
    assert not list(tmp_path.rglob("*.parquet"))


def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="no output path"):
        WriteToStorage(ParquetSinkConfig(name="s"), "abc")
    with pytest.raises(ValueError, match="run_key"):
        WriteToStorage(ParquetSinkConfig(name="s", path="/tmp/x"), "../etc")
