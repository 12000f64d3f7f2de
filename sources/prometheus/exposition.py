"""Prometheus exposition text -> metric points of the public contract (no HTTP, no Beam).

The text is parsed by ``prometheus_client``'s own parsers (text format 0.0.4,
or OpenMetrics when the peer answers with that content type); this module
turns the parsed families into points, keeping per-series state between
scrapes in an :class:`ExpositionConverter` (one per target):

========================  ==============================================================================
family type               points (``tags`` = the sample's labels + the target's labels)
========================  ==============================================================================
gauge, untyped            ``<name>``: the value as is
counter                   ``<family>_rate``: increase per second since the previous scrape (none on the
                          first scrape of a series); a value lower than before is a counter reset and the
                          rate is ``new value / elapsed``
histogram                 ``<family>`` tagged ``quantile`` ("0.5", "0.95", "0.99"): estimated from the
                          cumulative buckets by linear interpolation inside the bucket (Prometheus'
                          ``histogram_quantile``), on the bucket *increase* since the previous scrape
                          (the recent window; the whole history on the first scrape);
                          ``<family>_count_rate``: observations per second; ``<family>_mean``:
                          increase of ``_sum`` / increase of ``_count``; with ``bucket_increases``
                          also ``<family>_bucket_increase`` tagged ``le``: each cumulative bucket's
                          increase since the previous scrape, the histogram as a distribution for drift
                          rules (``histogram: true``)
summary                   ``<family>`` tagged ``quantile``: the exposed quantiles as is (NaN ones are
                          skipped); ``<family>_count_rate`` and ``<family>_mean`` as for histograms
info, stateset            skipped; ``*_created`` series (prometheus_client's creation timestamps) too
========================  ==============================================================================

Units, first match wins: the ``units`` overrides (family name -> unit);
TorchServe's ``HELP ... with unit: Microseconds``; TensorFlow Serving latency
families (``:tensorflow:...latency...``: microseconds, ``"us"``); the name's
suffix (``_seconds``/``_secs`` -> ``"s"``, ``_milliseconds``/``_ms`` -> ``"ms"``,
``_microseconds``/``_us``/``_usecs`` -> ``"us"``, ``_nanoseconds``/``_ns`` ->
``"ns"``, ``_bytes`` -> ``"bytes"``); otherwise ``""``. A rate's unit is
``"per_second"`` for plain counts and ``"<unit>/s"`` otherwise (a counter of
microseconds grows by ``"us/s"``). Quantiles and means keep the family's unit.

>>> converter = ExpositionConverter(base_tags={"instance": "127.0.0.1:8082"})
>>> families = parse_exposition("# TYPE up gauge\\nup 1\\n")
>>> converter.convert(families, scrape_time_s=100.0)
[{'name': 'up', 'value': 1.0, 'unit': '', 'tags': {'instance': '127.0.0.1:8082'}}]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

__all__ = [
    "DEFAULT_QUANTILES",
    "ExpositionConverter",
    "histogram_quantile",
    "infer_unit",
    "parse_exposition",
    "rate_unit",
]

#: Quantiles estimated from histograms.
DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)

_SUFFIX_UNITS = (
    (("_seconds", "_secs"), "s"),
    (("_milliseconds", "_millis", "_ms"), "ms"),
    (("_microseconds", "_usecs", "_us"), "us"),
    (("_nanoseconds", "_ns"), "ns"),
    (("_bytes",), "bytes"),
)
_TORCHSERVE_UNIT = re.compile(r"with unit: (\w+)")
_COUNT_UNITS = ("", "count", "counts")


def parse_exposition(text: str, content_type: str = "") -> list[Metric]:
    """Parse exposition text with ``prometheus_client`` (OpenMetrics when ``content_type`` says so).

    Raises ``ValueError`` when the text is not valid exposition.
    """
    if content_type.lower().startswith("application/openmetrics-text"):
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    return list(text_string_to_metric_families(text))


def infer_unit(family: str, documentation: str = "", overrides: Mapping[str, str] | None = None) -> str:
    """The unit of a family's values (see the module docstring for the rules)."""
    if overrides and family in overrides:
        return overrides[family]
    declared = _TORCHSERVE_UNIT.search(documentation or "")
    if declared:
        return declared.group(1)
    if family.startswith(":tensorflow:") and "latency" in family:
        return "us"  # TF Serving's samplers record wall time in microseconds
    base = family[: -len("_total")] if family.endswith("_total") else family
    for suffixes, unit in _SUFFIX_UNITS:
        if base.endswith(suffixes):
            return unit
    return ""


