import math
import time

import numpy as np
import pytest

from airis_mon.timeutil import (
    DEFAULT_MAX_FUTURE_S,
    DEFAULT_NOT_BEFORE_MS,
    check_epoch_ms,
    epoch_array_to_ms,
    ms_to_iso,
    to_epoch_ms,
)

MS = 1_700_000_000_123


@pytest.mark.parametrize(
    "value, expected",
    [
        (1_700_000_000, 1_700_000_000_000),  # seconds
        (1_700_000_000.123, MS),  # fractional seconds
        (MS, MS),  # milliseconds
        (MS * 1000 + 456, MS),  # microseconds, truncated to ms
        (MS * 1_000_000 + 789, MS),  # nanoseconds
        ("2023-11-14T22:13:20.123Z", MS),
        ("2023-11-14T23:13:20.123+01:00", MS),
        ("2023-11-14T22:13:20.123", MS),  # no offset means UTC
        ("1700000000123", MS),  # numeric string
        (0, 0),
    ],
)
def test_to_epoch_ms_accepts_every_documented_form(value, expected):
    assert to_epoch_ms(value) == expected


@pytest.mark.parametrize("value", [None, True, "yesterday", math.nan, math.inf, [1], "2023-13-45T00:00:00Z"])
def test_to_epoch_ms_rejects_non_timestamps_with_a_clear_error(value):
    with pytest.raises(ValueError, match="timestamp"):
        to_epoch_ms(value)


def test_vectorised_conversion_matches_the_scalar_one():
    samples = [1_700_000_000, MS, MS * 1000 + 999, MS * 1_000_000, 1_700_000_000.5]
    expected = [to_epoch_ms(v) for v in samples]
    assert epoch_array_to_ms(np.array(samples, dtype=np.float64)).tolist() == expected
    integers = [1_700_000_000, MS, MS * 1000 + 999, MS * 1_000_000]
    assert epoch_array_to_ms(np.array(integers, dtype=np.int64)).tolist() == [to_epoch_ms(v) for v in integers]


def test_vectorised_conversion_flags_non_finite_values():
    out = epoch_array_to_ms(np.array([np.nan, np.inf, MS]))
    assert out[0] == out[1] == np.iinfo(np.int64).min
    assert out[2] == MS


def test_ms_to_iso_round_trips():
    assert ms_to_iso(MS) == "2023-11-14T22:13:20.123Z"
    assert to_epoch_ms(ms_to_iso(MS)) == MS


@pytest.mark.parametrize("value", ["secret-value-123", [1, "secret-value-123"], {"secret-value-123": 1}])
def test_to_epoch_ms_errors_never_echo_the_value(value):
    with pytest.raises(ValueError) as info:
        to_epoch_ms(value)
    assert "secret-value-123" not in str(info.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e400"])
def test_numeric_strings_that_are_not_finite_are_not_timestamps(value):
    with pytest.raises(ValueError, match="not a finite timestamp"):
        to_epoch_ms(value)


def test_the_default_accepted_range_is_epoch_0_to_one_day_ahead_of_the_clock():
    now_ms = 1_795_824_000_000
    assert (DEFAULT_NOT_BEFORE_MS, DEFAULT_MAX_FUTURE_S) == (0, 86_400.0)
    assert check_epoch_ms(0, now_ms=now_ms) == 0
    assert check_epoch_ms(now_ms + 86_400_000, now_ms=now_ms) == now_ms + 86_400_000
    with pytest.raises(ValueError, match=r"^before 1970-01-01T00:00:00.000Z, the earliest accepted time"):
        check_epoch_ms(-1, now_ms=now_ms)
    with pytest.raises(ValueError, match=r"^more than 86400 s ahead of the clock"):
        check_epoch_ms(now_ms + 86_400_001, now_ms=now_ms)


def test_the_accepted_range_is_configurable_and_checks_the_wall_clock_by_default():
    assert check_epoch_ms(MS, not_before_ms=MS) == MS
    with pytest.raises(ValueError, match=r"before 2023-11-14T22:13:20\.123Z"):
        check_epoch_ms(MS - 1, not_before_ms=MS)
    with pytest.raises(ValueError, match="more than 60 s ahead"):
        check_epoch_ms(to_epoch_ms("2999-01-01T00:00:00Z"), max_future_s=60)
    ahead_ms = int((time.time() + 30) * 1000)  # 30 s ahead of the wall clock
    assert check_epoch_ms(ahead_ms, max_future_s=60) == ahead_ms
    with pytest.raises(ValueError, match="more than 10 s ahead"):
        check_epoch_ms(ahead_ms, max_future_s=10)


@pytest.mark.parametrize("huge", [1e25, -1e25, 1e30, 1e266])  # as ns: beyond 9.2e18 ms
def test_vectorised_conversion_flags_milliseconds_beyond_int64(huge):
    out = epoch_array_to_ms(np.array([huge, MS], dtype=np.float64))
    assert out.tolist() == [np.iinfo(np.int64).min, MS]
