import math

import numpy as np
import pytest

from airis_mon.timeutil import epoch_array_to_ms, ms_to_iso, to_epoch_ms

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
