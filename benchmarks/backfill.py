"""Backfill throughput: recorded ``GetMetricData`` responses through the backfill path to Parquet,
next to plain pyarrow over the same responses.

    python -m benchmarks.backfill --points 2000000
    python -m benchmarks.backfill --points 10000000 --skip-baseline     # the memory figure

Data (generated before any timing, kept on disk): ``--endpoints`` SageMaker
endpoints x 5 metrics x 5 statistics, one datapoint a minute, as many minutes
as ``--points`` needs (up to 14 days: 1-minute data stays within CloudWatch's
15-day retention). The backfill planner splits the range into chunks
(600 queries -> two ``GetMetricData`` calls per chunk, 500 + 100 queries,
at most 100,800 datapoints per response). Each response is recorded as boto3
returns it (a dict with ``MetricDataResults``, one ``datetime`` per timestamp,
in the ``tzlocal()`` zone botocore's parser gives) and pickled to a file;
replaying a response is one ``pickle.load``.

Paths, each timed from the recorded responses to Parquet on disk:

- ``responses only``: load every recorded response and do nothing else;
  the share of every path's time that is spent just getting boto3's objects.
- ``pyarrow (same outputs)``: plain pyarrow and numpy, no Beam and no project
  code: each response's lists become Arrow arrays, each response is written as
  a raw-point Parquet file, then one sort over all points gives count, sum,
  min, max, mean and exact p50/p95/p99 per (series, 60 s window)
  (:func:`window_statistics`), written as Parquet. The speed limit of doing
  the same work in one process without Beam.
- ``project (backfill)``: :func:`pipelines.backfill.fetch_chunks` with a
  CloudWatch client that replays the recorded responses (the real client code
  above boto3's ``get_metric_data``: query batching, result mapping, bulk
  Arrow conversion, atomic chunk files), then
  :func:`pipelines.backfill.store_and_evaluate`: the main job's graph on the
  DirectRunner (point_files source, Normalize, Aggregate, a p95 latency rule,
  storage of metrics, aggregates, alerts and health).

The target is ``project >= 40 %`` of the pyarrow path's points/s, and a peak
resident memory under 1.5 GB for 10,000,000 points. The script checks that
the project stored one aggregate row per (series, window) the baseline found
and every generated point, and exits with status 1 otherwise. Options not
listed in ``--help`` are passed to the Beam pipeline.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dateutil.tz import tzlocal

from airis_mon.extras import COMMAND_EXTRAS, exit_if_missing, one_line_on_missing_extra

if __name__ == "__main__":  # its imports below need boto3
    exit_if_missing("python -m benchmarks.backfill", *COMMAND_EXTRAS["benchmarks.backfill"])

from airis_mon.config import parse_config
from benchmarks.measure import PEAK, PathResult, format_table, log, measure, verdict, warm_up
from pipelines.backfill import store_and_evaluate
from sources.cloudwatch.backfill import fetch_chunks
from sources.cloudwatch.client import CloudWatchClient, MetricQuery
from sources.cloudwatch.config import DEFAULT_METRICS, DEFAULT_STATISTICS
from sources.cloudwatch.planner import MAX_QUERIES_PER_CALL, plan_chunks

__all__ = ["RecordedSession", "main", "record_responses"]

#: 2026-11-28T00:00:00Z: the recorded range ends here; "now" is one hour later.
END_S = int(datetime(2026, 11, 28, tzinfo=UTC).timestamp())
PERIOD_S = 60
#: botocore's timestamp parser returns ``tzlocal()`` datetimes. One shared instance: a fresh one per
#: datapoint (as botocore makes) would make every replay spend its time unpickling time zones.
BOTO_TZ = tzlocal()
MAX_MINUTES = 14 * 1440
WINDOW_MS = 60_000
TARGET = 0.40
MEMORY_TARGET_MB = 1536
#: Sizes the targets were set for: below them start-up dominates (speed) or the peak says nothing (memory).
TARGET_JUDGED_FROM = 2_000_000
MEMORY_JUDGED_AT = 10_000_000

RESPONSES = "responses only (pickle.load)"
BASELINE = "pyarrow (same outputs)"
PROJECT = "project (backfill: fetch + Beam graph)"


def benchmark_queries(endpoints: int) -> list[MetricQuery]:
    """The queries the backfill sends, in the client's order (configured endpoints x metrics x statistics)."""
    return [
        MetricQuery(f"endpoint-{e:03d}", "AllTraffic", metric, statistic)
        for e in range(endpoints)
        for metric in DEFAULT_METRICS
        for statistic in DEFAULT_STATISTICS
    ]


