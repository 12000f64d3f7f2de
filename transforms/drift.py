"""Drift statistics between a reference and a current :class:`~transforms.distributions.Distribution`.

Both must share one ``mapping`` (ValueError otherwise). Each point stands at its bin's
representative value (DDSketch: within the sketch's relative accuracy of the raw value; buckets: the
``le`` upper bound), so the statistics are those of the two mapped samples.

- :func:`ks`: two-sample Kolmogorov–Smirnov statistic, ``sup |F_ref - F_cur|`` (0..1) over the union
  of bins; sensitive to a shift anywhere, scale-free, no binning choice. Equals
  ``scipy.stats.ks_2samp(mapped_ref, mapped_cur).statistic``.
- :func:`psi`: Population Stability Index on the standard coarse binning (:func:`coarse_probabilities`:
  ``bins`` buckets whose edges are the reference's quantiles, deciles by default), empty buckets
  floored at ``epsilon`` then renormalised: ``sum((p_cur - p_ref) * ln(p_cur / p_ref))`` (the
  symmetrised KL divergence, nats). Industry rule of thumb (credit-risk model monitoring practice, not
  a law): < 0.1 no significant shift, 0.1–0.25 moderate, > 0.25 significant.
- :func:`js`: Jensen–Shannon distance, base 2 (0..1; bounded and symmetric, no epsilon needed), on the
  same coarse binning. Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

Coarse binning: interior edges are the reference's ``i/bins`` quantiles (``Distribution.quantile``:
the value of the bin holding rank ``q*(total-1)``; non-finite edges dropped; equal edges
deduplicated); buckets are right-closed, ``(-inf, e0], (e0, e1], ..., (e_last, +inf)``, and a sketch
bin is assigned wholly by its representative value.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from transforms.distributions import Distribution

__all__ = ["DRIFT_METHODS", "coarse_edges", "coarse_probabilities", "js", "ks", "psi"]


def _check_pair(reference: Distribution, current: Distribution) -> None:
    if not isinstance(reference, Distribution):
        raise ValueError(f"reference must be a Distribution, got {type(reference).__name__}")
    if not isinstance(current, Distribution):
        raise ValueError(f"current must be a Distribution, got {type(current).__name__}")
    if reference.mapping != current.mapping:
        raise ValueError(f"current: mapping {current.mapping!r} differs from the reference's {reference.mapping!r}")
    if reference.total == 0:
        raise ValueError("reference has no points")
    if current.total == 0:
        raise ValueError("current has no points")


def ks(reference: Distribution, current: Distribution) -> float:
    """Two-sample KS statistic ``sup_x |F_ref(x) - F_cur(x)|`` over the union of bins (0..1)."""
    _check_pair(reference, current)
    grid = np.union1d(reference.bins, current.bins)
    cdf_ref = _cdf(reference, grid)
    cdf_cur = _cdf(current, grid)
    return float(np.max(np.abs(cdf_ref - cdf_cur)))


def _cdf(distribution: Distribution, grid: np.ndarray) -> np.ndarray:
    """Empirical CDF at each grid value: the fraction of points whose bin value <= it."""
    cumulative = np.concatenate(([0], np.cumsum(distribution.counts)))
    return cumulative[np.searchsorted(distribution.bins, grid, side="right")] / distribution.total


def coarse_edges(reference: Distribution, bins: int = 10) -> np.ndarray:
    """The interior bucket edges: the reference's ``i/bins`` quantiles (i = 1..bins-1), finite,
    deduplicated, ascending."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    if reference.total == 0:
        raise ValueError("reference has no points")
    edges = np.array([reference.quantile(i / bins) for i in range(1, bins)], dtype=np.float64)
    return np.unique(edges[np.isfinite(edges)])


def _bucket_probabilities(distribution: Distribution, edges: np.ndarray) -> np.ndarray:
    index = np.searchsorted(edges, distribution.bins, side="left")  # (e[i-1], e[i]] -> i
    mass = np.zeros(edges.size + 1, dtype=np.int64)
    np.add.at(mass, index, distribution.counts)
    return mass / distribution.total


def coarse_probabilities(
    reference: Distribution, current: Distribution, bins: int = 10, epsilon: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(p_ref, p_cur)``: both distributions' probabilities in the coarse buckets (see the module).

    With ``epsilon``, empty buckets are floored at it and both vectors renormalised (as :func:`psi`
    uses them); without, raw probabilities (as :func:`js` uses them).
    """
    _check_pair(reference, current)
    edges = coarse_edges(reference, bins)
    p_ref = _bucket_probabilities(reference, edges)
    p_cur = _bucket_probabilities(current, edges)
    if epsilon is not None:
        if not (isinstance(epsilon, (int, float)) and 0.0 < float(epsilon) < 1.0):
            raise ValueError(f"epsilon must be in (0, 1), got {epsilon!r}")
        p_ref = _floor(p_ref, float(epsilon))
        p_cur = _floor(p_cur, float(epsilon))
    return p_ref, p_cur


def _floor(p: np.ndarray, epsilon: float) -> np.ndarray:
    floored = np.where(p == 0.0, epsilon, p)
    return floored / floored.sum()


def psi(reference: Distribution, current: Distribution, bins: int = 10, epsilon: float = 1e-4) -> float:
    """Population Stability Index (nats, >= 0): ``sum((p_cur - p_ref) * ln(p_cur / p_ref))`` on the
    coarse buckets, empty ones floored at ``epsilon`` and renormalised."""
    p_ref, p_cur = coarse_probabilities(reference, current, bins, epsilon)
    return float(np.sum((p_cur - p_ref) * np.log(p_cur / p_ref)))


def js(reference: Distribution, current: Distribution, bins: int = 10) -> float:
    """Jensen–Shannon distance, base 2 (0 identical .. 1 disjoint), on the coarse buckets."""
    p, q = coarse_probabilities(reference, current, bins)
    m = (p + q) / 2.0
    left, right = _relative_entropy(p, m), _relative_entropy(q, m)
    divergence = (left + right) / math.log(2.0) / 2.0
    return float(math.sqrt(max(divergence, 0.0)))


def _relative_entropy(p: np.ndarray, m: np.ndarray) -> float:
    """``sum(p * ln(p / m))`` over p > 0 (0 ln 0 = 0; m > 0 wherever p > 0)."""
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / m[mask])))


DRIFT_METHODS: dict[str, Callable[..., float]] = {"psi": psi, "ks": ks, "js": js}
"""Drift statistic by the ``method`` name a ``type: drift`` rule gives."""
