"""The ML monitors' scores: from a group's windows and history to one value per rule window.

Drift, anomaly, slo and version_comparison rules (:mod:`transforms.rules.ml_config`) compute a score per
rule window from the group's recent past, then go through the same condition steps as threshold rules
(``for``, hysteresis, ``keep_firing_for``, ``repeat_interval``; :mod:`transforms.rules.engine`). The past a
score needs is kept in the engine's :class:`~transforms.rules.engine.RuleState` ``history``: a JSON-safe,
bounded dict, so the live and streaming runners, which see a few windows per call, give the batch's
alerts (scoring ``w1..wn`` in one call or in consecutive calls is bit-identical).

Selection (what each rule reads, keyed per window by a data key):

- anomaly: the rule's statistic of its metric (as a threshold rule);
- slo: the window sums of the total metric (key ``total``) and of the good or bad metric (``good``/``bad``);
- version_comparison: the statistic per version (key = the ``version_tag`` tag's value; the group
  leaves the version out), or with a ``denominator`` the ratio of the window sums (an error rate);
- drift: the merged distribution (:class:`transforms.distributions.Distribution`) of the metric's
  distribution rows (:data:`airis_mon.schema.DISTRIBUTION_SCHEMA`), per version for a
  ``previous_version`` reference.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airis_mon.routing import matches
from airis_mon.schema import Metric, canonical_tags, tags_from_json
from transforms.rules.config import AnomalyRule, DriftRule, RuleConfig, ScoredRule, SloRule, VersionComparisonRule
from transforms.rules.engine import WindowValue

if TYPE_CHECKING:
    from transforms.distributions import Distribution

__all__ = [
    "BUDGET_METRIC",
    "DistPartial",
    "ScoreWindow",
    "Scored",
    "combine_scored",
    "distribution_metrics",
    "is_distribution_table",
    "score_windows",
    "select_scored",
]

BUDGET_METRIC = "slo_error_budget_remaining"
"""The metric an slo rule stores per window: 1 - bad / allowed bad over the period (a ratio; < 0: spent)."""

_STATS = ("count", "sum", "min", "max", "p50", "p95", "p99")
_LE_SEPARATOR = "\x1f"
_DENOMINATOR = "\x1e"  # data-key prefix of a version_comparison rule's denominator rows


class DistPartial(NamedTuple):
    """One distribution row (one series, one base window) with its data key (version or ``""``)."""

    window_start_ms: int
    window_end_ms: int
    count: int
    mapping: str
    bins: tuple
    counts: tuple
    key: str


class ScoreWindow(NamedTuple):
    """One rule window of a group: data key -> value (a statistic, a sum, or a :class:`Distribution`)."""

    window_start_ms: int
    window_end_ms: int
    data: dict


class Scored(NamedTuple):
    """What scoring gives: per window the value (a score, NaN when unknown) and a sentence, the new history,
    and the points to store (slo: the error budget remaining)."""

    windows: list[WindowValue]
    details: dict[int, str]  # window start ms -> what the score means, for the notification
    history: dict
    points: list[Metric]


def distribution_metrics(rules: Iterable[RuleConfig]) -> frozenset[str]:
    """The metrics whose per-window distributions the rules read (drift rules)."""
    return frozenset(rule.metric for rule in rules if isinstance(rule, DriftRule))


def is_distribution_table(table: pa.Table) -> bool:
    """Whether ``table`` holds distribution rows (else aggregate rows)."""
    return "bins" in table.schema.names


def _versioned(rule: ScoredRule) -> str | None:
    """The tag that tells versions apart, when the rule compares versions."""
    if isinstance(rule, VersionComparisonRule):
        return rule.version_tag
    if isinstance(rule, DriftRule) and rule.reference.type == "previous_version":
        return rule.reference.version_tag
    return None


def _is_histogram(rule: ScoredRule) -> bool:
    return isinstance(rule, DriftRule) and rule.histogram


def _group_and_key(rule: ScoredRule, tags: dict[str, str]) -> tuple[str, str] | None:
    """(group JSON, data key) of a series: the key is the version (rules that compare versions) and, for a
    histogram drift rule, ``"<version>\x1f<le>"``; neither tag is part of the group."""
    if not matches(rule.tags, tags):
        return None
    version_tag = _versioned(rule)
    key = tags.get(version_tag, "") if version_tag else ""
    left_out = {version_tag} if version_tag else set()
    if _is_histogram(rule):
        if "le" not in tags:
            return None
        key = f"{key}{_LE_SEPARATOR}{tags['le']}"
        left_out.add("le")
    if rule.group_by is not None:
        tags = {name: tags.get(name, "") for name in rule.group_by}
    else:
        tags = {name: value for name, value in tags.items() if name not in left_out}
    return json.dumps(tags, sort_keys=True, separators=(",", ":")), key


def _metric_keys(rule: ScoredRule) -> dict[str, str]:
    """Metric name -> data key of the rows it feeds (``""``: the version or nothing)."""
    if isinstance(rule, SloRule):
        total, other = rule.metrics
        return {total: "total", other: "good" if rule.good_metric else "bad"}
    if isinstance(rule, VersionComparisonRule) and rule.denominator:
        return {rule.metric: "", rule.denominator: _DENOMINATOR}
    return {rule.metric: ""}


def select_scored(table: pa.Table, rule: ScoredRule) -> Iterator[tuple[tuple[str, str, str], list]]:
    """The rows of ``table`` a scored rule reads, as ``(group key, partials)``: ``PromPartial``-shaped
    aggregate partials with their data key, or :class:`DistPartial` for drift rules."""
    from transforms.rules.prometheus_semantics import PromPartial
    from transforms.rules.select import rows_of

    wants_distributions = isinstance(rule, DriftRule) and not rule.histogram
    if wants_distributions != is_distribution_table(table):
        return
    by_key: dict[tuple[str, str, str], list] = {}
    for metric, fixed_key in _metric_keys(rule).items():
        selected = rows_of(table, rule, metric)
        if not selected.num_rows:
            continue
        found = {t: _group_and_key(rule, tags_from_json(t)) for t in pc.unique(selected.column("tags")).to_pylist()}
        if wants_distributions:
            names = ("window_start_ms", "window_end_ms", "count", "mapping", "bins", "counts")
        else:
            names = ("window_start_ms", "window_end_ms", *_STATS)
        columns = [selected.column(c).to_pylist() for c in ("source", "tags", *names)]
        for source, tags, *values in zip(*columns, strict=True):
            hit = found[tags]
            if hit is None:
                continue
            group, version = hit
            key = version if not fixed_key else fixed_key + version if fixed_key == _DENOMINATOR else fixed_key
            if wants_distributions:
                start, end, count, mapping, bins, counts = values
                part = DistPartial(start, end, count, mapping, tuple(bins), tuple(counts), key)
            else:
                part = PromPartial(*values, key)
            by_key.setdefault((rule.name, source, group), []).append(part)
    yield from by_key.items()


def _statistic(rows: list, aggregation: str, window_ms: int) -> float:
    """A window statistic over partial rows, as :func:`transforms.rules.select.combine_windows` combines."""
    count = sum(r.count for r in rows)
    total = math.fsum(r.sum for r in rows)
    if aggregation == "count":
        return float(count)
    if aggregation == "sum":
        return total
    if aggregation == "rate":
        return total / (window_ms / 1000)
    if aggregation == "mean":
        return total / count if count else math.nan
    if aggregation == "min":
        return min(r.min for r in rows)
    if aggregation == "max":
        return max(r.max for r in rows)
    return max(getattr(r, aggregation) for r in rows)


def combine_scored(parts: Iterable, rule: ScoredRule, window_ms: int) -> list[ScoreWindow]:
    """Fold partial rows into the rule's windows (ordered): per data key, a statistic (anomaly,
    version_comparison: ``[count, statistic]``), a sum (slo) or a merged distribution (drift)."""
    buckets: dict[int, dict[str, list]] = {}
    for part in parts:
        start = part.window_start_ms - part.window_start_ms % window_ms
        buckets.setdefault(start, {}).setdefault(part.key, []).append(part)
    windows = []
    for start in sorted(buckets):
        if _is_histogram(rule):
            windows.append(ScoreWindow(start, start + window_ms, _histograms(buckets[start])))
            continue
        data: dict = {}
        for key, rows in sorted(buckets[start].items()):
            if isinstance(rule, DriftRule):
                from transforms.distributions import Distribution

                merged = [Distribution(r.mapping, np.asarray(r.bins, dtype=np.float64),
                                       np.asarray(r.counts, dtype=np.int64)) for r in rows]  # fmt: skip
                data[key] = merged[0].merge(*merged[1:]) if len(merged) > 1 else merged[0]
            elif isinstance(rule, SloRule):
                data[key] = math.fsum(r.sum for r in rows)
            elif key.startswith(_DENOMINATOR):
                continue  # folded into its version's ratio below
            elif isinstance(rule, VersionComparisonRule) and rule.denominator:
                below = math.fsum(r.sum for r in buckets[start].get(_DENOMINATOR + key, []))
                ratio = math.fsum(r.sum for r in rows) / below if below else math.nan
                data[key] = [sum(r.count for r in rows), ratio]
            else:
                data[key] = [sum(r.count for r in rows), _statistic(rows, rule.aggregation, window_ms)]
        windows.append(ScoreWindow(start, start + window_ms, data))
    return windows


def _histograms(rows_by_key: dict[str, list]) -> dict:
    """version -> the window's :class:`Distribution` of a histogram's bucket increases (summed over the
    group's series and base windows, per ``le``); a version whose buckets do not nest (series with different
    bucket layouts) has none."""
    from transforms.distributions import Distribution

    by_version: dict[str, dict[float, float]] = {}
    for key, rows in rows_by_key.items():
        version, le = key.rsplit(_LE_SEPARATOR, 1)
        try:
            bound = float(le)
        except ValueError:
            continue
        by_version.setdefault(version, {})[bound] = math.fsum(r.sum for r in rows)
    data = {}
    for version, cumulative in sorted(by_version.items()):
        bounds = sorted(cumulative)
        try:
            data[version] = Distribution.from_cumulative_buckets(bounds, [cumulative[b] for b in bounds])
        except ValueError:
            continue
    return data


def score_windows(rule: ScoredRule, group: str, windows: list[ScoreWindow], history: dict | None) -> Scored:
    """Score ``windows`` (ordered, not yet evaluated) of one group from ``history`` (None: the start)."""
    scorer = {AnomalyRule: _score_anomaly, SloRule: _score_slo, DriftRule: _score_drift,
              VersionComparisonRule: _score_versions}[type(rule)]  # fmt: skip
    return scorer(rule, group, windows, dict(history or {}))


# -- anomaly ------------------------------------------------------------------------------------------------


def _score_anomaly(rule: AnomalyRule, group: str, windows: list[ScoreWindow], history: dict) -> Scored:
    from transforms.rules.anomaly import AnomalySpec, score_values

    spec = AnomalySpec(detector=rule.detector, window=rule.history, min_history=rule.min_history,
                       seasonality=rule.seasonality)  # fmt: skip
    starts = np.array([w.window_start_ms for w in windows], dtype=np.int64)
    values = np.array([w.data[""][1] for w in windows], dtype=np.float64)
    scores, history = score_values(spec, starts, values, history or None)
    season = f" for the same {rule.seasonality.replace('_', ' ')}" if rule.seasonality else ""
    details = {
        int(start): f"{rule.metric} {rule.aggregation} {value:.6g} scored {score:.2f} by {rule.detector}{season}"
        for start, value, score in zip(starts, values, scores, strict=True)
    }
    out = [WindowValue(w.window_start_ms, w.window_end_ms, float(s)) for w, s in zip(windows, scores, strict=True)]
    return Scored(out, details, history, [])


# -- slo ------------------------------------------------------------------------------------------------------


def _score_slo(rule: SloRule, group: str, windows: list[ScoreWindow], history: dict) -> Scored:
    from transforms.rules.slo import BurnWindow, evaluate_slo

    window_ms = windows[0].window_end_ms - windows[0].window_start_ms if windows else 0
    if not windows:
        return Scored([], {}, history, [])
    starts = np.array([w.window_start_ms for w in windows], dtype=np.int64)
    total = np.array([w.data.get("total", 0.0) for w in windows], dtype=np.float64)
    if rule.good_metric:
        good = np.array([w.data.get("good", 0.0) for w in windows], dtype=np.float64)
    else:
        good = total - np.array([w.data.get("bad", 0.0) for w in windows], dtype=np.float64)
    good = np.clip(good, 0.0, total)  # a bad count above the total (mismatched scrapes) counts as all bad
    burn_windows = [BurnWindow(b.long, b.short, b.burn_rate) for b in rule.burn_windows]
    if history and history.get("window_ms") != window_ms:
        history = {}  # the rule's window changed since the history was kept: start over
    result, history = evaluate_slo(starts, good, total, window_ms, rule.objective, rule.period, burn_windows,
                                   history or None)  # fmt: skip
    tags = {**json.loads(group), "rule": rule.name}
    tags_json = canonical_tags(tags)
    details, points, out = {}, [], []
    for i, window in enumerate(windows):
        pairs = ", ".join(
            f"{_span(b.long)} {result.long_burn[i, j]:.3g}x / {_span(b.short)} {result.short_burn[i, j]:.3g}x"
            for j, b in enumerate(rule.burn_windows)
        )
        budget = float(result.budget_remaining[i])
        details[window.window_start_ms] = (
            f"error budget burn {pairs} (objective {rule.objective:.6g} over {_span(rule.period)}; "
            f"budget remaining {budget:.1%})"
        )
        if not math.isnan(budget):
            points.append(Metric(window.window_start_ms, "airis_mon", BUDGET_METRIC, budget, "ratio", tags_json))
        out.append(WindowValue(window.window_start_ms, window.window_end_ms, float(result.score[i])))
    return Scored(out, details, history, points)


def _span(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# -- drift ----------------------------------------------------------------------------------------------------


def _dist_json(distribution: Distribution) -> dict:
    return distribution.to_json()


def _merge(distributions: list[Distribution]) -> Distribution | None:
    if not distributions:
        return None
    return distributions[0].merge(*distributions[1:]) if len(distributions) > 1 else distributions[0]


def _score_drift(rule: DriftRule, group: str, windows: list[ScoreWindow], history: dict) -> Scored:
    from transforms.distributions import Distribution
    from transforms.drift import DRIFT_METHODS

    reference = rule.reference
    measure = DRIFT_METHODS[rule.method]
    details, out = {}, []
    # kept: [[window start ms, version, distribution json], ...] in time order
    kept = [list(item) for item in history.get("kept", [])]
    fixed = history.get("fixed")  # fixed reference: the merged baseline so far (json) or None
    versions = list(history.get("versions", []))  # previous_version: versions in order of first appearance
    frozen = history.get("frozen")  # previous_version: the previous version's reference (json) or None
    for window in windows:
        start = window.window_start_ms
        if reference.type == "previous_version":
            seen = [key for key in window.data if key not in versions]
            for key in sorted(seen):
                if versions:  # a new version: the current one's recent windows become the reference
                    ref_parts = [Distribution.from_json(d) for _, v, d in kept if v == versions[-1]]
                    merged = _merge(ref_parts)
                    frozen = None if merged is None else {"version": versions[-1], "distribution": _dist_json(merged)}
                versions.append(key)
            current_version = versions[-1] if versions else ""
            current = window.data.get(current_version)
            ref = None if frozen is None else Distribution.from_json(frozen["distribution"])
            label = f"version {frozen['version']}" if frozen else "the previous version"
        else:
            current_version = ""
            current = window.data.get("")
            if reference.type == "rolling":
                low, high = start - reference.offset * 1000 - reference.length * 1000, start - reference.offset * 1000
                ref = _merge([Distribution.from_json(d) for s, _, d in kept if low <= s < high])
                label = f"the {_span(reference.length)} before" + (
                    f" ({_span(reference.offset)} earlier)" if reference.offset else ""
                )
            else:
                in_baseline = reference.start_ms <= start and window.window_end_ms <= reference.end_ms
                ref = None if fixed is None or in_baseline else Distribution.from_json(fixed)
                if in_baseline and current is not None:
                    fixed = _dist_json(_merge([Distribution.from_json(fixed), current]) if fixed else current)
                label = "the baseline period"
        score = math.nan
        if current is not None and ref is not None and current.total >= rule.min_count and ref.total >= rule.min_count:
            score = float(measure(ref, current) if rule.method == "ks" else measure(ref, current, bins=rule.bins))
        details[start] = (
            f"{rule.metric} distribution {rule.method.upper()} {score:.3f} vs {label}"
            + (f" (version {current_version})" if current_version else "")
            + (f": {current.total} points vs {ref.total}" if current is not None and ref is not None else "")
        )
        out.append(WindowValue(start, window.window_end_ms, score))
        if current is not None and reference.type != "fixed":
            kept.append([start, current_version, _dist_json(current)])
        keep_ms = (reference.offset + reference.length) * 1000
        kept = [item for item in kept if item[0] >= start + (window.window_end_ms - start) - keep_ms]
    history = {"kept": kept, "fixed": fixed, "versions": versions[-3:], "frozen": frozen}
    return Scored(out, details, history, [])


# -- version comparison -------------------------------------------------------------------------------------


def _score_versions(rule: VersionComparisonRule, group: str, windows: list[ScoreWindow], history: dict) -> Scored:
    first_seen = dict(history.get("first_seen", {}))  # version -> first window start ms
    order = list(history.get("order", []))  # versions, in order of first appearance (the last few)
    recent = {int(start): data for start, data in history.get("recent", [])}  # window start -> {version: [n, v]}
    details, out = {}, []
    offset_ms = rule.match_offset * 1000
    measured = f"{rule.metric}/{rule.denominator}" if rule.denominator else f"{rule.metric} {rule.aggregation}"
    for window in windows:
        start = window.window_start_ms
        for version in sorted(v for v in window.data if v not in first_seen):
            first_seen[version] = start
            order.append(version)
        present = [v for v in order if v in window.data and window.data[v][0] >= rule.min_count]
        score, detail = math.nan, ""
        if len(order) >= 2 and present and present[-1] == order[-1]:
            current, previous = order[-1], order[-2]
            if start - first_seen[current] < rule.compare_for * 1000:
                value = window.data[current][1]
                matched, where = None, ""
                if previous in window.data and window.data[previous][0] >= rule.min_count:
                    matched, where = window.data[previous][1], "in the same window"
                else:
                    earlier = recent.get(start - offset_ms, {}).get(previous)
                    if earlier is not None and earlier[0] >= rule.min_count:
                        matched, where = earlier[1], f"{_span(rule.match_offset)} earlier"
                if matched is not None and not math.isnan(matched) and not math.isnan(value):
                    change = (value - matched) / abs(matched) if matched else (math.inf if value else 0.0)
                    score = change if rule.higher_is_worse else -change
                    verdict = "worse" if score > 0 else "better"
                    detail = (
                        f"{rule.version_tag} {current} {measured} {value:.6g} is "
                        f"{abs(change):.0%} {'higher' if change > 0 else 'lower'} ({verdict}) than {rule.version_tag} "
                        f"{previous} ({matched:.6g}, {where})"
                    )
        details[start] = detail or f"no matched window of a previous {rule.version_tag}"
        out.append(WindowValue(start, window.window_end_ms, score))
        recent[start] = window.data
        recent = {s: d for s, d in recent.items() if s > start - offset_ms - 1}
    keep = set(order[-3:])
    history = {
        "first_seen": {v: s for v, s in first_seen.items() if v in keep},
        "order": order[-3:],
        "recent": sorted([s, {v: x for v, x in d.items() if v in keep}] for s, d in recent.items()),
    }
    return Scored(out, details, history, [])


def rows_for(rule: RuleConfig) -> bool:
    """Whether the batch runner hands this rule its rows as partial lists (not NumPy columns)."""
    from transforms.rules.config import PrometheusRule

    return isinstance(rule, PrometheusRule | ScoredRule)