def _values(rng: np.random.Generator, query: MetricQuery, n: int) -> list[float]:
    if query.metric in ("ModelLatency", "OverheadLatency"):
        base = rng.lognormal(mean=math.log(20_000.0), sigma=0.4, size=n)  # µs
    else:
        base = rng.poisson(lam=40.0 if query.metric == "Invocations" else 0.5, size=n).astype(np.float64)
    if query.statistic == "SampleCount":
        base = np.round(base) + 1.0
    return base.tolist()


# --------------------------------------------------------------------------- recorded responses


def _response_name(start_s: int, first_query: int) -> str:
    return f"response-{start_s}-q{first_query}.pickle"


def record_responses(queries: list[MetricQuery], start_s: int, end_s: int, now_s: int, folder: Path,
                     seed: int) -> tuple[int, int]:  # fmt: skip
    """Write one boto3-shaped GetMetricData response per (chunk, call); return (responses, datapoints)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    responses = datapoints = 0
    for chunk in plan_chunks(start_s, end_s, now_s, min(len(queries), MAX_QUERIES_PER_CALL)):
        times = range(chunk.start_s, chunk.end_s, chunk.period_s)
        for offset in range(0, len(queries), MAX_QUERIES_PER_CALL):
            results = []
            for index, query in enumerate(queries[offset : offset + MAX_QUERIES_PER_CALL], start=offset):
                results.append({
                    "Id": f"q{index}",
                    "Label": query.metric,
                    "Timestamps": [datetime.fromtimestamp(at, BOTO_TZ) for at in times],
                    "Values": _values(rng, query, len(times)),
                    "StatusCode": "Complete",
                })  # fmt: skip
                datapoints += len(times)
            response = {"MetricDataResults": results, "Messages": [], "ResponseMetadata": {"HTTPStatusCode": 200}}
            with open(folder / _response_name(chunk.start_s, offset), "wb") as handle:
                pickle.dump(response, handle, protocol=pickle.HIGHEST_PROTOCOL)
            responses += 1
    return responses, datapoints


class _RecordedCloudWatch:
    """Stands in for boto3's CloudWatch client: ``get_metric_data`` answers from the recorded files."""

    def __init__(self, folder: Path):
        self._folder = folder
        self.calls = 0

    def get_metric_data(self, **request) -> dict:
        queries = request["MetricDataQueries"]
        if any(q["MetricStat"]["Period"] != PERIOD_S for q in queries) or "NextToken" in request:
            raise AssertionError("the benchmark recorded 60 s periods in single pages")
        start_s = int(request["StartTime"].timestamp())
        self.calls += 1
        with open(self._folder / _response_name(start_s, int(queries[0]["Id"][1:])), "rb") as handle:
            return pickle.load(handle)

    def close(self) -> None:
        pass


class RecordedSession:
    """A ``boto3.session.Session`` stand-in whose CloudWatch client replays recorded responses."""

    def __init__(self, folder: Path):
        self.cloudwatch = _RecordedCloudWatch(folder)

    def client(self, service: str, **_) -> object:
        if service == "cloudwatch":
            return self.cloudwatch
        return _RecordedCloudWatch(Path("/nonexistent"))  # sagemaker: endpoints are configured, never listed


