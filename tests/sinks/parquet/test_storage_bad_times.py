"""Storage never fails on a time no calendar date can hold (issue 13): such rows go under date=unknown."""

import apache_beam as beam
import pyarrow.parquet as pq

from airis_mon.schema import DeadLetter, Event, Metric, metrics_to_table
from sinks.parquet import ParquetSinkConfig, WriteToStorage

DAY = 1_795_824_000_000  # 2026-11-28
BEYOND = 9 * 10**18  # fits int64, but far past year 9999 (2.5e14 ms)


def test_rows_with_times_beyond_the_calendar_are_stored_as_unknown_dates(tmp_path):
    config = ParquetSinkConfig(name="storage", path=str(tmp_path))
    events = [Event(BEYOND, "deploy", "gh", "info", "{}"), Event(-BEYOND, "deploy", "gh", "info", "{}")]
    events.append(Event(DAY, "deploy", "gh", "info", "{}"))
    metrics = [Metric(-BEYOND, "s", "a", 1.0, "ms", "{}"), Metric(DAY, "s", "a", 2.0, "ms", "{}")]
    with beam.Pipeline() as pipeline:
        inputs = {
            "metrics": pipeline | "M" >> beam.Create([("s000", metrics_to_table(metrics))]),
            "events": pipeline | "E" >> beam.Create(events),
            "dead_letters": pipeline | "D" >> beam.Create([DeadLetter(BEYOND, "parse", "bad", '"x"')]),
        }
        _ = inputs | WriteToStorage(config, "abc123")
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        "dead_letters/date=unknown/part-abc123.jsonl",
        "events/date=2026-11-28/part-abc123.parquet",
        "events/date=unknown/part-abc123.parquet",
        "metrics/date=2026-11-28/part-abc123-s000.parquet",
        "metrics/date=unknown/part-abc123-s000.parquet",
    ]
    unknown = pq.read_table(tmp_path / "events/date=unknown/part-abc123.parquet")
    assert sorted(unknown.column("timestamp_ms").to_pylist()) == [-BEYOND, BEYOND]
