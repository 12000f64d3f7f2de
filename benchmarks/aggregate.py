"""Aggregation throughput: the project's Beam path against a per-element Beam path and plain pyarrow.

    python -m benchmarks.aggregate --points 2000000
    python -m benchmarks.aggregate --points 2000000 --json

What is measured, over the same generated Parquet files of raw points
(:data:`~airis_mon.schema.RAW_POINT_SCHEMA`, one day, about 200 series with
vendor names and units; generation is not timed):

- ``project``: a Beam pipeline (DirectRunner, in-process) that reads the files
  in Arrow record batches inside the pipeline and applies the project's
  :class:`~transforms.normalize.Normalize` and
  :class:`~transforms.aggregate.Aggregate` (60 s windows, 16 shards).
  Wall clock of pipeline construction + run + ``wait_until_finish``.
- ``naive``: the textbook per-element Beam pipeline (one Python dict per
  point, per-element normalization, ``WindowInto(FixedWindows)`` and
  ``CombinePerKey`` collecting values for numpy percentiles). It runs at a few
  ten thousand points/s, so it runs on a subset (``--naive-points``, the first
  rows of every file) and its points/s comes from that subset.
- ``pyarrow``: ``pyarrow.parquet.read_table`` + ``Table.group_by`` on the raw
  series columns and the window start: the same statistics (count, sum, min,
  max, mean and t-digest p50/p95/p99), and, as a lower bound, without the
  quantiles. No name/unit normalization: this is the speed limit of doing the
  work in Arrow without Beam.

Why: the project claims its Arrow-batch design runs close to plain pyarrow
(target: at least 40 % of the same-statistics baseline's points/s) while the
per-element design is orders of magnitude slower. Every path counts its
(series, window) rows; the script checks that the project and the baseline
agree (and the naive path against the baseline on its subset) and exits with
status 1 if they do not. The project computes exact quantiles, the baseline
t-digest estimates, so only counts are compared, not quantile values.

``cpu s`` is the process's user + system CPU time during the path (pyarrow's
``group_by`` and ``read_table`` use threads; the DirectRunner uses one worker
unless given ``--direct_num_workers``). Options not listed in ``--help`` are
passed to both Beam pipelines as pipeline options.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import FixedWindows, TimestampedValue

from airis_mon import streams
from airis_mon.schema import RAW_POINT_SCHEMA, canonical_tags, tags_from_json
from airis_mon.timeutil import to_epoch_ms
from transforms.aggregate import Aggregate
from transforms.normalize import Normalize, canonical_unit, snake_case

__all__ = [
    "PathResult",
    "generate_data",
    "main",
    "naive_row_limits",
    "pyarrow_group_by",
    "run_naive",
    "run_project",
    "series_catalogue",
]

NAMESPACE = "benchmark"
WINDOW_SECONDS = 60
WINDOW_MS = WINDOW_SECONDS * 1000
NUM_SHARDS = 16
#: 2026-11-28T00:00:00Z, the day of the bundled sample data.
DAY_START_MS = int(datetime(2026, 11, 28, tzinfo=timezone.utc).timestamp() * 1000)
DAY_MS = 86_400_000
SERIES_COLUMNS = ["source", "name", "unit", "tags"]
QUANTILES = (0.5, 0.95, 0.99)
TARGET = 0.40

BASELINE = "pyarrow group_by (same statistics)"
LOWER_BOUND = "pyarrow group_by without quantiles"

# (source, [(name, unit)], {tag key: [values]}): the cross product is the series set.
_CATALOGUE: tuple[tuple[str, list[tuple[str, str]], dict[str, list[str]]], ...] = (
    (
        "aws_sagemaker",
        [
            ("ModelLatency", "Microseconds"),
            ("OverheadLatency", "Microseconds"),
            ("Invocations", "Count"),
            ("Invocation4XXErrors", "Count"),
            ("Invocation5XXErrors", "Count"),
            ("CPUUtilization", "Percent"),
            ("MemoryUtilization", "Percent"),
            ("DiskUtilization", "Percent"),
        ],
        {
            "EndpointName": ["fraud-detector-prod", "churn-model-prod", "recsys-ranker-staging", "ltv-model-prod"],
            "VariantName": ["AllTraffic"],
            "Statistic": ["Average", "Maximum"],
        },
    ),
    (
        "tensorflow_serving",
        [("inference_latency", "ms"), ("request_count", "Count"), ("queue_latency", "us"), ("model_load_time", "s")],
        {
            "model_name": ["fraud", "churn", "recsys", "ltv", "search", "ads"],
            "environment": ["production", "staging"],
        },
    ),
    (
        "prometheus",
        [
            ("http_request_duration_seconds", "s"),
            ("process_resident_memory_bytes", "bytes"),
            ("GPUMemoryUsed", "MiB"),
            ("GPUUtilization", "%"),
            ("requests_per_second", "rps"),
            ("containerRestarts", "Count"),
            ("NetworkBytesIn", "KB"),
        ],
        {"instance": [f"10.0.0.{i}:9100" for i in range(1, 9)], "job": ["inference"]},
    ),
    (
        "github_actions",
        [
            ("WorkflowRunDuration", "Seconds"),
            ("JobQueueTime", "Milliseconds"),
            ("workflow_runs", "Count"),
            ("ArtifactSize", "MB"),
        ],
        {"repository": [f"airis/model-{i}" for i in range(8)]},
    ),
)


@dataclass
class PathResult:
    """The figures of one measured path."""

    path: str
    points: int
    rows: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    note: str = ""
    points_per_second: float = field(init=False)

    def __post_init__(self) -> None:
        self.points_per_second = self.points / self.seconds if self.seconds > 0 else math.inf


# --------------------------------------------------------------------------- data


def _tag_combinations(tags: dict[str, list[str]]) -> list[dict[str, str]]:
    combos: list[dict[str, str]] = [{}]
    for key, values in tags.items():
        combos = [{**combo, key: value} for combo in combos for value in values]
    return combos


def series_catalogue() -> list[tuple[str, str, str, str]]:
    """The raw series: ``(source, name, unit, canonical tags JSON)``, 200 of them.

    Distinct raw series stay distinct after normalization (checked), so the
    project and the raw-column baseline must find the same (series, window) rows.
    """
    series = [
        (source, name, unit, canonical_tags(tags))
        for source, metrics, tag_values in _CATALOGUE
        for name, unit in metrics
        for tags in _tag_combinations(tag_values)
    ]
    normalized = {
        (source, snake_case(name), canonical_unit(unit)[0], _normalize_tags(tags))
        for source, name, unit, tags in series
    }
    if len(normalized) != len(series):
        raise AssertionError("two raw series normalize to the same series; the row counts would differ")
    return series


def generate_data(points: int, files: int, seed: int, data_dir: Path) -> list[str]:
    """Write ``points`` raw points, sorted by time over one day, into ``files`` Parquet files.

    Vectorised: series ids are drawn with numpy and expanded with ``pc.take``.
    Returns the file paths in time order.
    """
    rng = np.random.default_rng(seed)
    series = series_catalogue()
    sources, names, units, tags = (pa.array(column, type=pa.string()) for column in zip(*series, strict=True))
    weights = rng.uniform(0.5, 2.0, len(series))
    series_id = pa.array(rng.choice(len(series), size=points, p=weights / weights.sum()).astype(np.int32))
    timestamps = np.sort(rng.integers(0, DAY_MS, size=points)) + DAY_START_MS
    base = rng.lognormal(mean=3.0, sigma=2.0, size=len(series))
    values = base[series_id.to_numpy()] * rng.lognormal(mean=0.0, sigma=0.3, size=points)
    table = pa.Table.from_arrays(
        [
            pa.array(timestamps.astype(np.float64)),
            pc.take(sources, series_id),
            pc.take(names, series_id),
            pa.array(values),
            pc.take(units, series_id),
            pc.take(tags, series_id),
        ],
        schema=RAW_POINT_SCHEMA,
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, points, files + 1).astype(np.int64)
    paths = []
    for index, (begin, end) in enumerate(itertools.pairwise(bounds)):
        path = data_dir / f"raw-points-{index:03d}.parquet"
        pq.write_table(table.slice(int(begin), int(end - begin)), path)
        paths.append(str(path))
    return paths


def naive_row_limits(paths: Sequence[str], points: int) -> list[tuple[str, int]]:
    """``(path, rows)``: the naive subset, ``points`` rows split evenly over the files (their first rows)."""
    base, extra = divmod(points, len(paths))
    limits = []
    for index, path in enumerate(paths):
        rows = pq.ParquetFile(path).metadata.num_rows
        limits.append((path, min(rows, base + (1 if index < extra else 0))))
    return limits


# --------------------------------------------------------------------------- Beam helpers


def _options(beam_args: Sequence[str]) -> PipelineOptions:
    return PipelineOptions(["--runner=DirectRunner", *beam_args])


def _counter(result: beam.runners.runner.PipelineResult, name: str, namespace: str = NAMESPACE) -> int:
    query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(namespace).with_name(name))
    return sum(c.committed if c.committed is not None else c.attempted for c in query["counters"])


def _timed(function: Callable[[], tuple[int, int]]) -> tuple[int, int, float, float]:
    """Run ``function`` (returning points, rows); add wall-clock and CPU seconds."""
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    points, rows = function()
    seconds = time.perf_counter() - started
    return points, rows, seconds, _cpu_seconds() - cpu_before


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class _ReadParquetBatches(beam.DoFn):
    """Parquet path -> ``pyarrow.Table`` batches of ``batch_size`` rows."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size
        self._points = beam.metrics.Metrics.counter(NAMESPACE, "points_read")

    def process(self, path: str) -> Iterator[pa.Table]:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=self._batch_size):
            self._points.inc(batch.num_rows)
            yield pa.Table.from_batches([batch])


