"""Fetching a past range of CloudWatch data as chunk files (the first half of ``python -m pipelines.backfill``).

Each chunk of :func:`sources.cloudwatch.planner.plan_chunks` is fetched with the shared retries, converted in
bulk to an Arrow table of raw points and written atomically to ``FOLDER/chunk-START-END-PERIOD.parquet``; a
chunk file that exists is not fetched again, so an interrupted backfill resumes where it stopped. Needs the
``aws`` extra (boto3).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from airis_mon.errors import PermanentError, TransientError
from airis_mon.files import write_atomically
from airis_mon.retry import Attempt, Outcome, RetryConfig, with_retries
from airis_mon.timeutil import ms_to_iso
from sources.cloudwatch.client import CloudWatchClient
from sources.cloudwatch.config import CloudWatchConfig
from sources.cloudwatch.planner import MAX_QUERIES_PER_CALL, Chunk, plan_chunks
from sources.cloudwatch.poller import CloudWatchPoller

__all__ = ["chunk_path", "fetch_chunks"]

RETRY = RetryConfig(max_attempts=5, initial_backoff_s=1.0, max_backoff_s=30.0, max_total_s=300.0)


def chunk_path(folder: Path, chunk: Chunk) -> Path:
    return folder / f"chunk-{chunk.start_s}-{chunk.end_s}-{chunk.period_s}.parquet"


def _write_chunk(path: Path, table: pa.Table) -> None:
    # Same table -> same bytes (pyarrow writes no time stamp), so re-fetching a chunk changes nothing downstream.
    # Dictionary columns are stored as Parquet dictionary pages; without the Arrow schema, readers get strings.
    write_atomically(path, lambda temporary: pq.write_table(table, temporary, compression="zstd", store_schema=False))


class _Progress:
    """``chunks 3/12 [=====>     ] 25%  ETA 0:41`` on a terminal, nothing otherwise."""

    def __init__(self, total: int, label: str, stream=sys.stderr):
        self.total, self.label, self.stream = total, label, stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()
        self.fetched = 0

    def update(self, done: int, fetched_now: bool) -> None:
        self.fetched += fetched_now
        if not self.enabled or not self.total:
            return
        share = done / self.total
        elapsed = time.monotonic() - self.started
        remaining = (elapsed / self.fetched) * (self.total - done) if self.fetched else 0.0
        bar = ("=" * int(share * 20)).ljust(20)
        eta = f"{int(remaining // 60)}:{int(remaining % 60):02d}"
        self.stream.write(f"\r{self.label} chunks {done}/{self.total} [{bar}] {share:4.0%}  ETA {eta} ")
        if done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def fetch_chunks(
    config: CloudWatchConfig,
    start_s: int,
    end_s: int,
    folder: Path,
    now_s: int | None = None,
    client: CloudWatchClient | None = None,
) -> list[Path]:
    """Fetch the chunks of [start_s, end_s) not fetched yet; return every chunk file, in time order.

    ``client``: the CloudWatch client to use (default: one built from ``config``).
    """
    poller = CloudWatchPoller(config, client)
    poller.setup()
    try:
        queries = poller.queries()
        per_call = min(max(1, len(queries)), MAX_QUERIES_PER_CALL)  # the client sends queries 500 per call
        chunks = plan_chunks(start_s, end_s, int(now_s if now_s is not None else time.time()), per_call)
        progress = _Progress(len(chunks), config.name)
        paths = []
        for done, chunk in enumerate(chunks, start=1):
            path = chunk_path(folder, chunk)
            fetched_now = not path.exists()
            if fetched_now:
                _write_chunk(path, _fetch_with_retries(poller, queries, chunk))
            paths.append(path)
            progress.update(done, fetched_now)
        return paths
    finally:
        poller.teardown()


def _fetch_with_retries(poller: CloudWatchPoller, queries, chunk: Chunk) -> pa.Table:
    table = None

    def attempt() -> Attempt:
        nonlocal table
        try:
            table = poller.fetch_table(queries, chunk.start_s, chunk.end_s, chunk.period_s)
        except TransientError as error:
            return Attempt(Outcome.RETRY, None, str(error))
        except PermanentError as error:
            return Attempt(Outcome.PERMANENT, None, str(error))
        return Attempt(Outcome.DELIVERED, None, "")

    last, _, reason = with_retries(attempt, RETRY, time.monotonic, time.sleep, random.Random())
    if last.outcome is not Outcome.DELIVERED or table is None:
        raise PermanentError(f"chunk {ms_to_iso(chunk.start_s * 1000)}..{ms_to_iso(chunk.end_s * 1000)}: {reason}")
    return table
