import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.schema import AGGREGATE_SCHEMA, Metric, metrics_to_table
from transforms.aggregate import Aggregate, aggregate_table

MS = 1_795_824_000_000  # a window boundary for 60 s windows


def reference(values):
    """What a careful analyst computes by hand for one window."""
    v = np.array(values, dtype=float)
    return {
        "count": len(v),
        "sum": pytest.approx(v.sum()),
        "min": v.min(),
        "max": v.max(),
        "mean": pytest.approx(v.mean()),
        "p50": pytest.approx(np.percentile(v, 50)),
        "p95": pytest.approx(np.percentile(v, 95)),
        "p99": pytest.approx(np.percentile(v, 99)),
    }


def test_statistics_match_numpy_for_random_series_and_windows():
    rng = np.random.default_rng(7)
    n = 5000
    timestamps = MS + rng.integers(0, 10 * 60_000, n)
    series = rng.integers(0, 4, n)
    values = rng.lognormal(3, 1, n)
    metrics = [
        Metric(int(t), "src", f"m{s % 2}", float(v), "ms", f'{{"k":"{s}"}}')
        for t, s, v in zip(timestamps, series, values, strict=False)
    ]
    table = aggregate_table(metrics_to_table(metrics), 60_000)
    assert table.schema == AGGREGATE_SCHEMA
    rows = table.to_pylist()
    assert len(rows) == 4 * 10
    for row in rows:
        k = int(row["tags"][6:-2])
        mask = (series == k) & ((timestamps - timestamps % 60_000) == row["window_start_ms"])
        assert row["name"] == f"m{k % 2}"
        assert row["window_end_ms"] - row["window_start_ms"] == 60_000
        assert {s: row[s] for s in ("count", "sum", "min", "max", "mean", "p50", "p95", "p99")} == reference(
            values[mask]
        )
    keys = [(r["source"], r["name"], r["unit"], r["tags"], r["window_start_ms"]) for r in rows]
    assert keys == sorted(keys)


def test_window_boundaries_are_half_open_and_epoch_aligned():
    table = metrics_to_table(
        [
            Metric(MS - 1, "s", "m", 1.0, "", "{}"),
            Metric(MS, "s", "m", 2.0, "", "{}"),
            Metric(MS + 59_999, "s", "m", 4.0, "", "{}"),
            Metric(MS + 60_000, "s", "m", 8.0, "", "{}"),
        ]
    )
    rows = aggregate_table(table, 60_000).to_pylist()
    assert [(r["window_start_ms"] - MS, r["count"], r["sum"]) for r in rows] == [
        (-60_000, 1, 1.0),
        (0, 2, 6.0),
        (60_000, 1, 8.0),
    ]


def test_single_point_quantiles_equal_the_point_and_units_split_series():
    rows = aggregate_table(
        metrics_to_table([Metric(MS, "s", "m", 3.0, "ms", "{}"), Metric(MS, "s", "m", 5.0, "count", "{}")]), 60_000
    ).to_pylist()
    assert [(r["unit"], r["p50"], r["p99"]) for r in rows] == [("count", 5.0, 5.0), ("ms", 3.0, 3.0)]


def test_empty_input_and_bad_arguments():
    assert aggregate_table(metrics_to_table([]), 60_000).num_rows == 0
    with pytest.raises(ValueError, match="window_ms must be positive"):
        aggregate_table(metrics_to_table([]), 0)
    with pytest.raises(ValueError, match="window_seconds must be positive"):
        Aggregate(window_seconds=0)


def test_a_series_split_across_batches_is_aggregated_once_per_window():
    """Batches come from different bundles; shards must bring a series together."""
    points = [Metric(MS + i * 1000, "src", f"m{i % 3}", float(i), "ms", "{}") for i in range(120)]
    batches = [metrics_to_table(points[i::4]) for i in range(4)]
    expected = aggregate_table(metrics_to_table(points), 60_000).to_pylist()
    assert len(expected) == 6
    with TestPipeline() as pipeline:
        aggregates = pipeline | beam.Create(batches) | Aggregate(window_seconds=60, num_shards=2)
        rows = aggregates | beam.FlatMap(lambda t: [tuple(sorted(r.items())) for r in t.to_pylist()])
        assert_that(rows, equal_to([tuple(sorted(r.items())) for r in expected]))
