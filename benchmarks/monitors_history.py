"""A labelled metric history for the ML monitors: known drifts, seasonal anomalies, burn episodes and
version regressions, from a seed (a script, not data).

    >>> history = generate(days=28, seed=7)  # doctest: +SKIP
    >>> history.points        # pyarrow Table, airis_mon.schema.METRIC_SCHEMA  # doctest: +SKIP
    >>> history.incidents     # the labels: Incident(monitor, group, start_ms, end_ms, ...)  # doctest: +SKIP

One-minute points (like scrapes) from :data:`T0` (Monday 2026-11-02 00:00 UTC) for ``days`` days, for
three models (``fraud``, ``churn``, ``ranker``) and three endpoints (``search``, ``checkout``,
``recommend``). Each monitor type reads its own series, so an incident of one type cannot make another
type fire:

- **drift** (``model_score``, source ``gateway``, tags ``model_name``): :data:`SCORES_PER_MINUTE` scores a
  minute from a stationary Beta distribution per model. An incident changes the distribution from a
  minute for 3 to 6 h: ``mean_shift`` (logit + 0.8), ``variance`` (logit spread x 2 about its centre)
  or ``mixture`` (35 % of the scores from a Beta on the other side). The first :data:`DRIFT_WARMUP_DAYS`
  days are clean (a rolling reference of the previous day needs them); incidents of a model start every
  3 days, at least 2 days apart (the previous day, a rolling reference, is clean when one starts).
- **anomaly** (``inference_latency``, source ``gateway``, tags ``endpoint_name``, ms): a daily cycle,
  lowest at 03:00 (:data:`PROFILE` x the endpoint's scale) and highest at 12:00, times an hourly
  factor (lognormal, sigma 0.03) and per-minute noise (lognormal, sigma 0.08). Incidents after
  :data:`ANOMALY_WARMUP_DAYS` days (a per-hour-of-day baseline needs a week of each hour):
  ``seasonal`` (03:00-05:00 at the noon level: normal for the day, abnormal for the hour; only a
  seasonal baseline catches it) and ``spike`` (x 2.5 to 3.5 for 60 to 90 min from any minute).
- **slo** (``requests`` and ``request_errors``, source ``gateway``, tags ``endpoint_name``, delta counts
  per minute): Poisson traffic with a daily cycle, errors binomial at a base burn rate of 0.1 (ratio
  0.1 x (1 - :data:`SLO_OBJECTIVE`)). Incidents: ``fast_burn`` (1 h at a burn rate of 20 to 30: 2.8 to
  4.2 % of a 30-day budget in 1 h, above the workbook's 14.4) and ``slow_burn`` (6 h at a burn rate of
  9 to 11: 7.5 to 9 % in 6 h, above the workbook's 6). Decoys (:attr:`History.decoys`, not incidents,
  below the thresholds of both workbook pairs): ``blip`` (4 min at burn rate 40) and ``simmer`` (2 h at
  burn rate 4).
- **version_comparison** (``inference_latency``, source ``tensorflow_serving``, tags ``model_name``,
  ``model_version``, ``environment``): the same daily cycle per model; every
  :data:`VERSION_EVERY_DAYS` days (the first on day 3) a model gets a new ``model_version``: by a full
  switch or a 6 h canary (both versions serve, then the new one alone). Changes alternate between
  ``worse`` (p95 x 1.35 to 1.6: an incident, from the change to 1 day after the full switch, the span a
  comparison with the same hour the day before covers) and ``not_worse`` (x 0.92 to 1.05: a decoy that
  must not alert).

Labels and scoring (``python -m benchmarks.monitors``): an incident (monitor type, group, ``[start_ms,
end_ms)``) is *detected* when an alert episode of a rule of that type and the same group triggers
(its ``trigger`` notification's ``timestamp_ms``) in ``[start_ms, end_ms + GRACE_MS[monitor]]``; the
first such trigger gives the *detection delay* ``trigger - start_ms``. A triggered episode is a *true
positive* when it matches some incident that way, else a *false positive*. *precision* = true-positive
episodes / triggered episodes; *recall* = detected incidents / incidents. ``group`` is the canonical
JSON of the group tags (``{"model_name":"fraud"}``), as the rule engine names groups.

Deterministic: the same ``(days, seed)`` gives the same table and labels, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from airis_mon.schema import METRIC_SCHEMA, canonical_tags

__all__ = [
    "ANOMALY_WARMUP_DAYS",
    "DRIFT_WARMUP_DAYS",
    "ENDPOINTS",
    "GRACE_MS",
    "MINUTE_MS",
    "MODELS",
    "MONITORS",
    "PROFILE",
    "SCORES_PER_MINUTE",
    "SLO_OBJECTIVE",
    "T0",
    "VERSION_EVERY_DAYS",
    "History",
    "Incident",
    "generate",
    "hour_profile",
    "mixture_beta",
    "spread_centre",
]

T0 = 1_793_577_600_000  # 2026-11-02T00:00:00Z, a Monday
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MODELS = ("fraud", "churn", "ranker")
ENDPOINTS = ("search", "checkout", "recommend")
MONITORS = ("drift", "anomaly", "slo", "version_comparison")
SCORES_PER_MINUTE = 10
DRIFT_WARMUP_DAYS = 2
ANOMALY_WARMUP_DAYS = 8
VERSION_EVERY_DAYS = 4
SLO_OBJECTIVE = 0.999
BASE_BURN = 0.1
GRACE_MS = {"drift": 3 * HOUR_MS, "anomaly": HOUR_MS, "slo": HOUR_MS, "version_comparison": HOUR_MS}
"""How long after an incident's end a trigger still counts as detecting it, per monitor type (ms)."""

