"""``Normalize``: raw metric points -> canonical names, units, timestamps, tags.

Works column-wise on Arrow batches; per-value Python work is done once per
*distinct* name, unit or tag set (dictionary encoding), so the cost per point
is a few vectorised passes.

- names to snake_case: ``Invocation4XXErrors`` -> ``invocation_4xx_errors``,
  ``ModelLatency`` -> ``model_latency``, ``CPUUtilization`` -> ``cpu_utilization``
- units to canonical ones, values scaled: time to ``ms`` (from ns, µs, s, min),
  sizes to ``bytes``, ``Percent`` to ``percent``, ``Count`` to ``count``;
  an unknown unit is kept, lower-cased
- timestamps in s, ms, µs or ns to integer ms UTC (:mod:`airis_mon.timeutil`)
- tag keys to snake_case, values strings; a ``statistic`` tag (CloudWatch's
  ``Average``, ``SampleCount`` ...) to snake_case so statistics stay distinct
- NaN, infinite values, non-finite timestamps, timestamps whose milliseconds
  do not fit ``int64`` and empty names go to the dead letter output with the
  reason and the point as a replayable one-point payload
"""

from __future__ import annotations

import re
from functools import lru_cache

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airis_mon import streams
from airis_mon.arrowutil import dictionary_encode
from airis_mon.payloads import point_dead_letter
from airis_mon.progress import Tally
from airis_mon.schema import METRIC_SCHEMA, RAW_POINT_SCHEMA, DeadLetter, canonical_tags, tags_from_json
from airis_mon.timeutil import epoch_array_to_ms

__all__ = ["Normalize", "canonical_unit", "normalize_table", "snake_case"]

COMPONENT = "normalize"

_TOKEN = re.compile(
    r"\d*[A-Z]+(?=[A-Z][a-z]|[^A-Za-z]|$)"  # acronyms, with leading digits: CPU, 4XX
    r"|[A-Z]?[a-z]+(?:\d+(?=[A-Z][a-z]|[^A-Za-z0-9]|$))?"  # words, with trailing digits: p99
    r"|\d+[a-z]*"  # digit runs: 5xx, 2
    r"|[A-Z]+"  # anything upper-case left over
)


@lru_cache(maxsize=65_536)
def snake_case(name: str) -> str:
    """``Invocation4XXErrors`` -> ``invocation_4xx_errors``; snake_case stays as is.

    A name without capitals is only split at separators (``vllm:e2e_latency`` ->
    ``vllm_e2e_latency``): camel-case rules would wrongly cut inside ``e2e``.
    """
    if not any(character.isupper() for character in name):
        return "_".join(part for part in re.split(r"[^a-z0-9]+", name) if part)
    return "_".join(token.lower() for token in _TOKEN.findall(name))


# unit (lower-cased, as written by vendors) -> (canonical unit, factor)
_UNITS: dict[str, tuple[str, float]] = {}
for _aliases, _canonical, _factor in (
    (("ns", "nanosecond", "nanoseconds"), "ms", 1e-6),
    (("us", "µs", "μs", "micros", "microsecond", "microseconds"), "ms", 1e-3),
    (("ms", "millis", "millisecond", "milliseconds"), "ms", 1.0),
    (("s", "sec", "secs", "second", "seconds"), "ms", 1e3),
    (("min", "minute", "minutes"), "ms", 6e4),
    (("b", "byte", "bytes"), "bytes", 1.0),
    (("kb", "kilobyte", "kilobytes"), "bytes", 1e3),
    (("mb", "megabyte", "megabytes"), "bytes", 1e6),
    (("gb", "gigabyte", "gigabytes"), "bytes", 1e9),
    (("kib",), "bytes", 1024.0),
    (("mib",), "bytes", 1024.0**2),
    (("gib",), "bytes", 1024.0**3),
    (("%", "percent", "pct"), "percent", 1.0),
    (("count", "counts", "requests", "calls"), "count", 1.0),
    (("count/second", "per_second", "/s", "rps"), "per_second", 1.0),
    (("none", ""), "", 1.0),
):
    for _alias in _aliases:
        _UNITS[_alias] = (_canonical, _factor)


def canonical_unit(unit: str) -> tuple[str, float]:
    """``(canonical unit, factor)``: canonical value = raw value × factor."""
    key = unit.strip().lower()
    return _UNITS.get(key, (key, 1.0))


