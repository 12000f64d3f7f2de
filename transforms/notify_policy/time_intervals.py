"""Alertmanager time intervals: ``times``, ``weekdays``, ``days_of_month``, ``months``, ``years``, ``location``.

An interval holds at an instant when every field it sets holds (an unset field holds
always). ``times`` are ``HH:MM`` ranges, start inclusive and end exclusive (``24:00``
allowed as an end); weekdays and months take names or ranges (``monday:friday``,
``may:august``, ``1:3``); days of month may be negative (``-1`` the last day); years
are ranges. The instant is read in ``location`` (IANA name, default ``UTC``).

>>> TimeInterval.model_validate({"weekdays": ["saturday", "sunday"]}).contains(0)  # 1970-01-01 was a Thursday
False
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence

from pydantic import Field, field_validator

from airis_mon.models import StrictModel

__all__ = ["NamedTimeInterval", "TimeInterval", "TimeRange", "in_any"]

_WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
_MONTHS = [m.lower() for m in calendar.month_name[1:]]
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")


def _minutes(text: str) -> int:
    if not _CLOCK.fullmatch(text):
        raise ValueError(f"{text!r} is not a time of day HH:MM (00:00 to 24:00)")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class TimeRange(StrictModel):
    """Minutes of the day ``[start_time, end_time)``."""

    start_time: str
    end_time: str

    @field_validator("start_time", "end_time")
    @classmethod
    def _clock(cls, value: str) -> str:
        _minutes(value)
        return value

    def contains(self, minute_of_day: int) -> bool:
        return _minutes(self.start_time) <= minute_of_day < _minutes(self.end_time)


def _range(text: str, names: Sequence[str] | None, low: int, high: int, what: str) -> tuple[int, int]:
    def one(part: str) -> int:
        part = part.strip().lower()
        if names is not None and part in names:
            return names.index(part) + (1 if names is _MONTHS else 0)
        try:
            number = int(part)
        except ValueError:
            raise ValueError(f"{text!r} is not a {what} or range of them") from None
        if not low <= number <= high or (number == 0 and low < 0):
            raise ValueError(f"{what} {number} out of range {low}..{high}")
        return number

    first, _, last = str(text).partition(":")
    start, end = one(first), one(last) if last else one(first)
    if (start < 0) == (end < 0) and end < start:
        raise ValueError(f"range {text!r} ends before it starts")
    return start, end


class TimeInterval(StrictModel):
    """One Alertmanager ``time_intervals`` entry."""

    times: list[TimeRange] = Field(default_factory=list)
    weekdays: list[str] = Field(default_factory=list)
    days_of_month: list[str] = Field(default_factory=list)
    months: list[str] = Field(default_factory=list)
    years: list[str] = Field(default_factory=list)
    location: str = "UTC"

    @field_validator("weekdays", "days_of_month", "months", "years", mode="before")
    @classmethod
    def _strings(cls, values):
        return [str(v) for v in values] if isinstance(values, list) else values

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, values: list[str]) -> list[str]:
        for value in values:
            _range(value, _WEEKDAYS, 0, 6, "weekday")
        return values

    @field_validator("days_of_month")
    @classmethod
    def _days(cls, values: list[str]) -> list[str]:
        for value in values:
            _range(value, None, -31, 31, "day of month")
        return values

    @field_validator("months")
    @classmethod
    def _months(cls, values: list[str]) -> list[str]:
        for value in values:
            _range(value, _MONTHS, 1, 12, "month")
        return values

    @field_validator("years")
    @classmethod
    def _years(cls, values: list[str]) -> list[str]:
        for value in values:
            _range(value, None, 1, 9999, "year")
        return values

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo("UTC" if value == "Local" else value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/London)") from None
        return value

    def contains(self, at_ms: int) -> bool:
        """True when epoch milliseconds ``at_ms`` falls in this interval."""
        zone = zoneinfo.ZoneInfo("UTC" if self.location == "Local" else self.location)
        when = dt.datetime.fromtimestamp(at_ms / 1000, tz=zone)
        if self.times and not any(r.contains(when.hour * 60 + when.minute) for r in self.times):
            return False
        weekday = (when.weekday() + 1) % 7  # sunday = 0 as in Go
        if self.weekdays and not any(
            a <= weekday <= b for a, b in (_range(w, _WEEKDAYS, 0, 6, "") for w in self.weekdays)
        ):
            return False
        if self.days_of_month:
            length = calendar.monthrange(when.year, when.month)[1]

            def day(n: int) -> int:
                return n if n > 0 else length + 1 + n

            if not any(
                day(a) <= when.day <= day(b) for a, b in (_range(d, None, -31, 31, "") for d in self.days_of_month)
            ):
                return False
        if self.months and not any(
            a <= when.month <= b for a, b in (_range(m, _MONTHS, 1, 12, "") for m in self.months)
        ):
            return False
        years = (_range(y, None, 1, 9999, "") for y in self.years)
        return not self.years or any(a <= when.year <= b for a, b in years)


class NamedTimeInterval(StrictModel):
    """Top-level ``time_intervals`` entry: a name and the intervals it covers (any of them)."""

    name: str = Field(min_length=1)
    time_intervals: list[TimeInterval] = Field(default_factory=list)

    def contains(self, at_ms: int) -> bool:
        return any(interval.contains(at_ms) for interval in self.time_intervals)


def in_any(intervals: Sequence[NamedTimeInterval], at_ms: int) -> bool:
    """True when ``at_ms`` (epoch ms) falls in any of the named intervals."""
    return any(interval.contains(at_ms) for interval in intervals)
