"""The pure planners of the ``cloudwatch`` source: live windows and backfill chunks."""

from __future__ import annotations

import itertools

import pytest

from sources.cloudwatch.planner import (
    MAX_DATAPOINTS_PER_CALL,
    Chunk,
    plan_chunks,
    plan_window,
    retention_s,
)

DAY = 86_400
NOW = 1_764_460_800 + 37  # 2025-11-30T00:00:37Z: not on a period boundary


# --- plan_window ----------------------------------------------------------------------------------


def test_first_window_is_the_last_whole_period_older_than_the_lag():
    start, end = plan_window(None, NOW, 60, 600)
    assert end == (NOW - 600) // 60 * 60
    assert (start, end) == (end - 60, end)
    assert end <= NOW - 600 and end % 60 == 0


def test_next_window_starts_where_the_previous_ended():
    first = plan_window(None, NOW, 60, 600)
    second = plan_window(first[1], NOW + 60, 60, 600)
    third = plan_window(second[1], NOW + 250, 60, 600)
    assert second == (first[1], first[1] + 60)
    assert third == (second[1], second[1] + 180)  # three periods became complete meanwhile


def test_a_repeated_or_early_poll_fetches_nothing():
    _, end = plan_window(None, NOW, 60, 600)
    assert plan_window(end, NOW, 60, 600) is None
    assert plan_window(end, NOW + 22, 60, 600) is None  # the next period is not older than the lag yet
    assert plan_window(end, NOW - 300, 60, 600) is None  # clock went back: never re-read


def test_windows_of_many_polls_tile_time_without_overlap_or_gap():
    last, covered = None, []
    for now in range(NOW, NOW + 3 * 3600, 47):  # polls not aligned to the period
        window = plan_window(last, now, 300, 900)
        if window is not None:
            covered.append(window)
            last = window[1]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    assert all(start % 300 == 0 and end % 300 == 0 and start < end for start, end in covered)


def test_an_unaligned_previous_end_rounds_up_never_back():
    assert plan_window(1_000_030, 1_001_000, 60, 0) == (1_000_080, 1_000_980)


def test_a_long_outage_catches_up_only_within_retention():
    start, end = plan_window(NOW - 40 * DAY, NOW, 60, 600)
    assert start >= NOW - 15 * DAY and start % 60 == 0
    assert start - 60 < NOW - 15 * DAY
    assert end == (NOW - 600) // 60 * 60


def test_zero_lag_and_bad_arguments():
    assert plan_window(None, 1200, 60, 0) == (1140, 1200)
    with pytest.raises(ValueError):
        plan_window(None, NOW, 0, 600)
    with pytest.raises(ValueError):
        plan_window(None, NOW, 60, -1)


# --- plan_chunks ----------------------------------------------------------------------------------


