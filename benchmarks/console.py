"""How fast the console answers from a live runner's store: ``python -m benchmarks.console``.

Builds a store with :func:`benchmarks.console_data.write_store` in a temporary folder (default 700 series x
1,440 one-minute windows = 1,008,000 series-windows in 5,760 aggregate files, 10,000 alerts), then measures:

- the index (:class:`console.index.ParquetIndex`): first build (files, s, files/s), a refresh with nothing new
  and one after a new cycle's files landed (ms);
- the alert page's queries (:class:`console.queries.ConsoleStore` ``alert``, ``series``, ``spans``, ``changes``,
  ``deliveries``, and the whole page's set) over random alerts: p50/p95/p99 ms, the median of ``--repeat``
  repeats; and the alert list page (``alerts``: no filter, firing only, one team);
- the baseline: the same ``ConsoleStore`` SQL run by DuckDB directly over the Parquet globs with hive
  partitioning (no index) on the same files, with fewer samples (it is slow).

Prints a table and the verdict line ``p99 alert page <X> ms (target < 200 ms)``. ``--smoke``: a small store and
few samples (CI, under 30 s).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from airis_mon.extras import COMMAND_EXTRAS, exit_if_missing

if __name__ == "__main__":  # its imports below need duckdb
    exit_if_missing("python -m benchmarks.console", *COMMAND_EXTRAS["benchmarks.console"])

import duckdb

from benchmarks.console_data import INSTANCE, StoreShape, store_config, write_store
from console.index import INDEX_KINDS, JSONL_TABLES
from console.queries import ConsoleStore
from console.records import AlertFilter

__all__ = ["GlobIndex", "main", "percentiles"]

PAGE_QUERIES = ("alert", "series", "spans", "changes", "deliveries")
TARGET_MS = 200.0


class GlobIndex:
    """The baseline: DuckDB views over ``OUTPUT/KIND/*/*.parquet`` (hive partitioning), re-read by every query,
    and the JSON-lines histories read at start; the same ``cursor()`` as :class:`console.index.ParquetIndex`."""

    def __init__(self, output: Path):
        self._conn = duckdb.connect(":memory:")
        for kind in INDEX_KINDS:
            pattern = str(output / kind / "*" / "*.parquet")
            self._conn.execute(
                f"CREATE VIEW {kind} AS SELECT * FROM read_parquet('{pattern}', hive_partitioning = true,"
                " union_by_name = true)"
            )
        for table, (name, columns) in JSONL_TABLES.items():
            spec = ", ".join(f'"{column}" {kind}' for column, kind in columns)
            self._conn.execute(f"CREATE TABLE {table} ({spec})")
            path = output / name
            if path.exists():
                struct = "{" + ", ".join(f"'{column}': '{kind}'" for column, kind in columns) + "}"
                names = ", ".join(f'"{column}"' for column, _ in columns)
                self._conn.execute(
                    f"INSERT INTO {table} SELECT {names} FROM read_json(?, format = 'newline_delimited',"
                    f" columns = {struct})",
                    [str(path)],
                )
        self._conn.execute("DELETE FROM acknowledgements WHERE type NOT IN ('ack', 'delivery')")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._conn.cursor()

    def refresh(self) -> int:
        return 0

    def close(self) -> None:
        self._conn.close()


def percentiles(samples_ms: list[float]) -> tuple[float, float, float]:
    """(p50, p95, p99) of samples, ms (nearest rank)."""
    ordered = sorted(samples_ms)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]

    return rank(0.50), rank(0.95), rank(0.99)


def _page(store: ConsoleStore, alert_id: str, times: dict[str, list[float]]) -> None:
    """The alert page's queries for one alert, each timed (ms) into ``times``."""
    started = time.perf_counter()
    detail = store.alert(alert_id)
    after_alert = time.perf_counter()
    times["alert"].append((after_alert - started) * 1000)
    if detail is None:
        raise RuntimeError(f"alert {alert_id} not found")
    alert = detail.alert
    start = alert.starts_at_ms - 3_600_000
    end = (alert.resolved_at_ms or alert.last_at_ms) + 3_600_000
    steps: list[tuple[str, Callable]] = [
        ("series", lambda: store.series(detail, start, end)),
        ("spans", lambda: store.spans(detail)),
        ("changes", lambda: store.changes(detail, start - 6 * 3_600_000, end)),
        ("deliveries", lambda: store.deliveries(alert_id)),
    ]
    for name, step in steps:
        before = time.perf_counter()
        step()
        times[name].append((time.perf_counter() - before) * 1000)
    times["page"].append((time.perf_counter() - started) * 1000)


def measure_pages(store: ConsoleStore, ids: list[str], repeat: int) -> dict[str, tuple[float, float, float]]:
    """query -> (p50, p95, p99) ms, each the median over ``repeat`` repeats of all ``ids``."""
    per_repeat: dict[str, list[tuple[float, float, float]]] = {name: [] for name in (*PAGE_QUERIES, "page")}
    for _ in range(repeat):
        times: dict[str, list[float]] = {name: [] for name in per_repeat}
        for alert_id in ids:
            _page(store, alert_id, times)
        for name, samples in times.items():
            per_repeat[name].append(percentiles(samples))
    return {
        name: tuple(statistics.median(r[i] for r in results) for i in range(3)) for name, results in per_repeat.items()
    }


def measure_lists(store: ConsoleStore, shape: StoreShape, runs: int, repeat: int) -> dict[str, tuple]:
    """The alert list page (100 rows) unfiltered, firing only and one team: (p50, p95, p99) ms."""
    filters = {
        "list (all)": AlertFilter(limit=100),
        "list (firing)": AlertFilter(state="firing", limit=100),
        "list (team)": AlertFilter(team="risk-ml", limit=100, resolved_since_ms=shape.end_ms - 86_400_000),
    }
    out = {}
    for name, filt in filters.items():
        results = []
        for _ in range(repeat):
            samples = []
            for _ in range(runs):
                before = time.perf_counter()
                store.alerts(filt)
                samples.append((time.perf_counter() - before) * 1000)
            results.append(percentiles(samples))
        out[name] = tuple(statistics.median(r[i] for r in results) for i in range(3))
    return out


def _new_cycle(output: Path, shape: StoreShape) -> int:
    """Copy the newest cycle's files as the next cycle (what one live cycle adds); the files copied."""
    last, cycle = f"c{shape.windows - 1:08d}", f"c{shape.windows:08d}"
    copied = 0
    for path in sorted(output.glob(f"*/date=*/part-live{INSTANCE}{last}*.parquet")):
        shutil.copyfile(path, path.with_name(path.name.replace(last, cycle)))
        copied += 1
    return copied


