"""transforms.drift against scipy on the same samples.

KS: equal to ``scipy.stats.ks_2samp`` on the samples replaced by their bins' representative values
(1e-12); against ks_2samp on the raw samples it differs by at most the mass that the sketch moves
across a CDF step, measured here (printed) and bounded by KS_RAW_TOLERANCE.
PSI / JS: equal to scipy's entropy / jensenshannon on the same coarse probabilities, which are
themselves checked against an independent computation from the mapped samples.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon

from transforms.distributions import Distribution, log_mapping
from transforms.drift import DRIFT_METHODS, coarse_edges, coarse_probabilities, js, ks, psi

ACCURACY = 0.01
# Measured max |ks(sketches) - ks_2samp(raw)| over the cases below with n >= 200: 0.0058 (printed);
# relative accuracy 1 % moves each point by <= 1 % of its value, so the bound depends on how much
# mass lies within 1 % of the CDF's largest gap.
KS_RAW_TOLERANCE = 0.01


def _cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(21)
    return [
        ("normal_vs_shifted", rng.normal(10, 2, 4000), rng.normal(11, 2, 3000)),
        ("normal_vs_same_law", rng.normal(10, 2, 4000), rng.normal(10, 2, 4000)),
        ("centered_normal_vs_scaled", rng.normal(0, 1, 2000), rng.normal(0, 1.5, 2500)),
        ("lognormal_latency_shift", rng.lognormal(3, 1, 5000), rng.lognormal(3.3, 1, 5000)),
        ("uniform_scores", rng.uniform(0, 1, 1000), rng.beta(2, 5, 1000)),
        ("disjoint", rng.uniform(1, 2, 500), rng.uniform(10, 20, 700)),
        ("tiny", np.array([3.0]), np.array([4.0, 5.0])),
        ("tiny_same", np.array([1.0, 2.0]), np.array([1.0, 2.0])),
        ("one_bin_reference", np.full(100, 7.0), rng.normal(7, 1, 100)),
        ("with_zeros", np.concatenate([np.zeros(50), rng.exponential(1, 200)]), rng.exponential(1.2, 300)),
    ]


CASES = _cases()
IDS = [c[0] for c in CASES]


def _mapped(values: np.ndarray) -> np.ndarray:
    return log_mapping(ACCURACY).signed_values(values)


@pytest.mark.parametrize(("name", "ref", "cur"), CASES, ids=IDS)
def test_ks_equals_scipy_on_mapped_samples(name, ref, cur):
    a, b = Distribution.from_values(ref, ACCURACY), Distribution.from_values(cur, ACCURACY)
    want = st.ks_2samp(_mapped(ref), _mapped(cur)).statistic
    assert ks(a, b) == pytest.approx(want, abs=1e-12)
    assert ks(a, a) == 0.0


def test_ks_against_raw_samples_within_measured_tolerance():
    worst = 0.0
    for name, ref, cur in CASES:
        if min(ref.size, cur.size) < 200:
            continue
        got = ks(Distribution.from_values(ref, ACCURACY), Distribution.from_values(cur, ACCURACY))
        raw = st.ks_2samp(ref, cur).statistic
        worst = max(worst, abs(got - raw))
        assert abs(got - raw) <= KS_RAW_TOLERANCE, name
    print(f"\nmax |ks(sketch) - ks_2samp(raw)| at relative accuracy {ACCURACY}: {worst:.5f}")


@pytest.mark.parametrize(("name", "ref", "cur"), CASES, ids=IDS)
def test_coarse_probabilities_match_independent_binning(name, ref, cur):
    a, b = Distribution.from_values(ref, ACCURACY), Distribution.from_values(cur, ACCURACY)
    mapped_ref, mapped_cur = _mapped(ref), _mapped(cur)
    edges = np.unique([np.quantile(mapped_ref, i / 10, method="lower") for i in range(1, 10)])
    assert np.array_equal(coarse_edges(a, 10), edges)
    p_ref = np.bincount(np.searchsorted(edges, mapped_ref, side="left"), minlength=edges.size + 1) / ref.size
    p_cur = np.bincount(np.searchsorted(edges, mapped_cur, side="left"), minlength=edges.size + 1) / cur.size
    got_ref, got_cur = coarse_probabilities(a, b, 10)
    assert np.allclose(got_ref, p_ref, rtol=0, atol=1e-15) and np.allclose(got_cur, p_cur, rtol=0, atol=1e-15)
    floored_ref, floored_cur = coarse_probabilities(a, b, 10, epsilon=1e-4)
    assert floored_ref.sum() == pytest.approx(1.0) and (floored_cur > 0).all()


@pytest.mark.parametrize(("name", "ref", "cur"), CASES, ids=IDS)
@pytest.mark.parametrize("bins", [10, 4, 1])
def test_psi_and_js_equal_scipy_on_the_same_probabilities(name, ref, cur, bins):
    a, b = Distribution.from_values(ref, ACCURACY), Distribution.from_values(cur, ACCURACY)
    p, q = coarse_probabilities(a, b, bins, epsilon=1e-4)
    want_psi = st.entropy(q, p) + st.entropy(p, q)
    assert psi(a, b, bins=bins) == pytest.approx(want_psi, rel=1e-12, abs=1e-15)
    p, q = coarse_probabilities(a, b, bins)
    assert js(a, b, bins=bins) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12, abs=1e-12)
    assert psi(a, a, bins=bins) == 0.0 and js(a, a, bins=bins) == 0.0


def test_drift_grows_with_the_shift():
    rng = np.random.default_rng(4)
    ref = Distribution.from_values(rng.normal(100, 10, 20_000), ACCURACY)
    scores = {m: [] for m in DRIFT_METHODS}
    for shift in (0.0, 2.0, 5.0, 10.0, 20.0):
        cur = Distribution.from_values(rng.normal(100 + shift, 10, 20_000), ACCURACY)
        for m, f in DRIFT_METHODS.items():
            scores[m].append(f(ref, cur))
    for m, values in scores.items():
        assert values == sorted(values), m
    assert scores["psi"][0] < 0.1 < scores["psi"][-1]  # the rule-of-thumb bands separate no shift from 2 sigma
    assert scores["psi"][-1] > 0.25


def test_disjoint_extremes():
    ref = Distribution.from_values(np.linspace(1, 2, 500), ACCURACY)
    cur = Distribution.from_values(np.linspace(50, 60, 500), ACCURACY)
    assert ks(ref, cur) == 1.0
    # all of cur lies above the reference's top decile edge: the last bucket holds all of cur and the
    # reference mass above the bin holding its 0.9 rank (<= 10 %; the bins are 2 % wide)
    p, q = coarse_probabilities(ref, cur)
    assert q[-1] == 1.0 and 0.0 < p[-1] <= 0.1


def test_prometheus_buckets_ks():
    a = Distribution.from_cumulative_buckets([0.1, 0.5, 1, 5, "+Inf"], [10, 40, 70, 95, 100])
    b = Distribution.from_cumulative_buckets([0.1, 0.5, 1, 5, "+Inf"], [2, 20, 50, 90, 100])
    samples_a = np.repeat(a.bins, a.counts)
    samples_b = np.repeat(b.bins, b.counts)
    assert ks(a, b) == pytest.approx(st.ks_2samp(samples_a, samples_b).statistic, abs=1e-12)
    p, q = coarse_probabilities(a, b, 4, epsilon=1e-4)
    assert psi(a, b, 4) == pytest.approx(st.entropy(p, q) + st.entropy(q, p), rel=1e-12)


def test_bad_input():
    a = Distribution.from_values([1.0, 2.0], 0.01)
    with pytest.raises(ValueError, match="current"):
        ks(a, Distribution.from_values([1.0, 2.0], 0.02))
    with pytest.raises(ValueError, match="reference"):
        psi(Distribution.from_values([], 0.01), a)
    with pytest.raises(ValueError, match="bins"):
        js(a, a, bins=0)
    with pytest.raises(ValueError, match="epsilon"):
        psi(a, a, epsilon=0.0)
    with pytest.raises(ValueError, match="current"):
        ks(a, [1.0])


def test_chunked_merges_through_json_give_bit_identical_statistics():
    rng = np.random.default_rng(8)
    ref_values, cur_values = rng.lognormal(2, 1, 6000), rng.lognormal(2.2, 1.1, 6000)
    whole_ref = Distribution.from_values(ref_values, ACCURACY)
    whole_cur = Distribution.from_values(cur_values, ACCURACY)
    expected = {m: f(whole_ref, whole_cur) for m, f in DRIFT_METHODS.items()}
    for _ in range(10):
        merged = []
        for values in (ref_values, cur_values):
            cuts = np.sort(rng.choice(np.arange(1, values.size), size=rng.integers(1, 10), replace=False))
            state = None
            for chunk in np.split(values, cuts):
                part = Distribution.from_values(chunk, ACCURACY)
                state = part if state is None else Distribution.from_json(json.loads(json.dumps(state.to_json())))
                state = state if state is part else state.merge(part)
            merged.append(state)
        for m, f in DRIFT_METHODS.items():
            assert f(*merged) == expected[m], m