def rate_unit(unit: str) -> str:
    """Unit of the per-second increase of a counter measured in ``unit``."""
    return "per_second" if unit.strip().lower() in _COUNT_UNITS else f"{unit}/s"


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, Prometheus' way.

    Linear interpolation inside the bucket that holds the rank (the first
    bucket starts at 0 when its bound is positive); a rank in the ``+Inf``
    bucket gives the highest finite bound. NaN when there is no ``+Inf``
    bucket, fewer than two buckets, or no observation.

    >>> histogram_quantile(0.5, [(1.0, 2), (2.0, 6), (math.inf, 8)])
    1.5
    """
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    bounds = [bound for bound, _ in ordered]
    counts = []
    for _, count in ordered:  # force monotonic counts (scrapes are not atomic)
        counts.append(max(count, counts[-1]) if counts else count)
    observations = counts[-1]
    if observations <= 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(counts) - 1) if counts[i] >= rank), len(counts) - 1)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, count = 0.0, counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (bounds[b] - start) * (rank / count)


@dataclass(frozen=True)
class _Window:
    """Cumulative state of one histogram or summary series at a scrape."""

    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count); empty for summaries
    total: float  # _count
    sum: float  # _sum


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _series_key(name: str, labels: Mapping[str, str], drop: str = "") -> tuple:
    return (name, tuple(sorted((k, v) for k, v in labels.items() if k != drop)))


class ExpositionConverter:
    """Turns the families of successive scrapes of ONE target into points.

    Keeps the previous value of every counter, histogram and summary series
    (series absent from a scrape are forgotten) and the previous scrape time.
    """

    def __init__(
        self,
        base_tags: Mapping[str, str] | None = None,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        units: Mapping[str, str] | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        bucket_increases: bool = False,
    ):
        self._bucket_increases = bucket_increases
        self._base_tags = {str(k): str(v) for k, v in (base_tags or {}).items()}
        self._quantiles = tuple(quantiles)
        self._units = dict(units or {})
        self._include = [re.compile(p) for p in include]
        self._exclude = [re.compile(p) for p in exclude]
        self._last_time: float | None = None
        self._counters: dict[tuple, float] = {}
        self._windows: dict[tuple, _Window] = {}

    def convert(self, families: Iterable[Metric], scrape_time_s: float) -> list[dict]:
        """Points (``{"name", "value", "unit", "tags"}``) of one scrape made at ``scrape_time_s`` (epoch s)."""
        families = list(families)
        elapsed = None if self._last_time is None else scrape_time_s - self._last_time
        if elapsed is not None and elapsed <= 0:
            elapsed = None
        cumulative = {f.name for f in families if f.type in ("counter", "histogram", "summary", "gaugehistogram")}
        counters: dict[tuple, float] = {}
        windows: dict[tuple, _Window] = {}
        points: list[dict] = []
        for family in families:
            if not self._wanted(family) or family.type in ("info", "stateset"):
                continue
            if family.name.endswith("_created") and family.name[: -len("_created")] in cumulative:
                continue  # prometheus_client's creation-time companion of a counter/histogram/summary
            unit = infer_unit(family.name, family.documentation, self._units)
            if family.type == "counter":
                self._counter_points(family, unit, elapsed, counters, points)
            elif family.type in ("histogram", "gaugehistogram", "summary"):
                self._distribution_points(family, unit, elapsed, windows, points)
            else:  # gauge, unknown (untyped)
                for sample in family.samples:
                    if _finite(sample.value):
                        points.append(self._point(sample.name, sample.value, unit, sample.labels))
        self._counters, self._windows, self._last_time = counters, windows, scrape_time_s
        return points

    def _wanted(self, family: Metric) -> bool:
        names = (family.name, f"{family.name}_total") if family.type == "counter" else (family.name,)
        if self._include and not any(p.fullmatch(n) for p in self._include for n in names):
            return False
        return not any(p.fullmatch(n) for p in self._exclude for n in names)

    def _tags(self, labels: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
        tags = {}
        for key, value in labels.items():
            tags[f"exported_{key}" if key in self._base_tags else key] = str(value)
        tags.update(self._base_tags)
        if extra:
            tags.update(extra)
        return tags

    def _point(self, name: str, value: float, unit: str, labels: Mapping[str, str], extra=None) -> dict:
        return {"name": name, "value": float(value), "unit": unit, "tags": self._tags(labels, extra)}

    def _counter_points(self, family: Metric, unit: str, elapsed, counters: dict, points: list) -> None:
        for sample in family.samples:
            if sample.name.endswith("_created") or not _finite(sample.value):
                continue
            key = _series_key(family.name, sample.labels)
            counters[key] = sample.value
            previous = self._counters.get(key)
            if previous is None or elapsed is None:
                continue
            increase = sample.value - previous if sample.value >= previous else sample.value  # reset
            points.append(self._point(f"{family.name}_rate", increase / elapsed, rate_unit(unit), sample.labels))

    def _distribution_points(self, family: Metric, unit: str, elapsed, windows: dict, points: list) -> None:
        name = family.name
        series: dict[tuple, dict] = {}
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k not in ("le", "quantile")}
            entry = series.setdefault(_series_key(name, labels), {"labels": labels, "buckets": [], "quantiles": []})
            if sample.name in (f"{name}_bucket", f"{name}_gbucket") and "le" in sample.labels:
                entry["buckets"].append((float(sample.labels["le"]), float(sample.value)))
            elif sample.name in (f"{name}_count", f"{name}_gcount"):
                entry["count"] = float(sample.value)
            elif sample.name in (f"{name}_sum", f"{name}_gsum"):
                entry["sum"] = float(sample.value)
            elif sample.name == name and "quantile" in sample.labels:
                entry["quantiles"].append((sample.labels["quantile"], sample.value))
        for key, entry in series.items():
            labels, buckets = entry["labels"], tuple(sorted(entry["buckets"]))
            total = entry.get("count", buckets[-1][1] if buckets else math.nan)
            current = _Window(buckets, total, entry.get("sum", math.nan))
            for quantile, value in entry["quantiles"]:  # summaries: as exposed
                if _finite(value):
                    points.append(self._point(name, value, unit, labels, {"quantile": quantile}))
            if not _finite(current.total):
                continue
            if family.type == "gaugehistogram":  # a snapshot, not cumulative
                window, since_previous = current, False
            else:
                windows[key] = current
                window, since_previous = self._increase(current, self._windows.get(key))
            if since_previous and elapsed is not None:
                points.append(self._point(f"{name}_count_rate", window.total / elapsed, "per_second", labels))
            if window.total > 0 and _finite(window.sum):
                points.append(self._point(f"{name}_mean", window.sum / window.total, unit, labels))
            if self._bucket_increases and since_previous and family.type != "gaugehistogram":
                for bound, increase in window.buckets:
                    le = {"le": "+Inf" if math.isinf(bound) else format(bound, "g")}
                    points.append(self._point(f"{name}_bucket_increase", increase, "", labels, le))
            if window.buckets and window.total > 0:
                for q in self._quantiles:
                    value = histogram_quantile(q, window.buckets)
                    if _finite(value):
                        points.append(self._point(name, value, unit, labels, {"quantile": _format_quantile(q)}))

    @staticmethod
    def _increase(current: _Window, previous: _Window | None) -> tuple[_Window, bool]:
        """(the window since ``previous``, whether there was one): everything since the start when
        there is no previous scrape or the bucket layout changed; ``current`` itself after a reset."""
        if previous is None or [b for b, _ in previous.buckets] != [b for b, _ in current.buckets]:
            return current, False
        pairs = list(zip(current.buckets, previous.buckets, strict=True))
        if current.total < previous.total or any(now < before for (_, now), (_, before) in pairs):
            return current, True  # reset: everything counted since the restart is new
        buckets = tuple((bound, now - before) for (bound, now), (_, before) in pairs)
        return _Window(buckets, current.total - previous.total, current.sum - previous.sum), True


def _format_quantile(q: float) -> str:
    return format(q, "g")
