"""Measuring helpers shared by the benchmark scripts: wall clock, CPU time, resident memory, the report table."""

from __future__ import annotations

import ctypes
import gc
import math
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import apache_beam as beam
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.options import beam_options

__all__ = ["PEAK", "PathResult", "counter", "format_table", "log", "measure", "options", "warm_up"]


@dataclass
class PathResult:
    """The figures of one measured path."""

    path: str
    points: int
    rows: int
    seconds: float
    cpu_seconds: float
    start_rss_mb: float
    peak_rss_mb: float
    note: str = ""
    points_per_second: float = field(init=False)

    def __post_init__(self) -> None:
        self.points_per_second = self.points / self.seconds if self.seconds > 0 else math.inf


def verdict(passed: bool, size: int, judged_from: int) -> str:
    """``PASS``/``FAIL`` for a run of ``size`` points, or why there is none: a target set for a size (start-up
    dominates a small run) is judged only from ``judged_from`` points on."""
    if size < judged_from:
        return f"no verdict at {size:,} points (figures only: the target is judged from {judged_from:,} points)"
    return "PASS" if passed else "FAIL"


def options(beam_args: Sequence[str]) -> PipelineOptions:
    """The job's options on the local runner (a batch run: Beam's in-process FnApiRunner, as the job uses)."""
    return beam_options(["--runner=DirectRunner", *beam_args])


def counter(result: beam.runners.runner.PipelineResult, name: str, namespace: str = "benchmark") -> int:
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


class _PeakRss:
    """Resident set size per measured path, and the peak of the whole process.

    Before each path, freed memory is handed back to the OS (``gc``, Arrow's
    pool, glibc's ``malloc_trim``) so a path does not start on what an earlier
    one kept. ``ru_maxrss`` only grows, so on Linux the high-water mark is reset
    by writing ``5`` to ``/proc/self/clear_refs`` (``ru_maxrss`` included); the
    process peak is the maximum of the readings taken before every reset.
    """

    def __init__(self):
        self.process_peak_mb = 0.0
        self.resettable = False
        try:
            self._malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            self._malloc_trim = None

    @staticmethod
    def current_peak_mb() -> float:
        # ru_maxrss is KiB on Linux, bytes on macOS.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024

    @staticmethod
    def current_mb() -> float:
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return math.nan

    def reset(self) -> float:
        """Release freed memory, reset the high-water mark; return the RSS now (MB)."""
        self.read()
        gc.collect()
        pa.default_memory_pool().release_unused()
        if self._malloc_trim is not None:
            self._malloc_trim(0)
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self.resettable = True
        except OSError:
            self.resettable = False
        return self.current_mb()

    def read(self) -> float:
        peak = self.current_peak_mb()
        self.process_peak_mb = max(self.process_peak_mb, peak)
        return peak


PEAK = _PeakRss()


def warm_up(beam_args: Sequence[str]) -> None:
    """A tiny untimed pipeline, so one-off runner start-up costs fall on no measured path."""
    pipeline = beam.Pipeline(options=options(beam_args))
    _ = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: x + 1)
    pipeline.run().wait_until_finish()


def format_table(results: Sequence[PathResult], baseline_pps: float) -> str:
    header = (
        f"{'path':<38} {'points':>10} {'rows':>8} {'seconds':>8} {'cpu s':>7} {'RSS start/peak MB':>18} "
        f"{'points/s':>11} {'ratio':>6}  note"
    )
    lines = [header, "-" * (len(header) + 20)]
    for r in results:
        rss = f"{r.start_rss_mb:,.0f}/{r.peak_rss_mb:,.0f}"
        lines.append(
            f"{r.path:<38} {r.points:>10,} {r.rows:>8,} {r.seconds:>8.2f} {r.cpu_seconds:>7.2f} {rss:>18} "
            f"{r.points_per_second:>11,.0f} {r.points_per_second / baseline_pps:>6.3f}  {r.note}"
        )
    return "\n".join(lines)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(name: str, function: Callable[[], tuple[int, int]], note: str = "", repeat: int = 1) -> PathResult:
    """Run a path ``repeat`` times; keep the fastest run."""
    best: PathResult | None = None
    for attempt in range(repeat):
        log(f"running {name}" + (f" ({attempt + 1}/{repeat})" if repeat > 1 else "") + " ...")
        start_rss = PEAK.reset()
        points, rows, seconds, cpu = _timed(function)
        result = PathResult(name, points, rows, seconds, cpu, round(start_rss, 1), round(PEAK.read(), 1), note)
        log(
            f"  {points:,} points, {rows:,} rows in {seconds:.2f} s ({result.points_per_second:,.0f} points/s), "
            f"RSS {start_rss:,.0f} -> peak {result.peak_rss_mb:,.0f} MB"
        )
        if best is None or result.seconds < best.seconds:
            best = result
    assert best is not None
    return best