#: Latency by hour of day (relative; x the series' scale): lowest at 03:00, highest at 12:00.
PROFILE = ((0, 0.80), (3, 0.50), (8, 1.10), (12, 1.50), (17, 1.30), (21, 1.00), (24, 0.80))
_BETA = {"fraud": (2.0, 8.0), "churn": (3.0, 3.5), "ranker": (5.0, 2.0)}
_ENDPOINT_SCALE = {"search": 80.0, "checkout": 120.0, "recommend": 60.0}
_MODEL_SCALE = {"fraud": 30.0, "churn": 45.0, "ranker": 25.0}
_TRAFFIC = {"search": 1000.0, "checkout": 400.0, "recommend": 700.0}  # requests per minute at the daily mean


@dataclass(frozen=True)
class Incident:
    """One labelled incident (or decoy): what happened to which group, when (epoch ms, end exclusive).

    ``monitor``: the rule type that should catch it; ``group``: canonical JSON of the group tags;
    ``kind``: ``mean_shift``, ``variance``, ``mixture``, ``seasonal``, ``spike``, ``fast_burn``,
    ``slow_burn``, ``blip``, ``simmer``, ``worse``, ``not_worse``; ``magnitude``: the logit shift or
    spread factor or mixture weight (drift), the latency factor (anomaly, version_comparison: the new
    version's over the old one's), the burn rate (slo); ``detail``: e.g. the versions.
    """

    monitor: str
    group: str
    start_ms: int
    end_ms: int
    kind: str
    magnitude: float
    detail: str = ""


@dataclass(frozen=True)
class History:
    """The generated points (:data:`~airis_mon.schema.METRIC_SCHEMA`, sorted by series then time), the
    incidents (the labels), the decoys (harmless changes that must not alert) and the span (epoch ms)."""

    points: pa.Table
    incidents: tuple[Incident, ...]
    decoys: tuple[Incident, ...]
    start_ms: int
    end_ms: int
    seed: int = 0
    days: int = 0
    series: dict = field(default_factory=dict)  # (source, name, tags json) -> number of points


def hour_profile(minutes: np.ndarray) -> np.ndarray:
    """The relative latency level of each minute (minutes since :data:`T0`, a midnight) by :data:`PROFILE`."""
    hours = (np.asarray(minutes) % 1440) / 60.0
    knots = np.array(PROFILE, dtype=np.float64)
    return np.interp(hours, knots[:, 0], knots[:, 1])


