"""ParquetIndex on real files: written by the storage sink (WriteToStorage) and by benchmarks.console_data;
idempotent refreshes, rewritten and removed files, unchanged folders skipped, torn JSON lines, rebuilds."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest

from airis_mon.schema import Event, HealthRecord
from benchmarks.console_data import write_store
from console.index import INDEX_KINDS, ParquetIndex
from sinks.parquet.config import ParquetSinkConfig
from sinks.parquet.transform import WriteToStorage

T0 = 1_795_824_000_000  # 2026-11-28T00:00:00Z
OLD_NS = 1_700_000_000 * 10**9  # a folder mtime long settled


def counts(index: ParquetIndex) -> dict[str, int]:
    cur = index.cursor()
    try:
        tables = (*INDEX_KINDS, "deliveries", "acknowledgements", "loaded_files")
        return {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        cur.close()


def settle(output: Path) -> None:
    """Date folders as if their last change was long ago (the index lists a just-changed folder again)."""
    for folder in output.glob("*/date=*"):
        os.utime(folder, ns=(OLD_NS, OLD_NS))


@pytest.fixture
def store(tmp_path: Path):
    shape = write_store(tmp_path / "out", series=12, windows=20, alerts=15, seed=3, files_per_window=2)
    settle(shape.output)
    return shape


def test_refresh_loads_every_row_once(store, tmp_path: Path):
    index = ParquetIndex(store.output, tmp_path / "index.duckdb")
    loaded = index.refresh()
    history = len((store.output / "notification_history.jsonl").read_text().splitlines())
    acks = len((store.output / "acknowledgements.jsonl").read_text().splitlines())
    assert loaded == sum(store.files.values()) + history + acks
    expected = {
        **store.rows,
        "deliveries": history,
        "acknowledgements": acks,
        "loaded_files": sum(store.files.values()),
    }
    assert counts(index) == expected
    assert index.refresh() == 0 and counts(index) == expected  # same files again: no duplicate rows
    index.close()
    reopened = ParquetIndex(store.output, tmp_path / "index.duckdb")  # persisted: nothing to load again
    assert reopened.refresh() == 0 and counts(reopened) == expected
    reopened.close()


def test_a_rewritten_file_is_reloaded_and_a_removed_one_forgotten(store, tmp_path: Path):
    index = ParquetIndex(store.output, None)
    index.refresh()
    before = counts(index)
    path = sorted((store.output / "health").rglob("*.parquet"))[0]
    table = pq.read_table(path)
    pq.write_table(table.slice(0, 1), path)  # the same name, one row left
    os.utime(path.parent, ns=(OLD_NS + 1, OLD_NS + 1))  # its folder changed (as a rename into it does)
    assert index.refresh() == 1
    assert counts(index)["health"] == before["health"] - table.num_rows + 1
    pq.write_table(table, path)  # and back: the old rows return, once
    os.utime(path.parent, ns=(OLD_NS + 2, OLD_NS + 2))
    index.refresh()
    assert counts(index) == before
    path.unlink()
    os.utime(path.parent, ns=(OLD_NS + 3, OLD_NS + 3))
    index.refresh()
    after = counts(index)
    assert after["health"] == before["health"] - table.num_rows
    assert after["loaded_files"] == before["loaded_files"] - 1


def test_an_unchanged_folder_is_not_listed(store):
    index = ParquetIndex(store.output, None)
    index.refresh()
    folder = next((store.output / "events").glob("date=*"))
    source = next(folder.glob("*.parquet"))
    copy = folder / "part-extra.parquet"
    copy.write_bytes(source.read_bytes())
    os.utime(folder, ns=(OLD_NS, OLD_NS))  # the folder's mtime as at the last scan: skipped
    assert index.refresh() == 0
    os.utime(folder, ns=(OLD_NS + 5, OLD_NS + 5))  # changed: listed, the new file loaded
    assert index.refresh() == 1
    assert counts(index)["events"] == store.rows["events"] + pq.read_metadata(source).num_rows


def test_a_folder_changed_just_now_is_listed_again(store):
    index = ParquetIndex(store.output, None)
    index.refresh()
    folder = next((store.output / "events").glob("date=*"))
    source = next(folder.glob("*.parquet"))
    (folder / "part-a.parquet").write_bytes(source.read_bytes())  # mtime now: not settled
    assert index.refresh() == 1
    stat = folder.stat()
    (folder / "part-b.parquet").write_bytes(source.read_bytes())
    os.utime(folder, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a second file within the same mtime tick
    assert index.refresh() == 1


def test_torn_and_unknown_json_lines(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    history, acks = out / "notification_history.jsonl", out / "acknowledgements.jsonl"
    line = {"key": "k1", "sink": "slack", "alert_id": "A", "rule": "r", "notification": "trigger",
            "outcome": "delivered", "status": 200, "attempts": 1, "retries": 0, "reason": "", "at_ms": T0}  # fmt: skip
    text = json.dumps(line) + "\n"
    history.write_text(text + text[:25])  # a torn last line (being written)
    acks.write_text(
        json.dumps({"type": "ack", "alert_id": "A", "by": "ana", "via": "slack", "at_ms": T0}) + "\n"
        + json.dumps({"type": "comment", "alert_id": "A", "by": "eve", "at_ms": T0}) + "\n"
        + "not json\n"
    )  # fmt: skip
    index = ParquetIndex(out, None)
    assert index.refresh() == 2
    assert (counts(index)["deliveries"], counts(index)["acknowledgements"]) == (1, 1)
    with open(history, "a") as handle:
        handle.write(text[25:])  # the line completed
    assert index.refresh() == 1 and counts(index)["deliveries"] == 2
    history.write_text(text)  # rotated: shorter than what was read, read again
    index.refresh()
    assert counts(index)["deliveries"] == 1
    cur = index.cursor()
    assert cur.execute('SELECT alert_id, "by", via, at_ms FROM acknowledgements').fetchall() == [
        ("A", "ana", "slack", T0)
    ]
    cur.close()


def test_the_index_is_a_cache(store, tmp_path: Path):
    path = tmp_path / "index.duckdb"
    index = ParquetIndex(store.output, path)
    index.refresh()
    expected = counts(index)
    index.close()
    path.unlink()
    rebuilt = ParquetIndex(store.output, path)
    assert rebuilt.refresh() > 0 and counts(rebuilt) == expected
    rebuilt.close()
    path.write_bytes(b"this is not a database" * 100)
    again = ParquetIndex(store.output, path)
    again.refresh()
    assert counts(again) == expected
    again.close()


def test_keep_days_drops_old_date_folders(store):
    old = store.output / "health" / "date=2026-11-20"
    old.mkdir()
    newest = next((store.output / "health").glob("date=2026-11-28"))
    source = next(newest.glob("*.parquet"))
    (old / "part-old.parquet").write_bytes(source.read_bytes())
    everything = ParquetIndex(store.output, None)
    everything.refresh()
    assert counts(everything)["health"] == store.rows["health"] + pq.read_metadata(source).num_rows
    kept = ParquetIndex(store.output, None, keep_days=3)
    kept.refresh()
    assert counts(kept)["health"] == store.rows["health"]
    (old / "part-old.parquet").unlink()
    old.rmdir()  # a date folder removed: its rows go
    everything.refresh()
    assert counts(everything)["health"] == store.rows["health"]
    assert counts(everything)["loaded_files"] == sum(store.files.values())
    with pytest.raises(ValueError, match="keep_days"):
        ParquetIndex(store.output, None, keep_days=0)


def test_files_of_the_storage_sink(tmp_path: Path):
    """What WriteToStorage writes (health rows included) is what the index holds."""
    out = tmp_path / "out"
    health = [
        HealthRecord(T0 + i, "mlflow", i % 2 == 0, "ok" if i % 2 == 0 else "timeout", 12.5, -1, i) for i in range(5)
    ]
    events = [Event(T0 + 9, "push", "github", "info", '{"repository":"acme/x"}')]
    with beam.Pipeline() as pipeline:
        inputs = {
            "health": pipeline | "H" >> beam.Create(health),
            "events": pipeline | "E" >> beam.Create(events),
        }
        _ = inputs | WriteToStorage(ParquetSinkConfig(name="storage", type="parquet", path=str(out)), "run1")
    assert (out / "health" / "date=2026-11-28" / "part-run1.parquet").is_file()
    index = ParquetIndex(out, None)
    assert index.refresh() == 2
    cur = index.cursor()
    rows = cur.execute(
        "SELECT timestamp_ms, integration, ok, message, latency_ms, freshness_ms, records FROM health ORDER BY 1"
    ).fetchall()
    assert [HealthRecord(*row) for row in rows] == health
    assert cur.execute("SELECT data FROM events").fetchall() == [('{"repository":"acme/x"}',)]
    cur.close()


def test_queries_read_while_a_refresh_loads(store):
    index = ParquetIndex(store.output, None, batch_files=3)
    errors: list[BaseException] = []
    seen: list[int] = []

    def read():
        try:
            for _ in range(50):
                cur = index.cursor()
                seen.append(cur.execute("SELECT count(*) FROM aggregates").fetchone()[0])
                cur.close()
        except BaseException as error:  # pragma: no cover - the test fails below
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    index.refresh()
    for thread in readers:
        thread.join()
    assert not errors
    per_file = store.rows["aggregates"] // store.files["aggregates"]
    assert all(count % per_file == 0 for count in seen)  # whole files only, never part of one
    assert counts(index)["aggregates"] == store.rows["aggregates"]