# --------------------------------------------------------------------------- paths


def run_responses_only(folder: Path) -> tuple[int, int]:
    points = responses = 0
    for path in sorted(folder.glob("response-*.pickle")):
        with open(path, "rb") as handle:
            response = pickle.load(handle)
        points += sum(len(entry["Values"]) for entry in response["MetricDataResults"])
        responses += 1
        del response
    return points, responses


def run_pyarrow(folder: Path, queries: list[MetricQuery], out: Path) -> tuple[int, int]:
    """Plain pyarrow: responses -> raw Parquet per response -> group_by (series, window) -> aggregates Parquet."""
    out.mkdir(parents=True, exist_ok=True)
    chunks = []
    for path in sorted(folder.glob("response-*.pickle")):
        with open(path, "rb") as handle:
            response = pickle.load(handle)
        ids, stamps, values = [], [], []
        for entry in response["MetricDataResults"]:
            timestamps = pa.array(entry["Timestamps"]).cast(pa.timestamp("us", tz="UTC"))  # the fastest conversion
            ids.append(np.full(len(timestamps), int(entry["Id"][1:]), dtype=np.int32))
            stamps.append(timestamps.cast(pa.int64()).to_numpy() // 1000)
            values.append(np.asarray(entry["Values"], dtype=np.float64))
        del response
        chunk = pa.table({"series": np.concatenate(ids), "timestamp_ms": np.concatenate(stamps),
                          "value": np.concatenate(values)})  # fmt: skip
        pq.write_table(chunk, out / f"raw-{path.stem}.parquet", compression="zstd")
        chunks.append(chunk)
    table = pa.concat_tables(chunks)
    del chunks
    aggregates = window_statistics(table)
    names = pa.array([f"{q.endpoint}/{q.metric}/{q.statistic}" for q in queries])
    aggregates = aggregates.append_column("series_name", names.take(aggregates.column("series")))
    pq.write_table(aggregates, out / "aggregates.parquet", compression="zstd")
    return int(pc.sum(aggregates.column("count")).as_py()), aggregates.num_rows


def window_statistics(table: pa.Table) -> pa.Table:
    """count, sum, min, max, mean and exact (linear) p50/p95/p99 per (series, 60 s window), in one sort.

    pyarrow's own ``group_by`` has only t-digest quantiles, which keep a digest
    per group: ~9 KB each, 18 GB for 2M one-point windows. One Arrow sort by
    (group, value) and numpy ``reduceat`` give the same statistics as the
    project's, exactly.
    """
    window = table.column("timestamp_ms").to_numpy() // WINDOW_MS
    first = int(window.min())
    span = int(window.max()) - first + 1
    group = table.column("series").to_numpy().astype(np.int64) * span + (window - first)
    values = table.column("value").to_numpy()
    order = pc.sort_indices(pa.table({"g": group, "v": values}), [("g", "ascending"), ("v", "ascending")]).to_numpy()
    group, values = group[order], values[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    counts = np.diff(np.r_[starts, len(group)])
    lasts = starts + counts - 1
    sums = np.add.reduceat(values, starts)
    columns = {
        "series": group[starts] // span,
        "window_start_ms": (group[starts] % span + first) * WINDOW_MS,
        "count": counts,
        "sum": sums,
        "min": values[starts],
        "max": values[lasts],
        "mean": sums / counts,
    }
    for q in (0.5, 0.95, 0.99):
        position = (counts - 1) * q
        low = starts + np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, lasts)
        columns[f"p{round(q * 100)}"] = values[low] + (values[high] - values[low]) * (position - np.floor(position))
    return pa.table(columns)


def backfill_config(endpoints: int, output: Path):
    document = {
        "integrations": [{
            "name": "sagemaker", "type": "cloudwatch", "region": "us-east-1",
            "endpoint_names": [f"endpoint-{e:03d}" for e in range(endpoints)], "environment": "bench",
        }],
        "rules": [{
            "name": "latency-p95", "metric": "model_latency", "tags": {"statistic": "average"},
            "group_by": ["endpoint_name"], "aggregation": "p95", "comparator": ">", "threshold": 60.0,
            "for": 3, "severity": "high",
        }],
        "sinks": [{"name": "storage", "type": "parquet", "path": str(output)}],
    }  # fmt: skip
    return parse_config(document, output)


def run_project(folder: Path, endpoints: int, start_s: int, now_s: int, out: Path,
                beam_args: Sequence[str]) -> tuple[int, int]:  # fmt: skip
    """The backfill: fetch_chunks (replayed responses) + store_and_evaluate. Returns (points, aggregate rows)."""
    config = backfill_config(endpoints, out)
    source = config.integrations[0]
    client = CloudWatchClient(source.region, session=RecordedSession(folder))
    started = time.perf_counter()
    paths = fetch_chunks(source, start_s, END_S, out / "backfill" / source.name, now_s, client)
    log(f"  fetch: {len(paths)} chunk files in {time.perf_counter() - started:.2f} s")
    store_and_evaluate(config, {source.name: paths}, str(out), ["--runner=DirectRunner", *beam_args])
    return stored_points_and_rows(out)


def stored_points_and_rows(out: Path) -> tuple[int, int]:
    """The SageMaker aggregates the project stored: (points they cover, rows)."""
    table = pq.read_table(out / "aggregates", columns=["source", "count"])
    sagemaker = table.filter(pc.equal(table.column("source"), "aws_sagemaker"))
    return int(pc.sum(sagemaker.column("count")).as_py()), sagemaker.num_rows


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backfill", description=__doc__.split("\n\n")[0],
                                     epilog="Other options are passed to the Beam pipeline.")  # fmt: skip
    parser.add_argument("--points", type=int, default=2_000_000, help="datapoints to record. Default: 2000000")
    parser.add_argument("--endpoints", type=int, default=24,
                        help="SageMaker endpoints (25 queries each). Default: 24 (600 queries)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=20261128, help="random seed of the values. Default: 20261128")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="run the project path only (memory runs at 10M points). Default: off")  # fmt: skip
    parser.add_argument("--keep-data", action="store_true", help="keep the data folder (path printed). Default: off")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args, beam_args = parser.parse_known_args(argv)
    if args.points <= 0 or args.endpoints <= 0:
        parser.error("--points and --endpoints must be positive")
    minutes = math.ceil(args.points / (args.endpoints * len(DEFAULT_METRICS) * len(DEFAULT_STATISTICS)))
    if minutes > MAX_MINUTES:
        parser.error(f"--points needs {minutes} minutes per series (max {MAX_MINUTES}): raise --endpoints")
    return args, beam_args


def main(argv: Sequence[str] | None = None) -> int:
    args, beam_args = parse_args(argv)
    queries = benchmark_queries(args.endpoints)
    minutes = math.ceil(args.points / len(queries))
    start_s, now_s = END_S - minutes * PERIOD_S, END_S + 3600
    work = Path(tempfile.mkdtemp(prefix="airis-mon-backfill-bench-"))
    try:
        log(f"recording GetMetricData responses: {len(queries)} queries x {minutes:,} minutes under {work} ...")
        started = time.perf_counter()
        responses, points = record_responses(queries, start_s, END_S, now_s, work / "responses", args.seed)
        size_mb = sum(p.stat().st_size for p in (work / "responses").iterdir()) / 1e6
        log(f"  {responses} responses, {points:,} datapoints, {size_mb:.0f} MB "
            f"in {time.perf_counter() - started:.1f} s (not measured)")  # fmt: skip
        warm_up(beam_args)
        results = [measure(RESPONSES, lambda: run_responses_only(work / "responses"), "boto3 objects only")]
        if not args.skip_baseline:
            results.append(measure(BASELINE, lambda: run_pyarrow(work / "responses", queries, work / "pyarrow"),
                                   "raw + aggregates Parquet, exact quantiles"))  # fmt: skip
        results.append(measure(PROJECT, lambda: run_project(work / "responses", args.endpoints, start_s, now_s,
                                                            work / "project", beam_args),
                               "chunks + metrics + aggregates + alerts, exact quantiles"))  # fmt: skip
    finally:
        if not args.keep_data:
            shutil.rmtree(work, ignore_errors=True)
    by_name = {r.path: r for r in results}
    project = by_name[PROJECT]
    baseline = by_name.get(BASELINE)
    checks = {"project stored every recorded point": project.points == points}
    if baseline is not None:
        checks["project aggregate rows == pyarrow rows"] = project.rows == baseline.rows
        checks["pyarrow aggregated every recorded point"] = baseline.points == points
    ratio = project.points_per_second / baseline.points_per_second if baseline else None
    replay_s = by_name[RESPONSES].seconds
    processing_ratio = (baseline.seconds - replay_s) / (project.seconds - replay_s) if baseline else None
    report = {
        "points": points,
        "queries": len(queries),
        "responses": responses,
        "response_mb": round(size_mb, 1),
        "beam_args": beam_args,
        "paths": [{**asdict(r), "points_per_second": round(r.points_per_second)} for r in results],
        "ratio_to_baseline": round(ratio, 4) if ratio is not None else None,
        "speed_target_passed": ratio >= TARGET if ratio is not None else None,
        "ratio_without_replay": round(processing_ratio, 4) if processing_ratio is not None else None,
        "project_peak_rss_mb": project.peak_rss_mb,
        "memory_target_passed": project.peak_rss_mb < MEMORY_TARGET_MB,
        "peak_rss_per_path": PEAK.resettable,
        "checks": checks,
        "data_dir": str(work) if args.keep_data else None,
    }
    if args.json:
        print(json.dumps(report))
    else:
        _print_report(report, results)
    return 0 if all(checks.values()) else 1


def _print_report(report: dict, results: Sequence[PathResult]) -> None:
    print(f"backfill benchmark: {report['points']:,} datapoints, {report['queries']} queries, 60 s periods, "
          f"{report['responses']} recorded GetMetricData responses ({report['response_mb']} MB pickled)")  # fmt: skip
    baseline = next((r for r in results if r.path == BASELINE), None)
    print(format_table(results, (baseline or results[0]).points_per_second))
    print(f"ratio = points/s relative to '{(baseline or results[0]).path}'; rows = (series, window) aggregate rows "
          "(responses for the first path)")  # fmt: skip
    if report["ratio_to_baseline"] is not None:
        speed = verdict(report["speed_target_passed"], report["points"], TARGET_JUDGED_FROM)
        print(f"speed target: project >= {TARGET:.0%} of plain pyarrow: {report['ratio_to_baseline']:.1%} -> {speed}")
        print(f"  without the replay (both paths minus 'responses only'): {report['ratio_without_replay']:.1%}")
    peak = "peak during the path" if report["peak_rss_per_path"] else "process peak so far (not resettable here)"
    memory = verdict(report["memory_target_passed"], report["points"], MEMORY_JUDGED_AT)
    print(f"memory: project {peak} {report['project_peak_rss_mb']:,.0f} MB (target < {MEMORY_TARGET_MB} MB "
          f"at {MEMORY_JUDGED_AT:,} points) -> {memory}")  # fmt: skip
    for name, ok in report["checks"].items():
        print(f"check: {name}: {'OK' if ok else 'MISMATCH'}")
    if report["data_dir"]:
        print(f"data kept in {report['data_dir']}")


if __name__ == "__main__":
    with one_line_on_missing_extra("python -m benchmarks.backfill"):
        sys.exit(main())
