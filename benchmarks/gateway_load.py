"""Closed-loop HTTP load for ``python -m benchmarks.gateway``, run in a process of its own.

::

    AIRIS_BENCH_GATEWAY_TOKEN=... python -m benchmarks.gateway_load --port 8080 --metrics 100 --clients 8 \\
        --seconds 10 --warmup 2

``--clients`` keep-alive HTTP/1.1 connections to 127.0.0.1 (asyncio streams,
one event loop), each sending ``POST /api/v1/metrics/ingest`` back to back:
the next request leaves when the previous answer has been read (status line,
headers, ``Content-Length`` bytes of body). Requests are pre-encoded; per
request only the envelope's ``timestamp`` (now, epoch ms, 13 digits) and a
request id in ``source`` (``bench-cCCC-NNNNNNNNN``, fixed width, so the
pre-computed ``Content-Length`` stays right) are spliced in. Each client
cycles through :data:`VARIANTS` bodies of ``--metrics`` metrics with distinct
names, tags and values; the series of one client differ from another's.

Requests that complete during the ``--seconds`` after ``--warmup`` are
measured (latency from the write to the last byte of the answer). When the
time is up, every client finishes the request it has in flight and stops.
Printed on stdout: one JSON object (see :func:`run`), including every
request id that did not get a 2xx, so the caller can check the server's
storage against what was acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence

__all__ = ["TOKEN_ENV", "VARIANTS", "build_variants", "parse_request_id", "request_id", "run"]

TOKEN_ENV = "AIRIS_BENCH_GATEWAY_TOKEN"
VARIANTS = 32  # distinct bodies per client
PATH = "/api/v1/metrics/ingest"
_NAMES = [
    ("inference_latency", "ms", 5.0, 900.0),
    ("gpu_utilization", "percent", 0.0, 100.0),
    ("request_count", "count", 0.0, 5000.0),
    ("error_rate", "ratio", 0.0, 0.2),
    ("tokens_per_second", "tokens/s", 10.0, 4000.0),
    ("memory_used", "bytes", 1e8, 8e10),
    ("queue_depth", "count", 0.0, 300.0),
]
_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"]


def request_id(client: int, sequence: int) -> str:
    """The ``source`` of request ``sequence`` of ``client`` (fixed width)."""
    return f"bench-c{client:03d}-{sequence:09d}"


def parse_request_id(source: str) -> tuple[int, int] | None:
    """``(client, sequence)`` of a :func:`request_id`, else None."""
    if len(source) == 20 and source.startswith("bench-c") and source[10] == "-":
        try:
            return int(source[7:10]), int(source[11:])
        except ValueError:
            return None
    return None


def _metrics(client: int, variant: int, count: int, rng: random.Random) -> list[dict]:
    metrics = []
    for j in range(count):
        name, unit, low, high = _NAMES[(j + variant) % len(_NAMES)]
        tags = {"model_name": f"m{client:03d}{j:03d}", "region": _REGIONS[j % len(_REGIONS)],
                "endpoint": f"ep-{(j * 7 + variant) % 13}", "version": f"v{1 + j % 3}"}  # fmt: skip
        metrics.append({"name": name, "value": round(rng.uniform(low, high), 3), "unit": unit, "tags": tags})
    return metrics


def build_variants(client: int, metrics: int, port: int, token: str, variants: int = VARIANTS):
    """``variants`` requests of ``client`` as ``(head, middle, tail)`` byte strings: a request is
    ``head + timestamp(13 digits) + middle + sequence(9 digits) + tail``."""
    rng = random.Random(client * 1_000_003 + metrics)
    built = []
    for variant in range(variants):
        template = {"timestamp": 1_000_000_000_000, "source": request_id(client, 0),
                    "metrics": _metrics(client, variant, metrics, rng)}  # fmt: skip
        body = json.dumps(template, separators=(",", ":")).encode()
        before_ts, _, rest = body.partition(b"1000000000000")
        before_seq, _, tail = rest.partition(b"000000000")
        headers = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        built.append((headers + before_ts, before_seq, tail))
    return built


class _ProtocolError(Exception):
    """An answer this client cannot read."""


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status code of the next answer, and whether the server closes the connection after it."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 ") and not head.startswith(b"HTTP/1.0 "):
        raise _ProtocolError("no status line")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        raise _ProtocolError("no Content-Length")
    end = lower.index(b"\r\n", at + 2)
    length = int(lower[at + 17 : end])
    if length:
        await reader.readexactly(length)
    return status, b"\r\nconnection: close" in lower


class _Client:
    def __init__(self, number: int, variants: list, metrics: int):
        self.number, self.variants, self.metrics = number, variants, metrics
        self.sent = 0  # requests written (sequence numbers 0 .. sent-1)
        self.unacknowledged: list[list[int]] = []  # [first, last] runs of sequences without a 2xx (or any answer)
        self.latencies: list[float] = []  # s, measured requests
        self.statuses: Counter = Counter()  # measured requests, by status
        self.all_statuses: Counter = Counter()  # every request, warm-up included
        self.errors: Counter = Counter()  # requests with no answer, by exception
        self.acknowledged_metrics = 0  # every request, warm-up included
        self.measured_metrics = 0

    def _unacknowledged(self, sequence: int) -> None:
        if self.unacknowledged and self.unacknowledged[-1][1] == sequence - 1:
            self.unacknowledged[-1][1] = sequence
        else:
            self.unacknowledged.append([sequence, sequence])

    async def run(self, port: int, measure_from: float, stop_at: float) -> None:
        clock, wall, variants = time.perf_counter, time.time, self.variants
        reader = writer = None
        count = len(variants)
        while clock() < stop_at:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError as error:
                    self.errors[f"connect: {type(error).__name__}"] += 1
                    await asyncio.sleep(0.05)
                    continue
            sequence = self.sent
            head, middle, tail = variants[sequence % count]
            self.sent += 1
            started = clock()
            try:
                writer.write(b"%b%013d%b%09d%b" % (head, int(wall() * 1000), middle, sequence, tail))
                status, closing = await _answer(reader)
            except (OSError, EOFError, ValueError, _ProtocolError, asyncio.IncompleteReadError) as error:
                self.errors[type(error).__name__] += 1
                self._unacknowledged(sequence)
                writer.close()
                writer = None
                continue
            done = clock()
            ok = 200 <= status < 300
            self.all_statuses[status] += 1
            if ok:
                self.acknowledged_metrics += self.metrics
            else:
                self._unacknowledged(sequence)
            if measure_from <= done <= stop_at:
                self.latencies.append(done - started)
                self.statuses[status] += 1
                if ok:
                    self.measured_metrics += self.metrics
            if closing:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list (nan if empty)."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _load(port: int, token: str, metrics: int, clients: int, seconds: float, warmup: float) -> dict:
    workers = [_Client(c, build_variants(c, metrics, port, token), metrics) for c in range(clients)]
    cpu_before = os.times()
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds
    tasks = [asyncio.ensure_future(w.run(port, measure_from, stop_at)) for w in workers]
    done, pending = await asyncio.wait(tasks, timeout=warmup + seconds + 30)
    for task in pending:  # an answer that never came: the server is stuck
        task.cancel()
    for task in done:
        if task.exception() is not None:
            raise task.exception()
    cpu_after = os.times()
    latencies = sorted(x for w in workers for x in w.latencies)
    measured = sum(w.measured_metrics for w in workers)
    requests = len(latencies)
    statuses, all_statuses, errors = Counter(), Counter(), Counter()
    for w in workers:
        statuses.update(w.statuses)
        all_statuses.update(w.all_statuses)
        errors.update(w.errors)
    errors.update({"no answer in time (cancelled)": len(pending)} if pending else {})
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    return {
        "metrics_per_request": metrics,
        "clients": clients,
        "measured_s": seconds,
        "requests": requests,
        "requests_per_s": requests / seconds,
        "metrics_per_s": measured / seconds,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else float("nan"),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "all_statuses": {str(k): v for k, v in sorted(all_statuses.items())},
        "errors": dict(errors),
        "acknowledged_metrics": sum(w.acknowledged_metrics for w in workers),
        "sent": {str(w.number): w.sent for w in workers},
        "unacknowledged": {str(w.number): w.unacknowledged for w in workers if w.unacknowledged},
        "loadgen_cpu_s": cpu,
        "loadgen_wall_s": time.perf_counter() - started,
    }


def run(argv: Sequence[str] | None = None) -> int:
    """Run the load; print one JSON object: ``metrics_per_s``, ``requests_per_s``, ``p50_ms``, ``p99_ms``,
    ``statuses`` (measured requests), ``all_statuses`` and ``acknowledged_metrics`` (warm-up included),
    ``errors`` (no answer), per client the requests ``sent`` and the ``unacknowledged`` runs of
    sequences (``[first, last]``), ``loadgen_cpu_s``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metrics", type=int, default=100, help="metrics per request (default 100)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds first (default 2)")
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "")
    result = asyncio.run(_load(args.port, token, args.metrics, args.clients, args.seconds, args.warmup))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(run())