@lru_cache(maxsize=65_536)
def _normalize_tags(tags_json: str) -> str:
    tags = tags_from_json(tags_json)
    normalized = {snake_case(key): value for key, value in tags.items()}
    if "statistic" in normalized:
        normalized["statistic"] = snake_case(normalized["statistic"])
    return canonical_tags(normalized)


def _map_distinct(column: pa.ChunkedArray | pa.Array, function) -> pa.Array:
    """Apply ``function`` to each distinct string value and expand back."""
    encoded = (
        pc.dictionary_encode(column).combine_chunks()
        if isinstance(column, pa.ChunkedArray)
        else pc.dictionary_encode(column)
    )
    mapped = pa.array([function(value) for value in encoded.dictionary.to_pylist()], type=pa.string())
    return pc.take(mapped, encoded.indices)


def _dead_letter_rows(table: pa.Table, mask: np.ndarray, reasons: np.ndarray, component: str):
    for row, reason in zip(table.filter(pa.array(mask)).to_pylist(), reasons[mask], strict=False):
        yield point_dead_letter(tuple(row[name] for name in RAW_POINT_SCHEMA.names), str(reason), component)


def normalize_table(table: pa.Table, component: str = COMPONENT) -> tuple[pa.Table, list[DeadLetter]]:
    """Normalize one :data:`RAW_POINT_SCHEMA` table (see the module docstring).

    Returns the :data:`METRIC_SCHEMA` table of good points and the dead
    letters of rejected ones.
    """
    if table.schema != RAW_POINT_SCHEMA:
        table = table.select(RAW_POINT_SCHEMA.names).cast(RAW_POINT_SCHEMA)
    values = table.column("value").to_numpy()
    timestamps = table.column("timestamp").to_numpy()
    epoch_ms = epoch_array_to_ms(timestamps)
    names = table.column("name")

    reasons = np.full(len(table), "", dtype=object)
    reasons[np.isinf(values)] = "value: infinite values are not metric values"
    reasons[np.isnan(values)] = "value: NaN is not a metric value"
    reasons[epoch_ms == np.iinfo(np.int64).min] = "timestamp: beyond the range of int64 epoch milliseconds"
    reasons[~np.isfinite(timestamps)] = "timestamp: not a finite number"
    reasons[pc.equal(pc.utf8_length(names), 0).to_numpy(zero_copy_only=False)] = "name: empty metric name"
    bad = reasons != ""
    dead = list(_dead_letter_rows(table, bad, reasons, component)) if bad.any() else []
    if bad.any():
        keep = pa.array(~bad)
        table = table.filter(keep)
        values, epoch_ms = values[~bad], epoch_ms[~bad]

    units = table.column("unit")
    unit_codes = dictionary_encode(units)
    conversions = [canonical_unit(unit) for unit in unit_codes.dictionary.to_pylist()]
    factors = np.array([factor for _, factor in conversions], dtype=np.float64)
    canonical_units = pa.array([name for name, _ in conversions], type=pa.string())
    indices = unit_codes.indices.to_numpy()
    scaled = values * factors[indices] if len(factors) and (factors != 1.0).any() else values

    normalized = pa.Table.from_arrays(
        [
            pa.array(epoch_ms, type=pa.int64()),
            table.column("source"),
            _map_distinct(table.column("name"), snake_case),
            pa.array(scaled, type=pa.float64()),
            pc.take(canonical_units, unit_codes.indices),
            _map_distinct(table.column("tags"), _normalize_tags),
        ],
        schema=METRIC_SCHEMA,
    )
    return normalized, dead


class _NormalizeBatch(beam.DoFn):
    def __init__(self):
        self._points = Tally(COMPONENT, "points_normalized", "points")
        self._rejected = beam.metrics.Metrics.counter(COMPONENT, "points_rejected")

    def process(self, table: pa.Table):
        normalized, dead = normalize_table(table)
        self._points.inc(normalized.num_rows)
        self._rejected.inc(len(dead))
        for dead_letter in dead:
            yield beam.pvalue.TaggedOutput(streams.DEAD_LETTERS, dead_letter)
        if normalized.num_rows:
            yield normalized


class Normalize(beam.PTransform):
    """Raw point batches -> ``{"points": normalized batches, "dead_letters": ...}``."""

    def expand(self, raw_batches):
        outputs = raw_batches | "NormalizeBatches" >> beam.ParDo(_NormalizeBatch()).with_outputs(
            streams.DEAD_LETTERS, main=streams.POINTS
        )
        return {streams.POINTS: outputs[streams.POINTS], streams.DEAD_LETTERS: outputs[streams.DEAD_LETTERS]}
