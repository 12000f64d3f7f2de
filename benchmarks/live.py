"""Benchmark of the continuous runner: sustained load through the gateway, breach -> Slack delay, CPU, RSS.

::

    python -m benchmarks.live                                   # 10,000 points/s, 5,000 series, 5 minutes
    python -m benchmarks.live --duration 40 --rate 500 --series 200 --window 10 --breaches 1   # CI smoke

It starts ``python -m pipelines.serve`` (gateway child included) on loopback
with a threshold rule (``p95 > 250 ms``, ``for: 1``), a loopback Slack
receiver that enforces Slack's message rules, and load clients
(:mod:`benchmarks.live_load`) posting ``--rate`` points/s over ``--series``
series. ``--breaches`` series breach, one after another, for two windows
each. Printed:

- breach -> notification delay at the Slack receiver (p50, p99, max), and the
  part of it beyond the moment the breaching window could first be judged
  (window end + ``live.allowed_lateness``): the baseline no runner can beat,
  measured in the same run;
- CPU seconds of the runner and its gateway (share of the machine's cores);
- RSS of the runner and its gateway after warm-up (the first minute, or a
  fifth of the run) and at the end, and their ratio;
- points acknowledged per second and the goal lines: p99 <= one window + 20 s,
  RSS flat within 10 %.

Everything stays on 127.0.0.1; every loop is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from airis_mon.extras import COMMAND_EXTRAS, install_hint, one_line_on_missing_extra, require
from benchmarks.live_load import Load, free_port, model_name, rotating_incidents, wait_until_serving
from tests.sinks.receivers import Receiver
from tests.sinks.slack.slack_receiver import slack_webhook

REPO = Path(__file__).resolve().parents[1]
TOKEN = "benchmark-token-0123456789abcdef"

CONFIG = """
integrations:
  - name: api
    type: gateway
    spool: ./spool
    port: {port}
    tokens: [{{name: load, token: {{env: AIRIS_BENCH_TOKEN}}}}]
    max_segment_age_s: 1
    max_body_bytes: 8388608
    rate_limit_per_s: 100000
    rate_limit_burst: 100000
aggregation: {{window_seconds: {window}}}
live: {{cycle_interval_s: {cycle}, metrics_port: 0}}
rules:
  - {{name: latency, metric: inference_latency, aggregation: p95, comparator: ">", threshold: 250, for: 1,
     severity: critical, group_by: [model_name]}}
sinks:
  - {{name: storage, type: parquet, path: out}}
  - {{name: slack, type: slack, webhook_url: {{env: AIRIS_BENCH_SLACK_URL}}}}
