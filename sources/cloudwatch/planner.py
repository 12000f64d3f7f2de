"""Pure time planning of CloudWatch reads (no I/O).

- :func:`plan_window`: the next live window: whole periods, older than the
  publication lag, starting where the previous poll ended, so that no
  datapoint is fetched twice across polls.
- :func:`plan_chunks`: a backfill range split by CloudWatch retention (60 s
  data for 15 days, 300 s for 63 days, 3600 s for 455 days) and into
  ``GetMetricData`` calls of at most 100,800 datapoints.

All times are epoch seconds.

>>> plan_window(None, 1_000_000, 60, 600)
(999300, 999360)
>>> plan_window(999360, 1_000_130, 60, 600)
(999360, 999480)
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "MAX_DATAPOINTS_PER_CALL",
    "MAX_QUERIES_PER_CALL",
    "RETENTION",
    "Chunk",
    "plan_chunks",
    "plan_window",
    "retention_s",
]

MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800
DAY = 86_400
#: (period s, how far back data at that period is kept, s), finest first.
RETENTION: tuple[tuple[int, int], ...] = ((60, 15 * DAY), (300, 63 * DAY), (3600, 455 * DAY))


class Chunk(NamedTuple):
    """One ``GetMetricData`` time range: [start_s, end_s) at ``period_s``."""

    start_s: int
    end_s: int
    period_s: int


def _floor(value: int, step: int) -> int:
    return value // step * step


def _ceil(value: int, step: int) -> int:
    return -(-value // step) * step


def retention_s(period_s: int) -> int:
    """How far back CloudWatch keeps data at ``period_s`` (the coarsest tier that period fits)."""
    for tier_period, kept in RETENTION:
        if period_s <= tier_period:
            return kept
    return RETENTION[-1][1]


def plan_window(last_end_s: int | None, now_s: int, period_s: int, lag_s: int) -> tuple[int, int] | None:
    """The live window [start, end) to fetch now, or None when no new complete period is old enough.

    ``end`` is the last period boundary at least ``lag_s`` before ``now_s``;
    ``start`` is ``last_end_s`` rounded up to a period boundary (never back,
    so nothing is read twice), or one period before ``end`` on the first poll.
    A catch-up never reaches further back than the period's retention.
    """
    if period_s <= 0 or lag_s < 0:
        raise ValueError("period_s must be > 0 and lag_s >= 0")
    end = _floor(now_s - lag_s, period_s)
    start = end - period_s if last_end_s is None else _ceil(last_end_s, period_s)
    start = max(start, _ceil(now_s - retention_s(period_s), period_s))
    return (start, end) if start < end else None


def plan_chunks(start_s: int, end_s: int, now_s: int, n_queries: int) -> list[Chunk]:
    """Backfill [start_s, end_s) as ``GetMetricData`` calls of ``n_queries`` queries each.

    Each part of the range gets the finest period CloudWatch still keeps for
    its age (60 s up to 15 days back, 300 s up to 63 days, 3600 s up to 455
    days); the tier boundaries are rounded up to the coarser period so that
    chunks never overlap. Every chunk keeps ``n_queries`` x points per query
    <= 100,800. Starts are aligned down and ends down to the chunk's period;
    ``end_s`` beyond ``now_s`` is cut at ``now_s``. Raises ``ValueError`` when
    ``start_s`` is older than 455 days (no data kept) or the arguments are
    inconsistent.
    """
    if not 1 <= n_queries <= MAX_QUERIES_PER_CALL:
        raise ValueError(f"n_queries must be 1..{MAX_QUERIES_PER_CALL} per GetMetricData call")
    if end_s < start_s:
        raise ValueError("end_s must not be before start_s")
    oldest_kept = RETENTION[-1][1]
    if now_s - start_s > oldest_kept:
        raise ValueError(
            f"start_s is {now_s - start_s} s old: CloudWatch keeps no data older than {oldest_kept // DAY} days"
        )
    end_s = min(end_s, now_s)
    chunks: list[Chunk] = []
    # Tiers, newest first: the 60 s tier covers [now - 15 d rounded up to 300 s, now).
    upper = end_s
    for index, (period, kept) in enumerate(RETENTION):
        last = index + 1 == len(RETENTION)
        tier_start = start_s if last else _ceil(now_s - kept, RETENTION[index + 1][0])
        lower = max(start_s, tier_start)
        if lower < upper:
            chunks = _split(_floor(lower, period), _floor(upper, period), period, n_queries) + chunks
        upper = min(upper, tier_start)
        if start_s >= tier_start:
            break
    return chunks


def _split(start: int, end: int, period: int, n_queries: int) -> list[Chunk]:
    points = MAX_DATAPOINTS_PER_CALL // n_queries
    step = points * period
    return [Chunk(at, min(at + step, end), period) for at in range(start, end, step)]