class _CountAggregates(beam.DoFn):
    """Sink: count aggregate rows and the points they cover."""

    def __init__(self):
        self._rows = beam.metrics.Metrics.counter(NAMESPACE, "aggregate_rows")
        self._points = beam.metrics.Metrics.counter(NAMESPACE, "aggregated_points")

    def process(self, table: pa.Table) -> Iterator[None]:
        self._rows.inc(table.num_rows)
        self._points.inc(int(pc.sum(table.column("count")).as_py() or 0))
        return iter(())


def run_project(paths: Sequence[str], batch_size: int, beam_args: Sequence[str]) -> tuple[int, int]:
    """The project's path: Parquet batches -> Normalize -> Aggregate. Returns (points aggregated, rows)."""
    pipeline = beam.Pipeline(options=_options(beam_args))
    batches = (
        pipeline | "Files" >> beam.Create(list(paths)) | "ReadBatches" >> beam.ParDo(_ReadParquetBatches(batch_size))
    )
    normalized = batches | "Normalize" >> Normalize()
    (
        normalized[streams.POINTS]
        | "Aggregate" >> Aggregate(window_seconds=WINDOW_SECONDS, num_shards=NUM_SHARDS)
        | "Count" >> beam.ParDo(_CountAggregates())
    )
    result = pipeline.run()
    result.wait_until_finish()
    rejected = _counter(result, "points_rejected", namespace="normalize")
    if rejected:
        print(f"  note: Normalize dead-lettered {rejected:,} points", file=sys.stderr)
    return _counter(result, "aggregated_points"), _counter(result, "aggregate_rows")