default_route: {{sinks: [slack]}}
"""


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu_and_rss(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and RSS (MB) of a process tree."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu, rss = 0.0, 0.0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / ticks
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
        except OSError:
            continue
    return cpu, rss


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _first_triggers(arrived: list[tuple[float, bytes]], names: set[str]) -> dict[str, float]:
    """Model name -> arrival time (wall s) of the first trigger message naming it (resolves skipped)."""
    first: dict[str, float] = {}
    for at, body in arrived:
        text = json.loads(body).get("text", "")
        if text.startswith("Resolved:"):
            continue
        for name in names - first.keys():
            if f'"model_name":"{name}"' in text:
                first[name] = at
    return first


def _first_breaching_window_end(aggregates: Path, incidents) -> dict[str, float]:
    """Model name -> end (wall s) of the first stored window whose p95 breaches the rule's 250 ms: a breach that
    starts late in a window leaves too few breaching points there for its p95, and is judged a window later."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not aggregates.is_dir():
        return {}
    table = pq.read_table(aggregates, columns=["window_end_ms", "tags", "p95", "name"])
    table = table.filter(pc.and_(pc.equal(table["name"], "inference_latency"), pc.greater(table["p95"], 250)))
    ends: dict[str, float] = {}
    for end_ms, tags in zip(table["window_end_ms"].to_pylist(), table["tags"].to_pylist(), strict=True):
        name = json.loads(tags).get("model_name", "")
        ends[name] = min(ends.get(name, float("inf")), end_ms / 1000)
    return {model_name(i.model): ends[model_name(i.model)] for i in incidents if model_name(i.model) in ends}


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.live",
        description=__doc__.split("\n\n")[0],
        epilog=f"Needs: {install_hint(COMMAND_EXTRAS['benchmarks.live'])}",
    )
    parser.add_argument("--duration", type=float, default=300, help="load duration, s (default 300)")
    parser.add_argument("--rate", type=int, default=10_000, help="points per second (default 10000)")
    parser.add_argument("--series", type=int, default=5_000, help="series (default 5000)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--window", type=int, default=60, help="aggregation window, s (default 60)")
    parser.add_argument("--cycle", type=float, default=5, help="live.cycle_interval_s (default 5)")
    parser.add_argument("--breaches", type=int, default=4, help="series that breach, one after another (default 4)")
    args = parser.parse_args(argv)
    require("python -m benchmarks.live", *COMMAND_EXTRAS["benchmarks.live"])
    interval_s = args.series / args.rate  # each series gets one point per interval
    folder = Path(tempfile.mkdtemp(prefix="airis-bench-live-"))
    arrived: list[tuple[float, bytes]] = []

    def slack(request):
        arrived.append((time.time(), request.body))
        return slack_webhook(request)

    with Receiver(slack) as receiver:
        port = free_port()
        (folder / "config.yaml").write_text(CONFIG.format(port=port, window=args.window, cycle=args.cycle))
        env = {**os.environ, "PYTHONPATH": str(REPO), "AIRIS_BENCH_TOKEN": TOKEN,
               "AIRIS_BENCH_SLACK_URL": f"{receiver.url}/services/T0/B0/X"}  # fmt: skip
        log = open(folder / "serve.log", "wb")  # noqa: SIM115 (closed below)
        service = subprocess.Popen([sys.executable, "-m", "pipelines.serve", "--config", "config.yaml"],
                                   cwd=folder, env=env, stdout=log, stderr=log, start_new_session=True)  # fmt: skip
        wait_until_serving(f"http://127.0.0.1:{port}")
        spacing = args.duration / (args.breaches + 1)
        length_s = min(2 * args.window, 0.8 * spacing)  # two windows, or less in a short run
        incidents = rotating_incidents(args.duration, spacing, length_s, args.series, first_s=spacing / 4)
        # Each breach on another series, and at another phase of its window (spread over the window).
        incidents = [
            type(i)(i.model * 7919 % args.series, i.start_s + shift, i.end_s + shift)
            for k, i in enumerate(incidents)
            for shift in [args.window * ((k * 0.37) % 1.0)]
        ]
        load = Load(f"http://127.0.0.1:{port}", TOKEN, args.series, args.clients, interval_s, incidents)
        samples: list[tuple[float, float, float]] = []
        stop = threading.Event()

        def sample():
            while not stop.wait(5):
                samples.append((time.time(), *_cpu_and_rss(service.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        load.run(args.duration)
        time.sleep(args.window + 40)  # the last windows close and their notifications go out
        stop.set()
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(timeout=120)
        log.close()

    triggers = _first_triggers(arrived, {model_name(i.model) for i in incidents})
    first_breaching = _first_breaching_window_end(folder / "out" / "aggregates", incidents)
    delays, beyond = [], []
    for incident in incidents:
        name = model_name(incident.model)
        breach_at = load.started_at + incident.start_s
        if name in triggers:
            delays.append(triggers[name] - breach_at)
            if name in first_breaching:  # the rule could first be judged at that window's end + lateness (10 s)
                beyond.append(triggers[name] - (first_breaching[name] + 10))
    warm = [s for s in samples if s[0] - load.started_at >= min(60, args.duration / 5)]
    start_cpu = warm[0][1] if warm else 0.0
    start_rss = warm[0][2] if warm else float("nan")
    end_rss = samples[-1][2] if samples else float("nan")
    cpu = (samples[-1][1] - start_cpu) if warm else float("nan")
    span = (samples[-1][0] - warm[0][0]) if len(warm) > 1 else float("nan")
    rate = load.acked / args.duration
    goal_delay = args.window + 20
    print("AIRIS-MON live benchmark (loopback; gateway + runner + Slack receiver on this machine)")
    print(f"  load                {args.rate:,} points/s asked, {rate:,.0f} points/s acknowledged over {args.series:,}"
          f" series for {args.duration:g} s ({load.refused:,} points refused)")  # fmt: skip
    print(f"  breaches            {len(incidents)} injected, {len(delays)} notified")
    if delays:
        p99 = _percentile(delays, 0.99)
        print(f"  breach -> Slack     p50 {statistics.median(delays):.1f} s, p99 {p99:.1f} s, max {max(delays):.1f} s"
              f" (goal p99 <= {goal_delay} s: {p99 / goal_delay:.2f}x of it)")  # fmt: skip
    if beyond:
        print(f"  beyond judgeable    p50 {statistics.median(beyond):.1f} s, p99 {_percentile(beyond, 0.99):.1f} s"
              f" (after the first breaching window's end + lateness: cycle wait, processing, delivery)")  # fmt: skip
    print(f"  CPU                 {cpu:.0f} s over {span:.0f} s after warm-up ({cpu / span / os.cpu_count():.0%} of"
          f" {os.cpu_count()} cores; runner + gateway)")  # fmt: skip
    print(f"  RSS                 {start_rss:.0f} MB after warm-up, {end_rss:.0f} MB at the end"
          f" ({end_rss / start_rss:.2f}x; goal flat within 10 %)")  # fmt: skip
    print(f"  files in            {folder}")
    return 0


if __name__ == "__main__":
    with one_line_on_missing_extra("python -m benchmarks.live"):
        sys.exit(run())