def points(chunks: list[Chunk]) -> list[int]:
    return [(c.end_s - c.start_s) // c.period_s for c in chunks]


def assert_contiguous(chunks: list[Chunk]) -> None:
    for a, b in itertools.pairwise(chunks):
        assert a.end_s == b.start_s
    for chunk in chunks:
        assert chunk.start_s < chunk.end_s
        assert chunk.start_s % chunk.period_s == 0 and chunk.end_s % chunk.period_s == 0


def test_recent_data_is_one_chunk_at_one_minute():
    start = NOW - 3600
    assert plan_chunks(start, NOW, NOW, 75) == [Chunk(start // 60 * 60, NOW // 60 * 60, 60)]


def test_chunks_keep_every_call_under_the_datapoint_limit():
    for n_queries in (1, 7, 75, 499, 500):
        chunks = plan_chunks(NOW - 14 * DAY, NOW, NOW, n_queries)
        assert {c.period_s for c in chunks} == {60}
        assert all(n_queries * p <= MAX_DATAPOINTS_PER_CALL for p in points(chunks))
        assert sum(points(chunks)) == (NOW // 60 * 60 - (NOW - 14 * DAY) // 60 * 60) // 60
        assert_contiguous(chunks)


def test_chunks_are_as_large_as_the_limit_allows():
    chunks = plan_chunks(NOW - 14 * DAY, NOW, NOW, 500)
    assert points(chunks)[:-1] == [MAX_DATAPOINTS_PER_CALL // 500] * (len(chunks) - 1)  # 201 points each
    assert len(chunks) == -(-(14 * DAY // 60) // 201)


def test_exactly_the_limit_is_one_chunk_and_one_more_point_is_two():
    now = 1_764_460_800  # aligned to the hour
    start = now - 100 * 60
    one = plan_chunks(now - 201 * 60, now, now, 500)
    two = plan_chunks(now - 202 * 60, now, now, 500)
    assert points(one) == [201]
    assert points(two) == [201, 1]
    assert plan_chunks(start, now, now, 1) == [Chunk(start, now, 60)]


def test_periods_follow_retention_by_age():
    now = 1_764_460_800  # aligned to the hour
    chunks = plan_chunks(now - 100 * DAY, now, now, 10)
    periods = [c.period_s for c in chunks]
    assert periods == sorted(periods, reverse=True)  # oldest (coarsest) first
    by_period = {p: [c for c in chunks if c.period_s == p] for p in (3600, 300, 60)}
    assert by_period[3600][0].start_s == now - 100 * DAY
    assert by_period[3600][-1].end_s == by_period[300][0].start_s == now - 63 * DAY
    assert by_period[300][-1].end_s == by_period[60][0].start_s == now - 15 * DAY
    assert by_period[60][-1].end_s == now
    assert_contiguous(chunks)


def test_tier_boundaries_round_up_to_the_coarser_period():
    now = NOW  # 37 s past the hour: now - 15 d and now - 63 d are not aligned
    chunks = plan_chunks(now - 20 * DAY, now, now, 10)
    first_minute = next(c for c in chunks if c.period_s == 60)
    assert first_minute.start_s >= now - 15 * DAY  # 1-min data starts inside its retention
    assert first_minute.start_s % 300 == 0 and first_minute.start_s - 300 < now - 15 * DAY
    chunks = plan_chunks(now - 70 * DAY, now, now, 10)
    first_five = next(c for c in chunks if c.period_s == 300)
    assert first_five.start_s >= now - 63 * DAY and first_five.start_s % 3600 == 0
    assert_contiguous(chunks)


def test_retention_edges():
    now = 1_764_460_800
    assert {c.period_s for c in plan_chunks(now - 15 * DAY, now, now, 10)} == {60}
    assert {c.period_s for c in plan_chunks(now - 15 * DAY - 60, now, now, 10)} == {300, 60}
    assert {c.period_s for c in plan_chunks(now - 63 * DAY, now - 62 * DAY, now, 10)} == {300}
    assert {c.period_s for c in plan_chunks(now - 63 * DAY - 1, now - 62 * DAY, now, 10)} == {3600, 300}
    assert {c.period_s for c in plan_chunks(now - 455 * DAY, now - 454 * DAY, now, 10)} == {3600}
    with pytest.raises(ValueError, match="455 days"):
        plan_chunks(now - 455 * DAY - 1, now, now, 10)


def test_an_old_range_that_ends_old_has_no_fine_chunks():
    now = 1_764_460_800
    chunks = plan_chunks(now - 400 * DAY, now - 300 * DAY, now, 500)
    assert {c.period_s for c in chunks} == {3600}
    assert chunks[0].start_s == now - 400 * DAY and chunks[-1].end_s == now - 300 * DAY
    assert all(500 * p <= MAX_DATAPOINTS_PER_CALL for p in points(chunks))
    assert_contiguous(chunks)


def test_future_ends_are_cut_at_now_and_empty_ranges_give_nothing():
    now = 1_764_460_800
    assert plan_chunks(now - 600, now + 3600, now, 5) == [Chunk(now - 600, now, 60)]
    assert plan_chunks(now, now, now, 5) == []
    assert plan_chunks(now - 30, now - 10, now, 5) == []  # no whole minute inside


@pytest.mark.parametrize(("start", "end", "n_queries"), [(100, 50, 5), (0, 100, 0), (0, 100, 501)])
def test_bad_arguments(start, end, n_queries):
    now = 1_764_460_800
    with pytest.raises(ValueError):
        plan_chunks(now - 1000 + start, now - 1000 + end, now, n_queries)


def test_retention_of_a_period():
    assert [retention_s(p) for p in (60, 120, 300, 600, 3600, 86_400)] == [
        15 * DAY,
        63 * DAY,
        63 * DAY,
        455 * DAY,
        455 * DAY,
        455 * DAY,
    ]