# --------------------------------------------------------------------------- naive path


def _normalize_tags(tags_json: str) -> str:
    tags = {snake_case(key): value for key, value in tags_from_json(tags_json).items()}
    if "statistic" in tags:
        tags["statistic"] = snake_case(tags["statistic"])
    return canonical_tags(tags)


class _ReadParquetRows(beam.DoFn):
    """``(path, rows)`` -> one dict per point, for the first ``rows`` rows of the file."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size

    def process(self, path_and_rows: tuple[str, int]) -> Iterator[dict]:
        path, remaining = path_and_rows
        for batch in pq.ParquetFile(path).iter_batches(batch_size=self._batch_size):
            if remaining <= 0:
                return
            if batch.num_rows > remaining:
                batch = batch.slice(0, remaining)
            remaining -= batch.num_rows
            yield from batch.to_pylist()


def _normalize_point(point: dict) -> Iterator[dict]:
    """Per-element Normalize; drops (does not dead-letter) invalid points."""
    value, timestamp = point["value"], point["timestamp"]
    if value is None or not math.isfinite(value) or timestamp is None or not math.isfinite(timestamp):
        return
    unit, factor = canonical_unit(point["unit"] or "")
    yield {
        "timestamp_ms": to_epoch_ms(timestamp),
        "source": point["source"],
        "name": snake_case(point["name"]),
        "value": value * factor,
        "unit": unit,
        "tags": _normalize_tags(point["tags"]),
    }


class _SeriesStats(beam.CombineFn):
    """count, sum, min, max, mean and exact p50/p95/p99 (values collected, numpy at extract)."""

    def create_accumulator(self) -> list[float]:
        return []

    def add_input(self, accumulator: list[float], value: float) -> list[float]:
        accumulator.append(value)
        return accumulator

    def merge_accumulators(self, accumulators: Iterator[list[float]]) -> list[float]:
        merged: list[float] = []
        for accumulator in accumulators:
            merged.extend(accumulator)
        return merged

    def extract_output(self, accumulator: list[float]) -> dict[str, float]:
        values = np.asarray(accumulator, dtype=np.float64)
        total = float(values.sum())
        p50, p95, p99 = np.percentile(values, [q * 100 for q in QUANTILES])
        return {
            "count": len(values),
            "sum": total,
            "min": float(values.min()),
            "max": float(values.max()),
            "mean": total / len(values),
            "p50": float(p50),
            "p95": float(p95),
            "p99": float(p99),
        }


class _CountWindows(beam.DoFn):
    """Sink: one (series, window) row per element; count rows and points."""

    def __init__(self):
        self._rows = beam.metrics.Metrics.counter(NAMESPACE, "naive_rows")
        self._points = beam.metrics.Metrics.counter(NAMESPACE, "naive_points")

    def process(self, element: tuple, window: beam.window.IntervalWindow = beam.DoFn.WindowParam) -> Iterator[None]:
        (_source, _name, _unit, _tags), stats = element
        _window_start_ms = window.start.micros // 1000
        self._rows.inc()
        self._points.inc(stats["count"])
        return iter(())


def run_naive(limits: Sequence[tuple[str, int]], batch_size: int, beam_args: Sequence[str]) -> tuple[int, int]:
    """The per-element path over the first rows of each file. Returns (points aggregated, rows)."""
    pipeline = beam.Pipeline(options=_options(beam_args))
    (
        pipeline
        | "Files" >> beam.Create(list(limits))
        | "ReadRows" >> beam.ParDo(_ReadParquetRows(batch_size))
        | "Normalize" >> beam.FlatMap(_normalize_point)
        | "Timestamp"
        >> beam.Map(
            lambda m: TimestampedValue(
                ((m["source"], m["name"], m["unit"], m["tags"]), m["value"]), m["timestamp_ms"] / 1000
            )
        )
        | "Window" >> beam.WindowInto(FixedWindows(WINDOW_SECONDS))
        | "Stats" >> beam.CombinePerKey(_SeriesStats())
        | "Count" >> beam.ParDo(_CountWindows())
    )
    result = pipeline.run()
    result.wait_until_finish()
    return _counter(result, "naive_points"), _counter(result, "naive_rows")


# --------------------------------------------------------------------------- pyarrow baseline


def pyarrow_group_by(table: pa.Table, quantiles: bool = True) -> pa.Table:
    """Group raw points by series columns and window start; count, sum, min, max, mean (+ t-digest quantiles)."""
    window_start = pc.multiply(pc.divide(pc.cast(table.column("timestamp"), pa.int64()), WINDOW_MS), WINDOW_MS)
    keyed = table.append_column("window_start", window_start)
    aggregations: list[tuple] = [("value", op) for op in ("count", "sum", "min", "max", "mean")]
    if quantiles:
        aggregations.append(("value", "tdigest", pc.TDigestOptions(q=list(QUANTILES))))
    return keyed.group_by([*SERIES_COLUMNS, "window_start"]).aggregate(aggregations)


def _run_pyarrow(paths: Sequence[str], quantiles: bool) -> tuple[int, int]:
    table = pq.read_table(list(paths))
    aggregates = pyarrow_group_by(table, quantiles)
    return int(pc.sum(aggregates.column("value_count")).as_py()), aggregates.num_rows


# --------------------------------------------------------------------------- report


def _warm_up(beam_args: Sequence[str]) -> None:
    """A tiny untimed pipeline, so one-off runner start-up costs fall on no measured path."""
    pipeline = beam.Pipeline(options=_options(beam_args))
    _ = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: x + 1)
    pipeline.run().wait_until_finish()


def _format_table(results: Sequence[PathResult], baseline_pps: float) -> str:
    header = f"{'path':<38} {'points':>11} {'rows':>9} {'seconds':>8} {'cpu s':>7} {'points/s':>12} {'ratio':>7}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.path:<38} {r.points:>11,} {r.rows:>9,} {r.seconds:>8.2f} {r.cpu_seconds:>7.2f} "
            f"{r.points_per_second:>12,.0f} {r.points_per_second / baseline_pps:>7.3f}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.aggregate",
        description=__doc__.split("\n\n")[0],
        epilog="Other options are passed to the Beam pipelines, e.g. --direct_num_workers=2.",
    )
    parser.add_argument("--points", type=int, default=2_000_000, help="raw points to generate. Default: 2000000")
    parser.add_argument(
        "--naive-points",
        type=int,
        default=200_000,
        help="points the per-element path runs on (the first rows of every file; capped at --points). Default: 200000",
    )
    parser.add_argument("--files", type=int, default=8, help="Parquet files to split the points into. Default: 8")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=50_000,
        help="rows per Arrow batch read inside the pipelines (the payload_files source's batch_rows). Default: 50000",
    )
    parser.add_argument(
        "--seed", type=int, default=20261128, help="random seed of the generated data. Default: 20261128"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder to write the Parquet files to; it is kept. Default: a temporary folder, removed at the end",
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the temporary data folder (its path is printed). Default: off"
    )
    parser.add_argument(
        "--skip-naive", action="store_true", help="do not run the per-element path (it is slow). Default: off"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object instead of the table. Default: off"
    )
    args, beam_args = parser.parse_known_args(argv)
    if args.points <= 0 or args.files <= 0 or args.batch_size <= 0 or args.naive_points < 0:
        parser.error("--points, --files and --batch-size must be positive, --naive-points not negative")
    return args, beam_args


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _measure(name: str, function: Callable[[], tuple[int, int]], note: str = "") -> PathResult:
    _log(f"running {name} ...")
    points, rows, seconds, cpu = _timed(function)
    result = PathResult(name, points, rows, seconds, cpu, _peak_rss_mb(), note)
    _log(f"  {points:,} points, {rows:,} rows in {seconds:.2f} s ({result.points_per_second:,.0f} points/s)")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the data, measure every path, print the report; exit status 1 if the row counts disagree."""
    args, beam_args = parse_args(argv)
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="airis-mon-bench-") if temporary else args.data_dir)
    try:
        _log(f"generating {args.points:,} points in {args.files} files under {data_dir} ...")
        started = time.perf_counter()
        paths = generate_data(args.points, args.files, args.seed, data_dir)
        size_mb = sum(os.path.getsize(p) for p in paths) / 1e6
        _log(f"  {size_mb:.1f} MB of Parquet in {time.perf_counter() - started:.1f} s (not measured)")
        _warm_up(beam_args)

        results = [
            _measure(BASELINE, lambda: _run_pyarrow(paths, quantiles=True), "t-digest quantiles"),
            _measure(LOWER_BOUND, lambda: _run_pyarrow(paths, quantiles=False), "lower bound"),
            _measure(
                "project (Beam: Normalize + Aggregate)",
                lambda: run_project(paths, args.batch_size, beam_args),
                "exact quantiles",
            ),
        ]
        checks = {"project rows == pyarrow rows": results[2].rows == results[0].rows}
        checks["project points == generated points"] = results[2].points == args.points
        naive_subset = None
        if not args.skip_naive and args.naive_points:
            limits = naive_row_limits(paths, min(args.naive_points, args.points))
            naive_subset = sum(rows for _, rows in limits)
            subset_note = "" if naive_subset == args.points else f"subset: first rows of each file, {naive_subset:,}"
            results.append(
                _measure(
                    "naive (Beam: per-element)", lambda: run_naive(limits, args.batch_size, beam_args), subset_note
                )
            )
            subset_table = pa.concat_tables(pq.read_table(path).slice(0, rows) for path, rows in limits)
            expected_rows = pyarrow_group_by(subset_table, quantiles=False).num_rows
            checks["naive rows == pyarrow rows on the naive subset"] = results[-1].rows == expected_rows
            checks["naive points == subset points"] = results[-1].points == naive_subset
    finally:
        if temporary and not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)

    by_name = {r.path: r for r in results}
    baseline_pps = by_name[BASELINE].points_per_second
    project = results[2]
    ratio = project.points_per_second / baseline_pps
    ratio_lower = project.points_per_second / by_name[LOWER_BOUND].points_per_second
    passed = ratio >= TARGET
    report = {
        "points": args.points,
        "files": args.files,
        "batch_size": args.batch_size,
        "series": len(series_catalogue()),
        "window_seconds": WINDOW_SECONDS,
        "num_shards": NUM_SHARDS,
        "beam_args": beam_args,
        "parquet_mb": round(size_mb, 1),
        "naive_points": naive_subset,
        "paths": [
            {**asdict(r), "ratio_to_baseline": r.points_per_second / baseline_pps, "seconds": round(r.seconds, 3)}
            for r in results
        ],
        "target": {
            "project_min_ratio": TARGET,
            "project_ratio": ratio,
            "project_ratio_to_lower_bound": ratio_lower,
            "passed": passed,
        },
        "checks": checks,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "data_dir": str(data_dir) if not temporary or args.keep_data else None,
    }
    if args.json:
        print(json.dumps(report, indent=None, sort_keys=False))
    else:
        print(
            f"aggregate benchmark: {args.points:,} raw points, {report['series']} series, one day, "
            f"{WINDOW_SECONDS} s windows, {args.files} Parquet files ({size_mb:.1f} MB), batches of {args.batch_size:,}"
        )
        print(_format_table(results, baseline_pps))
        print(f"ratio = points/s / points/s of '{BASELINE}'")
        if naive_subset is not None and naive_subset != args.points:
            print(
                f"naive: measured on a subset of {naive_subset:,} points (the first rows of each file), not all points"
            )
        print(
            f"target: project >= {TARGET:.0%} of plain pyarrow: {ratio:.1%} of '{BASELINE}' -> "
            f"{'PASS' if passed else 'FAIL'}; {ratio_lower:.1%} of '{LOWER_BOUND}'"
        )
        for name, ok in checks.items():
            print(f"check: {name}: {'OK' if ok else 'MISMATCH'}")
        print(f"(series, window) rows: project {project.rows:,}, pyarrow {by_name[BASELINE].rows:,}")
        print(f"peak RSS: {report['peak_rss_mb']:,.1f} MB")
        if report["data_dir"]:
            print(f"data kept in {report['data_dir']}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
