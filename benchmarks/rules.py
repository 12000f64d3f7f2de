"""Rule evaluation speed: series-windows per CPU-second on one core, against plain NumPy in the same run.

    python -m benchmarks.rules [--series 2000] [--windows 1440] [--repeat 3]

Generates window aggregates like the stored ones (``--series`` one-minute
series of ``--windows`` windows each; about 1 % of windows missing, rare
incidents of 2 to 8 breaching minutes) and evaluates one threshold rule,
``p95 > 250 for 3 windows``, through:

- **vectorized**: the batch runner's own step in-process
  (:func:`transforms.rules.vectorized.select_columns` +
  :func:`transforms.rules.batch.evaluate_group` per group): the figure the
  target (>= 500,000 series-windows per CPU-second) is judged on;
- **state machine**: the reference (:func:`transforms.rules.select.select_partials`
  + :func:`transforms.rules.incremental.advance`, what the batch runner did
  before), on the first ``--reference-series`` series;
- **plain numpy**: the same rule written directly on a dense (series x window)
  array: breach mask, run lengths, triggers and resolves. A floor for what any
  Python implementation can do; its alerts must equal ours;
- **Beam batch**: ``EvaluateRules`` in a local pipeline (FnApiRunner) over the
  same tables: the whole runner with its GroupByKey, for context.

The process is pinned to one core. Each path runs ``--repeat`` times; the
medians are printed. Exit 1 when an implementation disagrees, or (at the
default size and above) when the vectorized path misses the target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.measure import counter, log, options, verdict
from pipelines.backtest import ReadAggregates
from transforms.rules.batch import EvaluateRules, evaluate_group
from transforms.rules.config import ThresholdRule
from transforms.rules.incremental import advance
from transforms.rules.select import select_partials
from transforms.rules.vectorized import select_columns

__all__ = ["generate_tables", "main", "numpy_alerts"]

TARGET_PER_CPU_S = 500_000
JUDGED_FROM = 1_000_000  # series-windows: below this, start-up and per-group costs dominate
T0 = 1_795_824_000_000  # 2026-11-28T00:00:00Z
WINDOW_MS = 60_000
THRESHOLD = 250.0
FOR_WINDOWS = 3
RULE = ThresholdRule.model_validate(
    {
        "name": "p95_high",
        "metric": "latency",
        "aggregation": "p95",
        "comparator": ">",
        "threshold": THRESHOLD,
        "for": FOR_WINDOWS,
        "severity": "high",
        "group_by": ["endpoint"],
    }
)


def dense_values(series: int, windows: int, seed: int) -> np.ndarray:
    """p95 per (series, window) in ms; NaN where the window is missing."""
    rng = np.random.default_rng(seed)
    values = 100 + 30 * rng.random((series, windows))
    incidents = rng.random((series, windows)) < 0.002  # an incident starts here
    for row, column in zip(*np.nonzero(incidents), strict=True):
        values[row, column : column + rng.integers(2, 9)] = 400.0
    values[rng.random((series, windows)) < 0.01] = np.nan
    return values


def generate_tables(values: np.ndarray, series_per_table: int = 250) -> list[pa.Table]:
    """Aggregate tables (one per ``series_per_table`` series, as stored files hold many series)."""
    series, windows = values.shape
    starts = T0 + np.arange(windows, dtype=np.int64) * WINDOW_MS
    tables = []
    for first in range(0, series, series_per_table):
        block = values[first : first + series_per_table]
        rows, columns = np.nonzero(~np.isnan(block))
        p95 = block[rows, columns]
        tags = np.array([json.dumps({"endpoint": f"ep-{first + r}"}, separators=(",", ":")) for r in
                         range(block.shape[0])])[rows]  # fmt: skip
        tables.append(
            pa.table(
                {
                    "name": pa.array(["latency"] * len(rows)),
                    "source": pa.array(["tensorflow_serving"] * len(rows)),
                    "tags": pa.array(tags),
                    "window_start_ms": starts[columns],
                    "window_end_ms": starts[columns] + WINDOW_MS,
                    "count": np.full(len(rows), 6, dtype=np.int64),
                    "sum": p95 * 4,
                    "min": p95 / 2,
                    "max": p95 * 1.1,
                    "p50": p95 / 1.5,
                    "p95": p95,
                    "p99": p95 * 1.05,
                }
            )
        )
    return tables


def numpy_alerts(values: np.ndarray) -> set[tuple[int, str, int]]:
    """(series, trigger|resolve, instant in epoch ms) of ``p95 > 250 for 3`` in plain NumPy: a missing window
    ends a run (and resolves), as in the engine; alerts fire at the end of the 3rd breaching window and resolve
    at the start of the first window after that is not breaching (still firing at the end: no resolve)."""
    windows = values.shape[1]
    breach = values > THRESHOLD  # NaN: False
    index = np.broadcast_to(np.arange(windows), breach.shape)
    last_quiet = np.maximum.accumulate(np.where(breach, -1, index), axis=1)
    run = index - last_quiet  # consecutive breaching windows ending here
    rows, columns = np.nonzero(run == FOR_WINDOWS)
    alerts = {(int(r), "trigger", T0 + int(c + 1) * WINDOW_MS) for r, c in zip(rows, columns, strict=True)}
    ended = np.zeros_like(breach)
    ended[:, 1:] = ~breach[:, 1:] & (run[:, :-1] >= FOR_WINDOWS)
    rows, columns = np.nonzero(ended)
    alerts |= {(int(r), "resolve", T0 + int(c) * WINDOW_MS) for r, c in zip(rows, columns, strict=True)}
    return alerts


def _as_set(alerts) -> set[tuple[int, str, int]]:
    return {(int(json.loads(a.group)["endpoint"][3:]), a.notification, a.timestamp_ms) for a in alerts}


def _horizon(tables: Sequence[pa.Table]) -> int:
    return max(int(np.max(t.column("window_end_ms").to_numpy())) for t in tables)


def run_vectorized(tables: Sequence[pa.Table]) -> list:
    """The batch runner's step in-process: selection per table, then one evaluation per group."""
    groups: dict = {}
    for table in tables:
        for key, columns in select_columns(table, [RULE]):
            groups.setdefault(key, []).append(columns)
    until = _horizon(tables)
    return [alert for key, parts in groups.items() for alert in evaluate_group(RULE, key, parts, 60, until)]


