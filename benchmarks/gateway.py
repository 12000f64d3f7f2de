"""Benchmark of the ingestion gateway: sustained metrics/s and latency with durability on, next to a
minimal FastAPI + fsync server measured in the same run; start-up time; peak RSS; acknowledged = stored.

::

    python -m benchmarks.gateway                  # 1 and 100 metrics/request x 1, 8, 32 clients, 3 repeats of 10 s
    python -m benchmarks.gateway --check          # the same; exit status 1 if a target is missed
    python -m benchmarks.gateway --smoke          # CI: 100 x 8 and 1 x 1, one 2 s repeat; fails on errors only

Processes, all on 127.0.0.1 and all with this interpreter:

- the gateway under test: ``python -m pipelines.gateway --config CFG``, one
  process, a config with one token, its spool in a fresh temporary folder
  and every other setting at its default (rate limit, burst, body size,
  segment rotation: the load must pass a default config);
- the baseline: :mod:`benchmarks.gateway_baseline`, one FastAPI route that
  appends the body to a file and fsyncs it before answering 202, served by
  uvicorn with the gateway's uvicorn settings;
- the load: :mod:`benchmarks.gateway_load` in a process of its own, N
  keep-alive connections sending valid metrics payloads back to back.

Each (metrics/request, clients) cell runs ``--repeats`` times; rounds
alternate gateway, baseline, gateway, baseline... and each round starts a
fresh server on a fresh spool, loads it for ``--warmup`` + ``--seconds``,
reads the server's peak RSS (``VmHWM``) and CPU time, stops it (SIGTERM) and
counts the metrics stored (every ``*.jsonl`` file under the spool; a line is
a payload, or an envelope whose ``payloads`` are) against those
acknowledged with a 2xx. The table quotes medians over the repeats.

Targets (printed as PASS/FAIL): at 100 metrics/request and 8 clients, the
gateway sustains >= 25,000 metrics/s with p99 < 50 ms and >= 0.8x the
baseline's metrics/s; no answer other than 2xx; every acknowledged metric
stored, none twice; start-up (spawn -> first 200 from ``GET /healthz``,
median) < 1.5 s.

Exit status: 1 when a round had errors (a non-2xx answer, a request with no
answer, an acknowledged record missing or stored twice, a server that
crashed or did not start), in every mode; 1 when a speed, latency or
start-up target is missed only with ``--check`` (``--smoke`` never judges
speed: CI machines are noisy).
"""

from __future__ import annotations

import argparse
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from airis_mon.extras import COMMAND_EXTRAS, install_hint, one_line_on_missing_extra, require
from benchmarks.gateway_baseline import uvicorn_options_in_source
from benchmarks.gateway_load import TOKEN_ENV, parse_request_id
from benchmarks.live_load import free_port

REPO = Path(__file__).resolve().parents[1]
TOKEN = "gateway-benchmark-token-0123456789abcdef"
TARGET_METRICS_PER_S = 25_000
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.8
TARGET_STARTUP_S = 1.5
TARGET_CELL = (100, 8)
SMOKE_CELLS = [(100, 8), (1, 1)]
SMOKE_BUDGET_S = 60.0  # --smoke fails when it has not finished by then

# One token; everything else at the gateway's defaults (no rate, burst or body-size override).
CONFIG = """\
integrations:
  - name: api
    type: gateway
    spool: {spool}
    port: {port}
    tokens: [{{name: bench, token: {{env: {token_env}}}}}]
"""

_IMPORT_PROBE = """\
import json, sys, time
started = time.perf_counter()
import pipelines.gateway, sources.gateway.app, uvicorn
seconds = time.perf_counter() - started
sys.stderr.write("-- end of the timed import\\n")
from sources.gateway.config import GatewayConfig
fields = GatewayConfig.model_fields
keys = ("rate_limit_per_s", "rate_limit_burst", "max_body_bytes", "max_segment_bytes", "max_segment_age_s",
        "dedup_window_s", "dedup_max_keys")
defaults = {k: fields[k].default for k in keys if k in fields}
from benchmarks.gateway_baseline import gateway_uvicorn_options
options, source, unmirrored = gateway_uvicorn_options()
print(json.dumps({"import_s": seconds, "defaults": defaults, "uvicorn": [options, source, unmirrored]}))
"""


