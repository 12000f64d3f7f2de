"""Config durations: Prometheus/Go compound forms, fractions, whole seconds only."""

import pytest
from pydantic import BaseModel, ValidationError

from airis_mon.durations import Duration, parse_duration_s


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90),
        ("90", 90),
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("0.5m", 30),
        ("1m30s", 90),
        ("2d12h", 216_000),
        ("1w", 604_800),
        ("2000ms", 2),
        ("1h0m0s", 3600),
        (" 5m ", 300),
        ("0", 0),
        ("0m", 0),
    ],
)
def test_accepted_forms(text, seconds):
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("30m1h", "like 90s"),  # largest unit first, as Prometheus requires
        ("1h1h", "like 90s"),  # each unit once
        ("5x", "like 90s"),
        ("", "like 90s"),
        ("1h 30m", "like 90s"),
        ("1.2.3s", "like 90s"),
        ("-5m", "like 90s"),
        ("1500ms", "whole seconds"),
        ("0.3s", "whole seconds"),
        (-1, "negative"),
        (True, "like 90s"),
        (1.5, "like 90s"),
    ],
)
def test_refused_forms_say_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_duration_s(text)


def test_a_config_field_reports_the_forms():
    class Model(BaseModel):
        window: Duration

    assert Model(window="1h30m").window == 5400
    with pytest.raises(ValidationError, match="1h30m"):
        Model(window="an hour")
