"""transforms.distributions against the ddsketch package (the definition followed) and numpy.

DDSketch's guarantee (Masson et al. 2019) is for the rank-``floor(q(n-1))`` element: the sketch
returns the representative value of the bin holding rank ``q*(n-1)``, which is within
``relative_accuracy`` of that element, i.e. of ``np.quantile(values, q, method="lower")``. Numpy's
default (linear interpolation between neighbours) is not covered by it; the error against it is
measured and printed, as information only.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

from transforms.distributions import (
    BUCKETS,
    Distribution,
    LogMapping,
    distributions_from_columns,
    log_mapping,
    mapping_name,
    sketch_columns,
)

ACCURACIES = (0.01, 0.02, 0.001)


def _library_sketch(values: np.ndarray, accuracy: float) -> DDSketch:
    sketch = DDSketch(accuracy)
    for v in values.tolist():
        sketch.add(v)
    return sketch


def _datasets(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for n in (1, 2, 3, 10, 1000, 100_000):
        out[f"lognormal_latency_ms_{n}"] = rng.lognormal(mean=3.0, sigma=1.2, size=n)
        out[f"uniform_score_{n}"] = rng.uniform(0.0, 1.0, size=n)
        mixed = rng.normal(0.0, 5.0, size=n)
        mixed[rng.random(n) < 0.1] = 0.0
        mixed[rng.random(n) < 0.02] = 1e-320  # below min_possible: counts as zero, like DDSketch.add
        out[f"negatives_and_zeros_{n}"] = mixed
    out["all_zero"] = np.zeros(50)
    out["all_negative"] = -rng.lognormal(0.0, 2.0, size=500)
    return out


# -- the mapping --------------------------------------------------------------------------------------


@pytest.mark.parametrize("accuracy", ACCURACIES)
def test_keys_equal_library_on_random_values(accuracy):
    rng = np.random.default_rng(11)
    values = 10.0 ** rng.uniform(-9.0, 9.0, size=200_000)
    library = LogarithmicMapping(accuracy)
    mapping = LogMapping(accuracy)
    keys = mapping.keys(values)
    assert keys.dtype == np.int64
    expected = np.array([library.key(v) for v in values.tolist()], dtype=np.int64)
    assert np.array_equal(keys, expected)
    unique = np.unique(keys)
    assert np.array_equal(mapping.values(unique), np.array([library.value(int(k)) for k in unique]))


@pytest.mark.parametrize("accuracy", ACCURACIES)
def test_keys_equal_library_at_bin_edges(accuracy):
    library = LogarithmicMapping(accuracy)
    mapping = LogMapping(accuracy)
    ks = np.arange(-3000, 3000)
    # The bin edges gamma**k (as computed several ways) and their float neighbours either side.
    edges = np.concatenate([library.gamma ** ks.astype(float), np.exp2(ks / library._multiplier)])
    edges = edges[np.isfinite(edges) & (edges > library.min_possible)]
    probes = np.concatenate(
        [edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf), [1.0, 2.0, 0.5, library.min_possible * 1.5]]
    )
    expected = np.array([library.key(v) for v in probes.tolist()], dtype=np.int64)
    assert np.array_equal(mapping.keys(probes), expected)


def test_extreme_values_and_zero_threshold_follow_ddsketch_add():
    accuracy = 0.01
    library = LogarithmicMapping(accuracy)
    values = np.array([1e-300, 1e300, library.min_possible, np.nextafter(library.min_possible, 1), 5e-324])
    values = np.concatenate([values, -values, [0.0, -0.0]])
    d = Distribution.from_values(values, accuracy)
    sketch = _library_sketch(values, accuracy)
    assert d.total == values.size == 12
    # min_possible itself and the subnormal count as zero, as in DDSketch.add (val > min_possible).
    assert int(d.counts[d.bins == 0.0][0]) == int(sketch._zero_count) == 6
    for q in np.linspace(0, 1, 33):
        assert d.quantile(q) == sketch.get_quantile_value(q)


def test_mapping_rejects_bad_accuracy():
    for bad in (0.0, 1.0, -0.1, float("nan"), "x"):
        with pytest.raises(ValueError, match="relative_accuracy"):
            LogMapping(bad)
    assert mapping_name(0.01) == "ddsketch:0.01"
    assert log_mapping(0.01) is log_mapping(0.01)


# -- sketches and quantiles ---------------------------------------------------------------------------


@pytest.mark.parametrize("accuracy", (0.01, 0.02))
def test_quantiles_equal_ddsketch_and_within_relative_accuracy_of_exact(accuracy):
    rng = np.random.default_rng(5)
    worst_lower = worst_linear = worst_linear_large = 0.0
    for name, values in _datasets(rng).items():
        d = Distribution.from_values(values, accuracy)
        sketch = _library_sketch(values, accuracy)
        assert d.total == values.size == sketch.count
        for q in (0.0, 0.5, 0.95, 0.99, 1.0):
            got = d.quantile(q)
            want = sketch.get_quantile_value(q)
            assert got == want, (name, q, got, want)
            exact = float(np.quantile(values, q, method="lower"))
            # Values that DDSketch counts as zero (|x| <= min_possible) are exact only in absolute terms.
            if abs(exact) > log_mapping(accuracy).min_possible:
                error = abs(got - exact) / abs(exact)
                assert error <= accuracy * (1 + 1e-12), (name, q, got, exact)
                worst_lower = max(worst_lower, error)
                linear = float(np.quantile(values, q))
                if linear != 0.0:
                    worst_linear = max(worst_linear, abs(got - linear) / abs(linear))
                    if values.size >= 1000:
                        worst_linear_large = max(worst_linear_large, abs(got - linear) / abs(linear))
            else:
                assert got == 0.0
    print(
        f"\nrelative accuracy {accuracy}: max relative error vs method='lower' {worst_lower:.6f}; "
        f"vs numpy's default linear interpolation {worst_linear:.6f} (all n), {worst_linear_large:.6f} "
        "(n >= 1000) (information)"
    )
    assert worst_lower > 0.0  # the comparison did happen


def test_sketch_columns_one_list_per_group_equals_per_group_sketch():
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 400, size=60)
    groups = [np.sort(rng.lognormal(rng.uniform(-2, 5), 1.0, size=s) * rng.choice([-1.0, 1.0], size=s)) for s in sizes]
    groups[3][:5] = 0.0
    groups[3] = np.sort(groups[3])
    values = np.concatenate(groups)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    bins, counts = sketch_columns(starts, values, 0.01)
    assert len(bins) == len(counts) == len(groups)
    for b, c, g in zip(bins.to_pylist(), counts.to_pylist(), groups, strict=True):
        d = Distribution("ddsketch:0.01", np.array(b), np.array(c))
        assert d == Distribution.from_values(g, 0.01)
        assert b == sorted(b) and all(x > 0 for x in c)
        sketch = _library_sketch(g, 0.01)
        for q in (0.5, 0.95, 0.99):
            assert d.quantile(q) == sketch.get_quantile_value(q)


def test_sketch_columns_rejects_bad_input():
    with pytest.raises(ValueError, match="sorted_values"):
        sketch_columns(np.array([0]), np.array([1.0, np.inf]), 0.01)
    with pytest.raises(ValueError, match="sorted_values"):
        sketch_columns(np.array([0]), np.array([2.0, 1.0]), 0.01)
    with pytest.raises(ValueError, match="group_starts"):
        sketch_columns(np.array([0, 0]), np.array([1.0, 2.0]), 0.01)
    with pytest.raises(ValueError, match="relative_accuracy"):
        sketch_columns(np.array([0]), np.array([1.0]), 1.5)
    bins, counts = sketch_columns(np.array([], dtype=np.int64), np.array([]), 0.01)
    assert len(bins) == len(counts) == 0
    # a descent across a group boundary is fine
    bins, _ = sketch_columns(np.array([0, 1]), np.array([5.0, 1.0]), 0.01)
    assert len(bins) == 2


def test_sketch_columns_speed_2m_points():
    rng = np.random.default_rng(3)
    n, n_groups = 2_000_000, 20_000
    values = rng.lognormal(3.0, 1.5, size=n)
    group = np.sort(rng.integers(0, n_groups, size=n))
    order = np.lexsort((values, group))
    sorted_values, sorted_group = values[order], group[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_group[1:] != sorted_group[:-1])))
    sketch_columns(starts, sorted_values, 0.01)  # warm the value table
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        bins, _ = sketch_columns(starts, sorted_values, 0.01)
        best = min(best, time.perf_counter() - t0)
    ns = best / n * 1e9
    print(f"\nsketch_columns: {ns:.1f} ns/point for {n} points in {len(starts)} groups ({len(bins.values)} bins)")
    assert len(bins) == len(starts)
    assert ns < 300  # target < 100 ns/point; loose bound for a shared CI machine


# -- merge ------------------------------------------------------------------------------------------


def test_merge_of_parts_equals_sketch_of_union_in_any_order_and_after_json():
    rng = np.random.default_rng(9)
    values = np.concatenate([rng.lognormal(2, 1, 5000), -rng.lognormal(0, 1, 500), np.zeros(30)])
    rng.shuffle(values)
    whole = Distribution.from_values(values, 0.01)
    for _ in range(20):
        cuts = np.sort(rng.choice(np.arange(1, values.size), size=rng.integers(1, 8), replace=False))
        parts = [Distribution.from_values(p, 0.01) for p in np.split(values, cuts)]
        parts = [Distribution.from_json(json.loads(json.dumps(p.to_json()))) for p in parts]
        order = rng.permutation(len(parts))
        merged = parts[order[0]].merge(*(parts[i] for i in order[1:]))
        assert merged == whole
        assert np.array_equal(merged.bins, whole.bins) and merged.bins.tobytes() == whole.bins.tobytes()
        sketch = DDSketch(0.01)
        for chunk in np.split(values, cuts):
            piece = _library_sketch(chunk, 0.01)
            sketch.merge(piece)
        for q in (0.5, 0.95, 0.99):
            assert merged.quantile(q) == sketch.get_quantile_value(q)


def test_merge_rejects_other_mappings():
    a = Distribution.from_values([1.0, 2.0], 0.01)
    b = Distribution.from_values([1.0, 2.0], 0.02)
    with pytest.raises(ValueError, match="others"):
        a.merge(b)
    h1 = Distribution.from_cumulative_buckets([1, 2, "+Inf"], [1, 2, 3])
    h2 = Distribution.from_cumulative_buckets([1, 5, "+Inf"], [1, 2, 3])
    with pytest.raises(ValueError, match="others"):
        h1.merge(h2)
    with pytest.raises(ValueError, match="others"):
        a.merge(h1)
    assert h1.merge(h1).counts.tolist() == [2, 2, 2]


# -- validation and JSON ------------------------------------------------------------------------------


def test_distribution_validates_and_round_trips_json():
    d = Distribution.from_values([-3.0, 0.0, 1.0, 1.0, 100.0], 0.01)
    assert d.mapping == "ddsketch:0.01" and d.total == 5
    assert Distribution("ddsketch:0.010", d.bins, d.counts) == d  # mapping canonicalised
    text = json.dumps(d.to_json(), allow_nan=False)
    assert Distribution.from_json(json.loads(text)) == d
    with pytest.raises(ValueError):
        d.bins[0] = 1.0  # read-only
    with pytest.raises(ValueError, match="representative"):
        Distribution("ddsketch:0.01", np.array([1.2345]), np.array([1]))
    with pytest.raises(ValueError, match="ascending"):
        Distribution("buckets", np.array([2.0, 1.0]), np.array([1, 1]))
    with pytest.raises(ValueError, match="counts"):
        Distribution("buckets", np.array([1.0]), np.array([-1]))
    with pytest.raises(ValueError, match="mapping"):
        Distribution("tdigest", np.array([1.0]), np.array([1]))
    with pytest.raises(ValueError, match="q"):
        d.quantile(1.5)
    assert math.isnan(Distribution.from_values([], 0.01).quantile(0.5))


def test_distributions_from_columns():
    import pyarrow as pa

    values = np.array([1.0, 2.0, 3.0, 10.0, 20.0])
    bins, counts = sketch_columns(np.array([0, 3]), values, 0.02)
    got = distributions_from_columns(pa.array([mapping_name(0.02)] * 2), bins, counts)
    assert got == [Distribution.from_values(values[:3], 0.02), Distribution.from_values(values[3:], 0.02)]


# -- Prometheus buckets -------------------------------------------------------------------------------

# Worked numbers from Prometheus' own tests (promql/promqltest/testdata/histograms.test, classic
# histograms testhistogram, testhistogram2, testhistogram3 at 50m / 7m, cumulative bucket counts).
PROMETHEUS_CASES = [
    (
        [0.1, 0.2, 1.0, "+Inf"],
        [50, 70, 110, 120],
        {0: 0.0, 0.2: 0.048, 0.5: 0.15, 0.8: 0.72, 1: 1.0},
    ),
    ([-0.2, -0.1, 0.3, "+Inf"], [10, 20, 20, 30], {0: -0.2, 0.2: -0.2, 0.5: -0.15, 0.8: 0.3, 1: 0.3}),
    ([0, 2, 4, 6, "+Inf"], [0, 1, 2, 3, 3], {1 / 6: 1.0, 0.5: 3.0, 5 / 6: 5.0}),
    ([0, 0.1, 0.2, 1.0, "+Inf"], [0, 50, 70, 110, 110], {0: 0.0, 0.25: 0.055, 0.5: 0.125, 0.75: 0.45, 1: 1.0}),
    ([-0.25, -0.2, -0.1, 0.3, "+Inf"], [0, 10, 20, 20, 20], {0: -0.25, 0.25: -0.225, 0.5: -0.2, 0.75: -0.15, 1: -0.1}),
]


@pytest.mark.parametrize(("le", "cumulative", "expected"), PROMETHEUS_CASES)
def test_bucket_quantile_matches_prometheus_worked_numbers(le, cumulative, expected):
    d = Distribution.from_cumulative_buckets(le, cumulative)
    assert d.mapping == BUCKETS
    assert d.counts.tolist() == np.diff(cumulative, prepend=0).tolist()
    for q, want in expected.items():
        assert d.quantile(q) == pytest.approx(want, rel=1e-12, abs=1e-15), q
    assert Distribution.from_json(json.loads(json.dumps(d.to_json(), allow_nan=False))) == d


def test_cumulative_buckets_unsorted_and_errors():
    d = Distribution.from_cumulative_buckets(["+Inf", 1.0, 0.5], [10, 7, 3])
    assert d.bins.tolist() == [0.5, 1.0, math.inf] and d.counts.tolist() == [3, 4, 3]
    with pytest.raises(ValueError, match=r"le=1\.0"):
        Distribution.from_cumulative_buckets([0.5, 1.0, "+Inf"], [5, 4, 6])
    with pytest.raises(ValueError, match="le"):
        Distribution.from_cumulative_buckets([1.0, 1.0], [1, 2])
    with pytest.raises(ValueError, match="cumulative"):
        Distribution.from_cumulative_buckets([1.0], [1.5])
    assert math.isnan(Distribution.from_cumulative_buckets(["+Inf"], [5]).quantile(0.5))  # < 2 buckets
    assert math.isnan(Distribution.from_cumulative_buckets([1.0, "+Inf"], [0, 0]).quantile(0.5))  # no points