def _group(name: str, value: str) -> str:
    return canonical_tags({name: value})


def _starts(rng: np.random.Generator, first_day: float, days: int, every_days: float, length_min: int,
            spread_days: float = 1.0) -> list[int]:  # fmt: skip
    """Incident start minutes: one per ``every_days`` from ``first_day``, at a random minute of the slot's
    first ``spread_days`` (so consecutive starts are at least ``every_days - spread_days`` apart), ending an
    hour before the data ends at the latest."""
    out = []
    day = first_day
    while True:
        slot_start = int(day * 1440)
        slot_end = min(int((day + spread_days) * 1440), days * 1440 - length_min - 60)
        if slot_end <= slot_start:
            return out
        out.append(int(rng.integers(slot_start, slot_end)))
        day += every_days


def mixture_beta(model: str) -> tuple[float, float]:
    """The Beta parameters of a ``mixture`` drift's other component: on the other side of the model's."""
    a, b = _BETA[model]
    return (b + 6, a) if a < b else (b, a + 6)


def spread_centre(model: str) -> float:
    """The logit a ``variance`` drift spreads the scores about: ``log(a / b)`` of the model's Beta."""
    a, b = _BETA[model]
    return float(np.log(a / b))


def _logit(x: np.ndarray) -> np.ndarray:
    return np.log(x) - np.log1p(-x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _drift(rng: np.random.Generator, days: int) -> Iterator[tuple[str, str, np.ndarray, np.ndarray, list]]:
    minutes = days * 1440
    kinds = ("mean_shift", "variance", "mixture")
    for index, model in enumerate(MODELS):
        a, b = _BETA[model]
        scores = rng.beta(a, b, size=(minutes, SCORES_PER_MINUTE))
        labels = []
        starts = _starts(rng, DRIFT_WARMUP_DAYS + 0.2 * index, days, 3.0, 360)
        for number, start in enumerate(starts):
            kind = kinds[(number + index) % 3]
            length = int(rng.integers(180, 361))
            rows = slice(start, start + length)
            block = scores[rows]
            if kind == "mean_shift":
                magnitude = 0.8
                block = _sigmoid(_logit(block) + magnitude)
            elif kind == "variance":
                magnitude = 2.0
                centre = spread_centre(model)
                block = _sigmoid((_logit(block) - centre) * magnitude + centre)
            else:
                magnitude = 0.35
                other = rng.beta(*mixture_beta(model), size=block.shape)
                block = np.where(rng.random(block.shape) < magnitude, other, block)
            scores[rows] = block
            labels.append(Incident("drift", _group("model_name", model), T0 + start * MINUTE_MS,
                                   T0 + (start + length) * MINUTE_MS, kind, magnitude))  # fmt: skip
        offsets = np.arange(SCORES_PER_MINUTE, dtype=np.int64) * (MINUTE_MS // SCORES_PER_MINUTE)
        timestamps = (T0 + np.arange(minutes, dtype=np.int64)[:, None] * MINUTE_MS + offsets[None, :]).ravel()
        yield "gateway", canonical_tags({"model_name": model}), timestamps, scores.ravel(), labels


def _anomaly(rng: np.random.Generator, days: int) -> Iterator[tuple[str, np.ndarray, np.ndarray, list]]:
    minutes = np.arange(days * 1440)
    for index, endpoint in enumerate(ENDPOINTS):
        scale = _ENDPOINT_SCALE[endpoint]
        hourly = rng.lognormal(0.0, 0.03, size=days * 24)
        values = scale * hour_profile(minutes) * np.repeat(hourly, 60) * rng.lognormal(0.0, 0.08, size=minutes.size)
        labels = []
        noon = scale * hour_profile(np.array([720]))[0]
        first = ANOMALY_WARMUP_DAYS + index / len(ENDPOINTS)
        for number, start in enumerate(_starts(rng, first, days, 2.0, 180)):
            if number % 2 == 0:  # the next 03:00-05:00: the noon level at night
                day = -(-start // 1440)
                start = day * 1440 + 180
                if start + 180 > days * 1440:
                    continue
                length, kind = 120, "seasonal"
                magnitude = float(noon / (scale * hour_profile(np.array([start]))[0]))
                values[start : start + length] = (noon * np.repeat(hourly[start // 60 : (start + length) // 60], 60)
                                                  * rng.lognormal(0.0, 0.08, size=length))  # fmt: skip
            else:
                length, kind = int(rng.integers(60, 91)), "spike"
                magnitude = float(rng.uniform(2.5, 3.5))
                values[start : start + length] *= magnitude
            labels.append(Incident("anomaly", _group("endpoint_name", endpoint), T0 + start * MINUTE_MS,
                                   T0 + (start + length) * MINUTE_MS, kind, round(magnitude, 4)))  # fmt: skip
        yield canonical_tags({"endpoint_name": endpoint}), T0 + minutes * MINUTE_MS, values, labels


def _slo(rng: np.random.Generator, days: int) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray, list, list]]:
    minutes = np.arange(days * 1440)
    budget = 1.0 - SLO_OBJECTIVE
    for index, endpoint in enumerate(ENDPOINTS):
        burn = np.full(minutes.size, BASE_BURN)
        labels, decoys = [], []
        group = _group("endpoint_name", endpoint)
        for number, start in enumerate(_starts(rng, 0.5 + index / 3, days, 2.0, 360)):
            if number % 2 == 0:
                kind, length, rate = "fast_burn", 60, float(rng.uniform(20.0, 30.0))
            else:
                kind, length, rate = "slow_burn", 360, float(rng.uniform(9.0, 11.0))
            burn[start : start + length] = rate
            labels.append(Incident("slo", group, T0 + start * MINUTE_MS, T0 + (start + length) * MINUTE_MS, kind,
                                   round(rate, 4)))  # fmt: skip
            # A decoy half a day later: below both workbook pairs.
            decoy_start = start + length + 720
            if number % 2 == 0:
                kind, length, rate = "blip", 4, 40.0
            else:
                kind, length, rate = "simmer", 120, 4.0
            if decoy_start + length + 60 < days * 1440:
                burn[decoy_start : decoy_start + length] = rate
                decoys.append(Incident("slo", group, T0 + decoy_start * MINUTE_MS,
                                       T0 + (decoy_start + length) * MINUTE_MS, kind, rate))  # fmt: skip
        traffic = _TRAFFIC[endpoint] * hour_profile(minutes) / 1.08  # PROFILE's daily mean is about 1.08
        requests = rng.poisson(traffic).astype(np.int64)
        errors = rng.binomial(requests, np.minimum(burn * budget, 1.0))
        yield (canonical_tags({"endpoint_name": endpoint}), T0 + minutes * MINUTE_MS, requests.astype(np.float64),
               errors.astype(np.float64), labels, decoys)  # fmt: skip


def _versions(rng: np.random.Generator, days: int) -> Iterator[tuple[str, np.ndarray, np.ndarray, list, list]]:
    """Per model: (tags json, timestamps, values) per served version, incidents, decoys."""
    minutes = np.arange(days * 1440)
    for index, model in enumerate(MODELS):
        scale = _MODEL_SCALE[model]
        hourly = rng.lognormal(0.0, 0.03, size=days * 24)
        level = scale * hour_profile(minutes) * np.repeat(hourly, 60)
        # Change points: [first served minute of the new version, full switch minute]
        changes = []
        day = 3 + index / 3
        while True:
            start = int(day * 1440) + int(rng.integers(0, 720))
            canary = (len(changes) + index) % 2 == 1
            switch = start + (360 if canary else 0)
            if switch + 1440 + 60 > days * 1440:
                break
            changes.append((start, switch, canary))
            day += VERSION_EVERY_DAYS
        factor = 1.0
        served: list[tuple[int, int, int, float]] = []  # (version, first minute, end minute, factor)
        version_start = 0
        labels, decoys = [], []
        for number, (start, switch, canary) in enumerate(changes):
            worse = (number + index) % 2 == 0
            change = float(rng.uniform(1.35, 1.6) if worse else rng.uniform(0.92, 1.05))
            served.append((number + 1, version_start, switch, factor))
            factor *= change
            version_start = start
            incident = Incident(
                "version_comparison", _group("model_name", model), T0 + start * MINUTE_MS,
                T0 + (switch + 1440) * MINUTE_MS, "worse" if worse else "not_worse", round(change, 4),
                f"model_version {number + 1} -> {number + 2} ({'6 h canary' if canary else 'full switch'})",
            )  # fmt: skip
            (labels if worse else decoys).append(incident)
        served.append((len(changes) + 1, version_start, minutes.size, factor))
        for version, first, end, version_factor in served:
            span = slice(first, end)
            noise = rng.lognormal(0.0, 0.08, size=end - first)
            tags = canonical_tags({"environment": "production", "model_name": model, "model_version": str(version)})
            yield tags, T0 + minutes[span] * MINUTE_MS, level[span] * version_factor * noise, labels, decoys
            labels, decoys = [], []


def _series(source: str, name: str, unit: str, tags: str, timestamps: np.ndarray, values: np.ndarray) -> pa.Table:
    n = len(timestamps)
    return pa.table(
        {
            "timestamp_ms": pa.array(timestamps, type=pa.int64()),
            "source": pa.repeat(pa.scalar(source), n),
            "name": pa.repeat(pa.scalar(name), n),
            "value": pa.array(values, type=pa.float64()),
            "unit": pa.repeat(pa.scalar(unit), n),
            "tags": pa.repeat(pa.scalar(tags), n),
        },
        schema=METRIC_SCHEMA,
    )


def generate(days: int = 28, seed: int = 7) -> History:
    """The labelled history of ``days`` days from :data:`T0`, from ``seed`` (see the module docstring).

    ``days`` >= 4 (the first version change is on day 3 and needs a day after the switch); anomaly incidents
    need ``days`` > :data:`ANOMALY_WARMUP_DAYS`.
    """
    if not isinstance(days, int) or days < 4:
        raise ValueError(f"days must be an integer >= 4, got {days!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    streams = np.random.SeedSequence(seed).spawn(len(MONITORS))
    rngs = dict(zip(MONITORS, (np.random.default_rng(s) for s in streams), strict=True))
    tables: list[pa.Table] = []
    incidents: list[Incident] = []
    decoys: list[Incident] = []
    for source, tags, timestamps, values, labels in _drift(rngs["drift"], days):
        tables.append(_series(source, "model_score", "ratio", tags, timestamps, values))
        incidents += labels
    for tags, timestamps, values, labels in _anomaly(rngs["anomaly"], days):
        tables.append(_series("gateway", "inference_latency", "ms", tags, timestamps, values))
        incidents += labels
    for tags, timestamps, requests, errors, labels, blips in _slo(rngs["slo"], days):
        tables.append(_series("gateway", "requests", "count", tags, timestamps, requests))
        tables.append(_series("gateway", "request_errors", "count", tags, timestamps, errors))
        incidents += labels
        decoys += blips
    for tags, timestamps, values, labels, not_worse in _versions(rngs["version_comparison"], days):
        tables.append(_series("tensorflow_serving", "inference_latency", "ms", tags, timestamps, values))
        incidents += labels
        decoys += not_worse
    series = {(t.column("source")[0].as_py(), t.column("name")[0].as_py(), t.column("tags")[0].as_py()): t.num_rows
              for t in tables if t.num_rows}  # fmt: skip
    order = {m: i for i, m in enumerate(MONITORS)}
    key = lambda i: (order[i.monitor], i.group, i.start_ms)  # noqa: E731
    return History(
        points=pa.concat_tables(tables).combine_chunks(),
        incidents=tuple(sorted(incidents, key=key)),
        decoys=tuple(sorted(decoys, key=key)),
        start_ms=T0,
        end_ms=T0 + days * DAY_MS,
        seed=seed,
        days=days,
        series=series,
    )