def _row(name: str, values: tuple, baseline: tuple | None) -> str:
    base = "".join(f"{v:>10.1f}" for v in baseline) if baseline else f"{'':>30}"
    return f"  {name:<16}" + "".join(f"{v:>10.1f}" for v in values) + base


def run(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="airis-console-bench-"))
    try:
        output = folder / "out"
        started = time.perf_counter()
        shape = write_store(output, args.series, args.windows, args.alerts, args.seed, args.files_per_window)
        files = sum(shape.files.values())
        written_s = time.perf_counter() - started
        print(f"store: {shape.series:,} series x {shape.windows:,} windows = {shape.series_windows:,} series-windows, "
              f"{shape.alerts:,} alerts, {files:,} Parquet files ({written_s:.1f} s to write)")  # fmt: skip
        config = store_config(shape)
        clock = (shape.end_ms + 30_000) / 1000
        store = ConsoleStore(output, config, folder / "index.duckdb", clock=lambda: clock)
        before = time.perf_counter()
        store.refresh()
        build_s = time.perf_counter() - before
        time.sleep(2.1)  # the date folders settle (ParquetIndex lists a folder changed in the last 2 s again)
        store.refresh()
        idle = []
        for _ in range(5):
            before = time.perf_counter()
            store.refresh()
            idle.append((time.perf_counter() - before) * 1000)
        rng = random.Random(args.seed)
        ids = rng.sample(shape.alert_ids, min(args.samples, len(shape.alert_ids)))
        indexed = measure_pages(store, ids, args.repeat)
        lists = measure_lists(store, shape, args.list_runs, args.repeat)
        baseline_store = ConsoleStore(output, config, None, clock=lambda: clock)
        baseline_store.index.close()
        baseline_store.index = GlobIndex(output)
        baseline_ids = ids[: args.baseline_samples]
        baseline = measure_pages(baseline_store, baseline_ids, 1)
        baseline_lists = measure_lists(baseline_store, shape, max(1, args.baseline_samples // 4), 1)
        copied = _new_cycle(output, shape)
        before = time.perf_counter()
        loaded = store.refresh()
        cycle_ms = (time.perf_counter() - before) * 1000
        print(f"index build: {files:,} files in {build_s:.1f} s ({files / build_s:,.0f} files/s)")
        print(f"refresh, nothing new: {statistics.median(idle):.1f} ms (median of 5)")
        print(f"refresh, one new cycle ({copied} files, {loaded} loaded): {cycle_ms:.1f} ms")
        print(f"\n  {'ms':<16}{'p50':>10}{'p95':>10}{'p99':>10}{'glob p50':>10}{'glob p95':>10}{'glob p99':>10}")
        for name in (*PAGE_QUERIES, "page"):
            print(_row(name if name != "page" else "alert page", indexed[name], baseline[name]))
        for name, values in lists.items():
            print(_row(name, values, baseline_lists[name]))
        print(f"\n  index: {len(ids)} alerts x {args.repeat} repeats (median of repeats); glob: {len(baseline_ids)} "
              f"alerts, {max(1, args.baseline_samples // 4)} list runs, once")  # fmt: skip
        p99 = indexed["page"][2]
        print(f"p99 alert page {p99:.1f} ms (target < {TARGET_MS:.0f} ms)")
        store.close()
        baseline_store.close()
        return 0 if p99 < TARGET_MS or args.smoke else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.console", description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=700, help="series in the store (default 700)")
    parser.add_argument("--windows", type=int, default=1440, help="one-minute windows (default 1,440: a day)")
    parser.add_argument("--alerts", type=int, default=10_000, help="alert episodes (default 10,000)")
    parser.add_argument("--files-per-window", type=int, default=4, help="aggregate files per window (shards)")
    parser.add_argument("--samples", type=int, default=200, help="random alerts per repeat (default 200)")
    parser.add_argument("--baseline-samples", type=int, default=10, help="alerts for the glob baseline")
    parser.add_argument("--list-runs", type=int, default=50, help="alert list queries per repeat")
    parser.add_argument("--repeat", type=int, default=3, help="repeats; medians are reported (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="a small store and few samples (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.series, args.windows, args.alerts = 60, 120, 300
        args.samples, args.baseline_samples, args.list_runs, args.repeat = 30, 4, 10, 1
    for name in ("series", "windows", "samples", "baseline_samples", "list_runs", "repeat", "files_per_window"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: at least 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