def _remaining(args) -> float:
    """Seconds left before ``args.deadline`` (the smoke run's bound; infinite otherwise)."""
    return args.deadline - time.perf_counter()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), TOKEN_ENV: TOKEN}


def _filesystem(path: Path) -> str:
    """``fstype device (mount point)`` of the mount holding ``path``."""
    best = ("?", "?", "/")
    target = str(path.resolve())
    for line in Path("/proc/self/mounts").read_text().splitlines():
        device, mount, fstype = line.split()[:3]
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[2]):
            best = (fstype, device, mount)
    return f"{best[0]} on {best[1]} (mounted at {best[2]})"


def _proc_status(pid: int, key: str) -> float:
    """A ``kB`` line of /proc/PID/status, in MB (nan when gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class ServerFailedError(Exception):
    """A server that exited early or did not answer ``/healthz`` in time."""


class _Server:
    """A server process on loopback: spawned, timed to its first ``GET /healthz`` 200, stopped by SIGTERM."""

    def __init__(self, kind: str, folder: Path, uvicorn_options: dict, timeout_s: float = 60.0):
        self.kind, self.folder = kind, folder
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "gateway":
            self.store = folder / "spool"
            config = folder / "gateway.yaml"
            config.write_text(CONFIG.format(spool=self.store, port=self.port, token_env=TOKEN_ENV))
            argv = [sys.executable, "-m", "pipelines.gateway", "--config", str(config)]
        else:
            self.store = folder / "baseline.jsonl"
            argv = [sys.executable, "-m", "benchmarks.gateway_baseline", "--port", str(self.port),
                    "--file", str(self.store), "--uvicorn-options", json.dumps(uvicorn_options)]  # fmt: skip
        self.log_path = folder / f"{kind}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 (the child holds it; closed with the process)
        self.spawned = time.perf_counter()
        self.process = subprocess.Popen(argv, cwd=REPO, env=_env(), stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.startup_s = self._until_healthy(timeout_s)

    def _until_healthy(self, timeout_s: float) -> float:
        deadline = self.spawned + timeout_s
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise ServerFailedError(f"{self.kind} exited with {self.process.returncode}: {self.tail()}")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return time.perf_counter() - self.spawned
            except OSError:
                time.sleep(0.01)
            finally:
                connection.close()
        self.kill()
        raise ServerFailedError(f"{self.kind} did not answer /healthz within {timeout_s:g} s: {self.tail()}")

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:].strip() or "(no output)"
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.process.poll() is None

    def peak_rss_mb(self) -> float:
        """VmHWM of the server and any children it has."""
        pid = self.process.pid
        return sum(_proc_status(p, "VmHWM") for p in [pid, *_children(pid)])

    def cpu_s(self) -> float:
        pid = self.process.pid
        return sum(_cpu_seconds(p) for p in [pid, *_children(pid)])

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM, wait; True if it exited by itself (status 0 or -SIGTERM, as uvicorn re-raises it)."""
        if not self.alive():
            return False
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return False
        return code in (0, -signal.SIGTERM)

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@dataclass
class Stored:
    """What a spool (or the baseline's file) holds, by request id."""

    metrics_by_id: dict[tuple[int, int], int] = field(default_factory=dict)
    copies: Counter = field(default_factory=Counter)
    metrics: int = 0
    records: int = 0
    unreadable_lines: int = 0  # not JSON, or JSON without a metrics list
    foreign_records: int = 0  # a metrics payload without a benchmark request id
    files: int = 0
    other_files: int = 0  # not *.jsonl: not read


def _records(line: bytes):
    document = json.loads(line)
    if isinstance(document, dict) and isinstance(document.get("payloads"), list):
        yield from document["payloads"]  # an envelope: {"key": ..., "ack": ..., "payloads": [...]}
    else:
        yield document  # a bare payload


