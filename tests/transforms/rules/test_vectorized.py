"""The vectorized batch path gives exactly the reference state machine's alerts and state (property tests).

The reference is :func:`transforms.rules.engine.evaluate` (and :func:`transforms.rules.select.combine_windows`,
:func:`transforms.rules.incremental.advance`); the fast path is :mod:`transforms.rules.vectorized`. Hypothesis
draws series with gaps, NaN windows and values on the threshold, rules with every comparator, ``for`` as
windows or as a duration, hysteresis, ``keep_firing_for``, ``repeat_interval``, a horizon, and a starting state
reached by the reference on an earlier stretch (pending or firing included).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.transforms.rules.scenarios import GROUP, MIN, T0, threshold_rule
from transforms.rules.batch import evaluate_group
from transforms.rules.engine import WindowValue, evaluate
from transforms.rules.incremental import advance
from transforms.rules.select import PartialWindow, combine_windows, select_partials
from transforms.rules.vectorized import PartialColumns, combine_columns, evaluate_columns, select_columns

_VALUES = st.one_of(st.sampled_from([0.0, 5.0, 9.0, 10.0, 11.0, 20.0, math.nan]), st.floats(-5, 30))


@st.composite
def rules(draw):
    comparator = draw(st.sampled_from([">", ">=", "<", "<="]))
    fields = {
        "comparator": comparator,
        "threshold": 10.0,
        "aggregation": draw(st.sampled_from(["p95", "max", "min", "mean", "sum", "count", "rate"])),
        "for": draw(st.one_of(st.integers(0, 4), st.sampled_from(["0m", "1m", "90s", "3m"]))),
        "keep_firing_for": draw(st.sampled_from([0, 60, 120, 300])),
        "repeat_interval": draw(st.sampled_from([None, 60, 180])),
    }
    if draw(st.booleans()):
        fields["recovery_threshold"] = 7.0 if comparator in (">", ">=") else 13.0
    return threshold_rule(**fields)


@st.composite
def window_series(draw, max_windows: int = 40):
    """Ordered windows of one minute; some minutes missing (gaps)."""
    count = draw(st.integers(0, max_windows))
    present = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    values = draw(st.lists(_VALUES, min_size=count, max_size=count))
    kept = [(i, v) for i, (keep, v) in enumerate(zip(present, values, strict=True)) if keep]
    return [WindowValue(T0 + i * MIN, T0 + (i + 1) * MIN, v) for i, v in kept]


def comparable(state) -> dict:
    """A state as a dict in which NaN equals NaN."""
    return {k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in dataclasses.asdict(state).items()}


def comparable_alerts(alerts) -> list[tuple]:
    return [tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in alert) for alert in alerts]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=rules(), earlier=window_series(12), later=window_series(60), horizon=st.integers(0, 90))
def test_evaluate_columns_equals_the_state_machine(rule, earlier, later, horizon):
    # A starting state the reference reached on an earlier stretch (may be pending or firing).
    _, state = evaluate(rule, GROUP, earlier, None)
    shift = (len(earlier) and 12) * MIN
    later = [WindowValue(w.window_start_ms + shift, w.window_end_ms + shift, w.value) for w in later]
    until = T0 + horizon * MIN
    expected_alerts, expected_state = evaluate(rule, GROUP, later, state, until)
    starts = np.array([w.window_start_ms for w in later], dtype=np.int64)
    values = np.array([w.value for w in later], dtype=np.float64)
    alerts, final = evaluate_columns(rule, GROUP, starts, values, state, until)
    assert comparable_alerts(alerts) == comparable_alerts(expected_alerts)
    assert comparable(final) == comparable(expected_state)


_PART_VALUES = st.one_of(st.sampled_from([0.0, 10.0, 0.1, 1e16, -1e16, math.nan]), st.floats(-1e3, 1e3))


@st.composite
def partials(draw):
    """Rows of several series in one group: base windows of 1 minute, some repeated (several series)."""
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        minute = draw(st.integers(0, 20))
        low, high = sorted(draw(st.lists(_PART_VALUES.filter(lambda v: not math.isnan(v)), min_size=2, max_size=2)))
        quantile = draw(_PART_VALUES)
        count, total, p99 = draw(st.integers(0, 5)), draw(_PART_VALUES), draw(_PART_VALUES)
        rows.append(PartialWindow(T0 + minute * MIN, T0 + (minute + 1) * MIN, count, total, low, high, quantile,
                                  quantile, p99))  # fmt: skip
    return rows


def columns_of(rows: list[PartialWindow]) -> PartialColumns:
    fields = list(zip(*rows, strict=True)) if rows else [()] * len(PartialWindow._fields)
    dtypes = [np.int64, np.int64, np.int64] + [np.float64] * 6
    return PartialColumns(*(np.array(f, dtype=d) for f, d in zip(fields, dtypes, strict=True)))


@settings(max_examples=300, deadline=None)
@given(rows=partials(), rule=rules(), window_minutes=st.sampled_from([1, 2, 5]))
def test_combine_columns_equals_combine_windows(rows, rule, window_minutes):
    window_ms = window_minutes * MIN
    expected = combine_windows(rows, rule, window_ms)
    starts, values = combine_columns(columns_of(rows), rule, window_ms)
    assert starts.tolist() == [w.window_start_ms for w in expected]
    got = ["nan" if math.isnan(v) else v for v in values.tolist()]
    assert got == ["nan" if math.isnan(w.value) else w.value for w in expected]


def _table(rows: list[tuple[str, str, str, PartialWindow]]) -> pa.Table:
    columns = {"name": [], "source": [], "tags": [], **{f: [] for f in PartialWindow._fields}}
    for name, source, tags, part in rows:
        columns["name"].append(name)
        columns["source"].append(source)
        columns["tags"].append(tags)
        for field, value in zip(PartialWindow._fields, part, strict=True):
            columns[field].append(value)
    types = {"window_start_ms": pa.int64(), "window_end_ms": pa.int64(), "count": pa.int64()}
    return pa.table({k: pa.array(v, type=types.get(k, pa.float64() if k in PartialWindow._fields else pa.string()))
                     for k, v in columns.items()})  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    per_series=st.lists(partials(), min_size=4, max_size=4),
    names=st.lists(st.sampled_from(["latency", "other"]), min_size=120, max_size=120),
    rule=rules(),
    group_by=st.sampled_from([None, ["model_name"], []]),
    until=st.one_of(st.none(), st.integers(0, 40)),
)
def test_the_batch_runner_step_equals_the_reference_end_to_end(per_series, names, rule, group_by, until):
    """From aggregate tables to alerts: select, group, combine, evaluate, against select_partials + advance."""
    rule = rule.model_copy(update={"group_by": group_by, "metric": "latency", "tags": {"env": "prod"}})
    series_tags = [
        '{"env":"prod","model_name":"a","replica":"1"}',
        '{"env":"prod","model_name":"a","replica":"2"}',
        '{"env":"prod","model_name":"b","replica":"1"}',
        '{"env":"dev","model_name":"a","replica":"1"}',
    ]
    rows = []
    for tags, parts in zip(series_tags, per_series, strict=True):
        for part in parts:
            rows.append((names[len(rows)], "tfs", tags, part))
    tables = [_table(rows[: len(rows) // 2]), _table(rows[len(rows) // 2 :])]
    until_ms = None if until is None else T0 + until * MIN
    reference: dict = {}
    for table in tables:
        for key, parts in select_partials(table, [rule]):
            reference.setdefault(key, []).extend(parts)
    fast: dict = {}
    for table in tables:
        for key, columns in select_columns(table, [rule]):
            fast.setdefault(key, []).append(columns)
    assert sorted(fast) == sorted(reference)
    for key, parts in reference.items():
        expected = advance(rule, key, None, (), parts, 2**62, MIN, until_ms).alerts
        assert comparable_alerts(evaluate_group(rule, key, fast[key], 60, until_ms)) == comparable_alerts(expected)


def test_a_quiet_month_is_skipped_and_an_incident_still_found():
    """43,200 quiet windows with one 5-minute breach: one trigger and one resolve, at the reference's times."""
    rule = threshold_rule(**{"for": 3, "keep_firing_for": 60})
    values = np.full(43_200, 5.0)
    values[20_000:20_005] = 50.0
    starts = T0 + np.arange(43_200, dtype=np.int64) * MIN
    alerts, state = evaluate_columns(rule, GROUP, starts, values, None, int(starts[-1]) + MIN)
    assert [(a.notification, (a.timestamp_ms - T0) // MIN) for a in alerts] == [
        ("trigger", 20_003),
        ("resolve", 20_006),
    ]
    assert state.phase == "inactive" and state.evaluated_until_ms == int(starts[-1]) + MIN