def run_state_machine(tables: Sequence[pa.Table]) -> list:
    """The reference: one tuple per row, the state machine over every window."""
    groups: dict = {}
    for table in tables:
        for key, parts in select_partials(table, [RULE]):
            groups.setdefault(key, []).extend(parts)
    until = _horizon(tables)
    return [a for key, parts in groups.items() for a in advance(RULE, key, None, (), parts, 2**62, WINDOW_MS, until)[0]]


def _count_alert(alert) -> None:
    beam.metrics.Metrics.counter("benchmark", alert.notification).inc()


def run_beam(paths: Sequence[str]) -> dict[str, int]:
    """``EvaluateRules`` in a local Beam pipeline (FnApiRunner) over the tables stored as Parquet files, read
    as the backtest reads them; returns the alerts counted by kind (trigger, resolve)."""
    with beam.Pipeline(options=options([])) as pipeline:
        _ = (
            pipeline
            | beam.Create(list(paths))
            | beam.ParDo(ReadAggregates(None, None))
            | EvaluateRules([RULE], 60)
            | beam.Map(_count_alert)
        )
    result = pipeline.result
    return {kind: counter(result, kind) for kind in ("trigger", "resolve")}


def _timed(function: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """Median CPU seconds and wall seconds of ``repeat`` runs, and the last result."""
    cpu, wall, result = [], [], []
    for _ in range(repeat):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        result = function()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started_wall)
    return statistics.median(cpu), statistics.median(wall), result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rules", description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=2000, help="one-minute series. Default: 2000")
    parser.add_argument("--windows", type=int, default=1440, help="windows per series. Default: 1440 (a day)")
    parser.add_argument("--reference-series", type=int, default=100, help="series the state machine runs on")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path; medians are printed. Default: 3")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--no-beam", action="store_true", help="skip the Beam pipeline path")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says
    values = dense_values(args.series, args.windows, args.seed)
    tables = generate_tables(values)
    windows = sum(t.num_rows for t in tables)
    reference_values = values[: args.reference_series]
    reference_tables = generate_tables(reference_values)
    reference_windows = sum(t.num_rows for t in reference_tables)
    log(f"{args.series:,} series x {args.windows:,} windows: {windows:,} series-windows; one core")

    rows = []
    problems = []
    cpu, wall, alerts = _timed(lambda: run_vectorized(tables), args.repeat)
    expected = numpy_alerts(values)
    if _as_set(alerts) != expected or len(alerts) != len(expected):
        problems.append(f"vectorized: {len(alerts):,} alerts, plain numpy {len(expected):,}: they differ")
    rows.append(("vectorized (batch runner step)", windows, cpu, wall, len(alerts)))
    vectorized_rate = windows / cpu
    cpu, wall, numpy_result = _timed(lambda: numpy_alerts(values), args.repeat)
    rows.append(("plain numpy, same rule", windows, cpu, wall, len(numpy_result)))
    numpy_rate = windows / cpu
    cpu, wall, reference = _timed(lambda: run_state_machine(reference_tables), 1 if args.repeat < 3 else 3)
    if _as_set(reference) != numpy_alerts(reference_values):
        problems.append("state machine: its alerts differ from plain numpy's")
    rows.append((f"state machine (first {args.reference_series} series)", reference_windows, cpu, wall, len(reference)))
    reference_rate = reference_windows / cpu
    if not args.no_beam:
        with tempfile.TemporaryDirectory(prefix="airis-rules-bench-") as folder:
            paths = []
            for number, table in enumerate(tables):
                paths.append(str(Path(folder) / f"aggregates-{number:03d}.parquet"))
                pq.write_table(table, paths[-1])
            cpu, wall, kinds = _timed(lambda: run_beam(paths), args.repeat)
        wanted = {kind: sum(1 for alert in expected if alert[1] == kind) for kind in ("trigger", "resolve")}
        if kinds != wanted:
            problems.append(f"Beam batch: {kinds} alerts, plain numpy {wanted}")
        rows.append(("Beam batch EvaluateRules (FnApiRunner)", windows, cpu, wall, sum(kinds.values())))

    print(f"\nRule evaluation, p95 > {THRESHOLD:g} for {FOR_WINDOWS} windows, one core, medians of {args.repeat}")
    print(f"{'path':<40} {'series-windows':>15} {'CPU s':>8} {'wall s':>8} {'per CPU-s':>12} {'alerts':>7}")
    for name, count, cpu_s, wall_s, alert_count in rows:
        print(f"{name:<40} {count:>15,} {cpu_s:>8.2f} {wall_s:>8.2f} {count / cpu_s:>12,.0f} {alert_count:>7,}")
    print(f"vectorized / state machine: {vectorized_rate / reference_rate:.1f}x;"
          f" vectorized / plain numpy: {vectorized_rate / numpy_rate:.2f}x")  # fmt: skip
    month = 432_000_000
    print(f"a month of 10,000 one-minute series ({month:,} series-windows) at this rate: "
          f"{month / vectorized_rate / 60:.0f} CPU-minutes")  # fmt: skip
    passed = vectorized_rate >= TARGET_PER_CPU_S
    print(f"target >= {TARGET_PER_CPU_S:,} series-windows per CPU-second (vectorized): "
          f"{verdict(passed, windows, JUDGED_FROM)}".replace(" points", " series-windows"))  # fmt: skip
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    if problems or (windows >= JUDGED_FROM and not passed):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