def count_stored(path: Path) -> Stored:
    """Metrics in a spool folder (every ``*.jsonl`` under it but ``config/``) or in one JSON-lines file."""
    stored = Stored()
    if path.is_dir():
        files = [p for p in sorted(path.rglob("*")) if p.is_file() and "config" not in p.relative_to(path).parts]
    else:
        files = [path] if path.exists() else []
    for file in files:
        if not file.name.endswith(".jsonl"):
            stored.other_files += 1
            continue
        stored.files += 1
        with open(file, "rb") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    records = list(_records(line))
                except ValueError:
                    stored.unreadable_lines += 1
                    continue
                for record in records:
                    metrics = record.get("metrics") if isinstance(record, dict) else None
                    if not isinstance(metrics, list):
                        stored.unreadable_lines += 1
                        continue
                    stored.records += 1
                    stored.metrics += len(metrics)
                    key = parse_request_id(str(record.get("source", "")))
                    if key is None:
                        stored.foreign_records += 1
                        continue
                    stored.copies[key] += 1
                    stored.metrics_by_id[key] = len(metrics)
    return stored


def _durability(load: dict, stored: Stored) -> dict:
    """Acknowledged (2xx) requests against the stored ones."""
    unacknowledged = {
        (int(client), s) for client, runs in load["unacknowledged"].items() for a, b in runs for s in range(a, b + 1)
    }
    acknowledged = {(int(c), s) for c, sent in load["sent"].items() for s in range(sent)} - unacknowledged
    lost = len(acknowledged - stored.copies.keys())
    duplicated = sum(1 for n in stored.copies.values() if n > 1)
    unasked = len(stored.copies.keys() - acknowledged)  # stored though not acknowledged (no answer or an error)
    ok = (lost == 0 and duplicated == 0 and unasked == 0 and stored.unreadable_lines == 0
          and stored.foreign_records == 0 and stored.metrics == load["acknowledged_metrics"])  # fmt: skip
    return {"acknowledged_metrics": load["acknowledged_metrics"], "stored_metrics": stored.metrics,
            "acknowledged_requests": len(acknowledged), "stored_records": stored.records, "lost_requests": lost,
            "duplicated_requests": duplicated, "stored_unacknowledged": unasked,
            "unreadable_lines": stored.unreadable_lines, "foreign_records": stored.foreign_records,
            "files": stored.files, "other_files": stored.other_files, "ok": ok}  # fmt: skip


def _round(kind: str, metrics: int, clients: int, args, folder: Path, uvicorn_options: dict) -> dict:
    """One server, one load, one durability check."""
    result: dict = {"kind": kind, "metrics_per_request": metrics, "clients": clients, "problems": []}
    try:
        server = _Server(kind, folder, uvicorn_options, min(60.0, _remaining(args)))
    except ServerFailedError as error:
        result["problems"].append(str(error))
        return result
    result["startup_s"] = server.startup_s
    cpu_before = server.cpu_s()
    command = [sys.executable, "-m", "benchmarks.gateway_load", "--port", str(server.port), "--metrics", str(metrics),
               "--clients", str(clients), "--seconds", str(args.seconds), "--warmup", str(args.warmup)]  # fmt: skip
    try:
        done = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True,
                              timeout=min(args.warmup + args.seconds + 90, _remaining(args) + 5))  # fmt: skip
        if done.returncode != 0:
            result["problems"].append(f"load generator exited with {done.returncode}: {done.stderr[-1500:]}")
        else:
            result["load"] = json.loads(done.stdout)
    except subprocess.TimeoutExpired:
        result["problems"].append("load generator did not finish in time")
    result["cpu_s"] = server.cpu_s() - cpu_before
    result["peak_rss_mb"] = server.peak_rss_mb()
    if not server.alive():
        result["problems"].append(f"{kind} crashed under load: {server.tail()}")
    elif not server.stop():
        result["problems"].append(f"{kind} did not stop cleanly on SIGTERM: {server.tail()}")
    if "load" in result:
        load = result["load"]
        result["durability"] = _durability(load, count_stored(server.store))
        if not result["durability"]["ok"]:
            result["problems"].append(f"stored != acknowledged: {result['durability']}")
        bad = {s: n for s, n in load["all_statuses"].items() if not 200 <= int(s) < 300}
        if bad:
            result["problems"].append(f"non-2xx answers: {bad}")
        if load["errors"]:
            result["problems"].append(f"requests without an answer: {load['errors']}")
    shutil.rmtree(folder, ignore_errors=True)
    return result


def _startups(count: int, root: Path, uvicorn_options: dict, args) -> dict[str, list[float]]:
    """``count`` dedicated start-ups of each server, alternating; each stopped right after it answered."""
    times: dict[str, list[float]] = {"gateway": [], "baseline": []}
    for n in range(count):
        for kind in ("gateway", "baseline"):
            folder = root / f"start-{kind}-{n}"
            # ServerFailedError propagates: a server that cannot start fails the run
            server = _Server(kind, folder, uvicorn_options, min(60.0, _remaining(args)))
            times[kind].append(server.startup_s)
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)
    return times


def _import_profile() -> dict:
    """Wall time of ``import pipelines.gateway, uvicorn``, the heaviest top-level packages and who imports
    them (``-X importtime``), and the gateway's default limits."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", _IMPORT_PROBE], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr[-1500:]}
    profile = json.loads(done.stdout.strip().splitlines()[-1])
    entries = []  # (depth, cumulative s, module), in importtime's order (children before their parent)
    for line in done.stderr.splitlines():
        if line == "-- end of the timed import":
            break
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        entries.append((len(name) - len(name.lstrip()), int(cumulative) / 1e6, name.strip()))
    start = next((i + 1 for i, e in enumerate(entries) if e[2] == "site"), 0)
    entries = entries[start:]  # the interpreter's own start-up (site) is not the gateway's
    heaviest = []
    roots = [(i, e) for i, e in enumerate(entries) if "." not in e[2] and e[2] != "pipelines"]
    for index, (depth, seconds, name) in sorted(roots, key=lambda item: -item[1][1])[:4]:
        chain, level = [], depth
        for later_depth, _, later_name in entries[index + 1 :]:
            if later_depth < level:
                chain.append(later_name)
                level = later_depth
        heaviest.append({"package": name, "seconds": seconds, "imported_by": chain[:4]})
    profile["heaviest"] = heaviest
    return profile


def _interpreter_start_s() -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def _cell_figures(rounds: list[dict]) -> dict:
    loads = [r["load"] for r in rounds if "load" in r]
    statuses: Counter = Counter()
    for load in loads:
        statuses.update({s: n for s, n in load["all_statuses"].items() if not 200 <= int(s) < 300})
        statuses.update(load["errors"])
    return {
        "rounds": len(rounds),
        "metrics_per_s": _median([x["metrics_per_s"] for x in loads]),
        "requests_per_s": _median([x["requests_per_s"] for x in loads]),
        "p50_ms": _median([x["p50_ms"] for x in loads]),
        "p99_ms": _median([x["p99_ms"] for x in loads]),
        "peak_rss_mb": max([r.get("peak_rss_mb", float("nan")) for r in rounds], default=float("nan")),
        "server_cores": _median([r["cpu_s"] / x["loadgen_wall_s"] for r in rounds if "load" in r for x in [r["load"]]]),
        "loadgen_cores": _median([x["loadgen_cpu_s"] / x["loadgen_wall_s"] for x in loads]),
        "not_2xx": dict(statuses),
        "acknowledged": sum(r["durability"]["acknowledged_metrics"] for r in rounds if "durability" in r),
        "stored": sum(r["durability"]["stored_metrics"] for r in rounds if "durability" in r),
        "problems": [p for r in rounds for p in r["problems"]],
    }


def _fmt(value: float, spec: str) -> str:
    return "-" if value != value else format(value, spec)


def _round_line(result: dict) -> str:
    head = f"  {result['kind']:<8} {result['metrics_per_request']:>3} metrics x {result['clients']:>2} clients: "
    if "load" not in result:
        return head + "; ".join(result["problems"])
    load, durable = result["load"], result.get("durability", {})
    bad = {s: n for s, n in load["all_statuses"].items() if not 200 <= int(s) < 300}
    return (head + f"{load['metrics_per_s']:>9,.0f} metrics/s {load['requests_per_s']:>7,.0f} req/s "
            f"p50 {load['p50_ms']:6.1f} ms p99 {load['p99_ms']:6.1f} ms, RSS peak {result['peak_rss_mb']:5.0f} MB, "
            f"start {result['startup_s']:.2f} s, acked/stored {durable.get('acknowledged_metrics', 0):,}/"
            f"{durable.get('stored_metrics', 0):,}" + (f", NOT 2xx {bad}" if bad else "")
            + (f", no answer {load['errors']}" if load["errors"] else ""))  # fmt: skip


def _statuses(counts: dict) -> str:
    return ", ".join(f"{status}: {n:,}" for status, n in counts.items()) or "none"


def _table(cells: list[tuple[int, int]], figures: dict) -> list[str]:
    header = (f"{'metrics/req':>11} {'clients':>7} | {'gateway metrics/s':>17} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'RSS MB':>6} {'cores':>5} | {'baseline metrics/s':>18} {'p50 ms':>7} {'p99 ms':>7} {'cores':>5} "
              f"| {'ratio':>5} | {'load cores':>10} | not 2xx (gateway; baseline)")  # fmt: skip
    lines = [header, "-" * len(header)]
    for cell in cells:
        g, b = figures[("gateway", cell)], figures[("baseline", cell)]
        ratio = g["metrics_per_s"] / b["metrics_per_s"] if b["metrics_per_s"] else float("nan")
        errors = f"{_statuses(g['not_2xx'])}; {_statuses(b['not_2xx'])}"
        lines.append(
            f"{cell[0]:>11} {cell[1]:>7} | {_fmt(g['metrics_per_s'], ',.0f'):>17} {_fmt(g['p50_ms'], '.1f'):>7} "
            f"{_fmt(g['p99_ms'], '.1f'):>7} {_fmt(g['peak_rss_mb'], '.0f'):>6} {_fmt(g['server_cores'], '.2f'):>5} | "
            f"{_fmt(b['metrics_per_s'], ',.0f'):>18} {_fmt(b['p50_ms'], '.1f'):>7} {_fmt(b['p99_ms'], '.1f'):>7} "
            f"{_fmt(b['server_cores'], '.2f'):>5} | {_fmt(ratio, '.2f'):>5} | "
            f"{_fmt(max(g['loadgen_cores'], b['loadgen_cores']), '.2f'):>10} | {errors}"
        )
    return lines


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gateway",
        description=__doc__.split("\n\n")[0],
        epilog=f"Needs: {install_hint(COMMAND_EXTRAS['benchmarks.gateway'])}",
    )
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per round (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before them (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per cell and server (default 3)")
    parser.add_argument("--metrics", default="1,100", help="metrics per request, comma-separated (default 1,100)")
    parser.add_argument("--clients", default="1,8,32", help="connections, comma-separated (default 1,8,32)")
    parser.add_argument("--starts", type=int, default=5, help="dedicated start-ups of each server (default 5)")
    parser.add_argument("--smoke", action="store_true", help="CI: 100x8 and 1x1, 1 repeat of 2 s; errors only")
    parser.add_argument("--check", action="store_true", help="exit status 1 when a target is missed")
    parser.add_argument("--json", action="store_true", help="also print every round as one JSON object")
    args = parser.parse_args(argv)
    require("python -m benchmarks.gateway", *COMMAND_EXTRAS["benchmarks.gateway"])
    if args.smoke:
        args.seconds, args.warmup, args.repeats, args.starts = 2.0, 0.5, 1, 1
        cells = SMOKE_CELLS
    else:
        cells = [(m, c) for m in map(int, args.metrics.split(",")) for c in map(int, args.clients.split(","))]
    began = time.perf_counter()
    args.deadline = began + SMOKE_BUDGET_S if args.smoke else float("inf")
    root = Path(tempfile.mkdtemp(prefix="airis-bench-gateway-"))
    load_before = os.getloadavg()
    imports = _import_profile()
    if "uvicorn" in imports:
        options, options_source, unmirrored = imports["uvicorn"]
    else:  # the gateway does not import: read its uvicorn.run(...) call
        options, unmirrored = uvicorn_options_in_source()
        options_source = "the uvicorn.run(...) call in pipelines/gateway.py"
    interpreter_s = _interpreter_start_s()
    problems: list[str] = []
    try:
        starts = _startups(args.starts, root, options, args)
    except ServerFailedError as error:
        starts = {"gateway": [], "baseline": []}
        problems.append(str(error))
    rounds: list[dict] = []
    plan = [(r, m, c, k) for r in range(args.repeats) for m, c in cells for k in ("gateway", "baseline")]
    for repeat, metrics, clients, kind in plan:
        if _remaining(args) <= 0:
            problems.append(f"{len(plan) - len(rounds)} rounds skipped: the smoke run's {SMOKE_BUDGET_S:g} s are up")
            break
        folder = root / f"{kind}-{metrics}x{clients}-{repeat}"
        rounds.append({**_round(kind, metrics, clients, args, folder, options), "repeat": repeat + 1})
        _log(_round_line(rounds[-1]))
    shutil.rmtree(root, ignore_errors=True)
    by_cell: dict[tuple, list[dict]] = {}
    for r in rounds:
        by_cell.setdefault((r["kind"], (r["metrics_per_request"], r["clients"])), []).append(r)
    figures = {(kind, cell): _cell_figures(by_cell.get((kind, cell), [])) for kind in ("gateway", "baseline")
               for cell in cells}  # fmt: skip
    problems += [f"{r['kind']} {r['metrics_per_request']}x{r['clients']} round {r['repeat']}: {p}"
                 for r in rounds for p in r["problems"]]  # fmt: skip
    round_starts = {k: [r["startup_s"] for r in rounds if r["kind"] == k and "startup_s" in r] for k in starts}
    gateway_starts = starts["gateway"] + round_starts["gateway"]
    baseline_starts = starts["baseline"] + round_starts["baseline"]
    startup = _median(gateway_starts)

    mode = "smoke" if args.smoke else "full"
    print(f"AIRIS-MON gateway benchmark ({mode}: {args.repeats} repeat(s) of {args.warmup:g} s warm-up + "
          f"{args.seconds:g} s measured per cell and server, medians over repeats; loopback)")  # fmt: skip
    print(f"  machine       {os.cpu_count()} cores, Python {platform.python_version()} ({platform.machine()}), "
          f"load average {load_before[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")  # fmt: skip
    print(f"  spool         fresh folder per round under {root.parent} ({_filesystem(root.parent)}); durability on: "
          f"gateway fsync before 2xx; baseline one write + fsync per request")  # fmt: skip
    print(f"  uvicorn       {importlib.metadata.version('uvicorn')}, both servers {options} (from {options_source})"
          + (f" (NOT mirrored, not literals: {unmirrored})" if unmirrored else "")
          + f"; uvloop {'installed' if importlib.util.find_spec('uvloop') else 'not installed'}, "
          f"httptools {'installed' if importlib.util.find_spec('httptools') else 'not installed'}")  # fmt: skip
    defaults = imports.get("defaults", {})
    print(f"  gateway       python -m pipelines.gateway, one process, one token, other settings default: {defaults}")
    print("  load          python -m benchmarks.gateway_load, one process: closed-loop keep-alive HTTP/1.1 "
          "connections, valid payloads (202)")  # fmt: skip
    print()
    for line in _table(cells, figures):
        print(line)
    print("metrics/s: metrics acknowledged (2xx) per measured second; p50/p99: per-request latency, write -> last")
    print("byte of the answer; RSS MB: peak (VmHWM) over the rounds; cores: CPU s of the server (or of the load")
    print("generator) per wall second of the load; ratio: gateway / baseline metrics/s")
    print()
    print(f"start-up (spawn -> first 200 from GET /healthz): gateway median {_fmt(startup, '.2f')} s over "
          f"{len(gateway_starts)} starts ({_fmt(min(gateway_starts, default=float('nan')), '.2f')}-"
          f"{_fmt(max(gateway_starts, default=float('nan')), '.2f')} s); baseline median "
          f"{_fmt(_median(baseline_starts), '.2f')} s; bare interpreter {interpreter_s:.2f} s")  # fmt: skip
    if "import_s" in imports:
        heavy = ", ".join(f"{h['package']} {h['seconds']:.2f} s" + (f" (via {' <- '.join(h['imported_by'])})"
                          if h["imported_by"] else "") for h in imports["heaviest"])  # fmt: skip
        print(f"  import pipelines.gateway + uvicorn: {imports['import_s']:.2f} s; heaviest: {heavy}")
    else:
        print(f"  import probe failed: {imports.get('error')}")
    acknowledged = sum(f["acknowledged"] for k, f in figures.items() if k[0] == "gateway")
    stored = sum(f["stored"] for k, f in figures.items() if k[0] == "gateway")
    durable = all(r.get("durability", {}).get("ok", False) for r in rounds)
    print(f"durability: gateway acknowledged {acknowledged:,} metrics, its spools hold {stored:,}; "
          f"every round of both servers acknowledged = stored, none twice: {'yes' if durable else 'NO'}")  # fmt: skip

    target = figures.get(("gateway", TARGET_CELL))
    base = figures.get(("baseline", TARGET_CELL))
    gateway_errors = sum(sum(f["not_2xx"].values()) for k, f in figures.items() if k[0] == "gateway")
    verdicts: list[tuple[str, bool | None]] = []
    label = f"{TARGET_CELL[0]} metrics/request x {TARGET_CELL[1]} clients"
    if target:
        ratio = target["metrics_per_s"] / base["metrics_per_s"] if base["metrics_per_s"] else float("nan")
        verdicts += [
            (f"{label}: {_fmt(target['metrics_per_s'], ',.0f')} metrics/s >= {TARGET_METRICS_PER_S:,}",
             target["metrics_per_s"] >= TARGET_METRICS_PER_S),
            (f"{label}: p99 {_fmt(target['p99_ms'], '.1f')} ms < {TARGET_P99_MS:g} ms",
             target["p99_ms"] < TARGET_P99_MS),
            (f"{label}: {_fmt(ratio, '.2f')}x the baseline's metrics/s >= {TARGET_RATIO}", ratio >= TARGET_RATIO),
        ]  # fmt: skip
    else:
        verdicts.append((f"{label}: not measured in this run", None))
    verdicts += [
        (f"no answer other than 2xx from the gateway ({gateway_errors:,} others)", gateway_errors == 0),
        ("every acknowledged metric stored, none twice (both servers)", durable),
        (f"start-up median {_fmt(startup, '.2f')} s < {TARGET_STARTUP_S} s", startup < TARGET_STARTUP_S),
    ]
    print("targets:")
    for text, ok in verdicts:
        print(f"  {'n/a ' if ok is None else 'PASS' if ok else 'FAIL'}  {text}")
    if problems:
        print(f"errors ({len(problems)}; a run with errors fails):")
        for problem in problems[:8]:
            print(f"  - {problem[:600]}")
        if len(problems) > 8:
            print(f"  ... and {len(problems) - 8} more (every round is on stderr)")
    print(f"took {time.perf_counter() - began:.0f} s")
    if args.json:
        print(json.dumps({"rounds": rounds, "startups": starts, "imports": imports, "uvicorn_options": options}))
    if problems or not durable:
        return 1
    if args.check and any(ok is False for _, ok in verdicts):
        return 1
    return 0


if __name__ == "__main__":
    with one_line_on_missing_extra("python -m benchmarks.gateway"):
        sys.exit(run())
