"""``Aggregate``: normalized points -> per-(series, window) statistics.

A series is (source, name, unit, tags). Windows are fixed, ``window_ms``
long, aligned to the epoch: a point at ``t`` belongs to the window starting
at ``t - t % window_ms``. Each output row of :data:`AGGREGATE_SCHEMA` holds
count, sum, min, max, mean and the exact p50/p95/p99 (linear interpolation
between closest ranks, numpy's default method).

The fast path of DESIGN.md: no per-point Beam element and no per-window
GroupByKey. Each Arrow batch is split by a stable hash of the series key into
``num_shards`` slices; one GroupByKey brings every point of a series to one
shard, where :func:`aggregate_table` computes all windows of all its series
with a handful of vectorised numpy passes (one sort). Since a shard holds
whole series, downstream rule evaluation sees complete, ordered windows.

>>> aggregates = normalized_batches | Aggregate(window_seconds=60)  # doctest: +SKIP
"""

from __future__ import annotations

import zlib

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airis_mon.arrowutil import dictionary_encode
from airis_mon.schema import AGGREGATE_SCHEMA

__all__ = ["QUANTILES", "Aggregate", "aggregate_table"]

COMPONENT = "aggregate"
QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
_SEPARATOR = "\x1f"
_SERIES_COLUMNS = ("source", "name", "unit", "tags")


def _series_keys(table: pa.Table) -> pa.Array:
    """One string per row identifying its series."""
    return pc.binary_join_element_wise(*(table.column(c) for c in _SERIES_COLUMNS), _SEPARATOR)


def aggregate_table(table: pa.Table, window_ms: int) -> pa.Table:
    """Aggregate a :data:`METRIC_SCHEMA` table into :data:`AGGREGATE_SCHEMA` rows.

    Rows come out sorted by series key, then window start.
    """
    if window_ms <= 0:
        raise ValueError(f"window_ms must be positive, got {window_ms}")
    if table.num_rows == 0:
        return AGGREGATE_SCHEMA.empty_table()
    return _aggregate_series(
        dictionary_encode(_series_keys(table)),
        table.column("timestamp_ms").to_numpy(),
        table.column("value").to_numpy(),
        window_ms,
    )


def _aggregate_series(
    series: pa.DictionaryArray, timestamps: np.ndarray, values: np.ndarray, window_ms: int
) -> pa.Table:
    """The statistics of every (series, window); ``series`` holds one
    dictionary-encoded series key per point, ``timestamps`` epoch ms."""
    series_keys = np.array(series.dictionary.to_pylist(), dtype=object)
    # Dense series ids in sorted-key order so the output order is deterministic.
    key_order = np.argsort(series_keys, kind="stable")
    series_rank = np.empty(len(series_keys), dtype=np.int64)
    series_rank[key_order] = np.arange(len(series_keys))
    series_id = series_rank[series.indices.to_numpy()]

    window_index = timestamps // window_ms
    first_window = window_index.min()
    span = int(window_index.max() - first_window) + 1
    group_id = series_id * span + (window_index - first_window)

    # Arrow's multi-key sort is ~2x faster than np.lexsort here.
    order = pc.sort_indices(
        pa.table({"group": group_id, "value": values}), sort_keys=[("group", "ascending"), ("value", "ascending")]
    ).to_numpy()
    sorted_groups = group_id[order]
    sorted_values = values[order]
    is_start = np.empty(len(sorted_groups), dtype=bool)
    is_start[0] = True
    np.not_equal(sorted_groups[1:], sorted_groups[:-1], out=is_start[1:])
    starts = np.flatnonzero(is_start)
    counts = np.diff(np.append(starts, len(sorted_groups)))
    lasts = starts + counts - 1
    sums = np.add.reduceat(sorted_values, starts)

    groups = sorted_groups[starts]
    window_start = (groups % span + first_window) * window_ms
    key_of_group = pa.array(key_order[groups // span])
    parts = [key.split(_SEPARATOR) for key in series_keys]
    columns: dict[str, np.ndarray | pa.Array] = {
        "window_start_ms": window_start,
        "window_end_ms": window_start + window_ms,
    }
    for position, column in enumerate(_SERIES_COLUMNS):
        columns[column] = pc.take(pa.array([p[position] for p in parts], type=pa.string()), key_of_group)
    columns.update(
        count=counts.astype(np.int64),
        sum=sums,
        min=sorted_values[starts],
        max=sorted_values[lasts],
        mean=sums / counts,
    )
    for label, q in QUANTILES:
        # Rank within the group first, so the result does not depend on where
        # the group sits in the shard (bit-identical output for any batching).
        position = (counts - 1) * q
        low_position = np.floor(position)
        fraction = position - low_position
        low = starts + low_position.astype(np.int64)
        high = np.minimum(low + 1, lasts)
        low_values, high_values = sorted_values[low], sorted_values[high]
        columns[label] = low_values + (high_values - low_values) * fraction
    arrays = [
        columns[f.name] if isinstance(columns[f.name], pa.Array) else pa.array(columns[f.name], type=f.type)
        for f in AGGREGATE_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=AGGREGATE_SCHEMA)


def _stable_shard(series_key: str, num_shards: int) -> int:
    return zlib.crc32(series_key.encode("utf-8")) % num_shards


class _ShardBySeries(beam.DoFn):
    """Split a batch into per-shard narrow tables keyed by shard number.

    Only what aggregation needs crosses the shuffle: the dictionary-encoded
    series key, the timestamp and the value (~20 bytes a point instead of the
    full rows with their tag strings).
    """

    def __init__(self, num_shards: int):
        self._num_shards = num_shards

    def process(self, table: pa.Table):
        if table.num_rows == 0:
            return
        series = dictionary_encode(_series_keys(table))
        narrow = pa.table(
            {"series": series, "timestamp_ms": table.column("timestamp_ms"), "value": table.column("value")}
        )
        shard_of_series = np.array(
            [_stable_shard(key, self._num_shards) for key in series.dictionary.to_pylist()], dtype=np.int64
        )
        shard = shard_of_series[series.indices.to_numpy()]
        if (shard == shard[0]).all():
            yield int(shard[0]), narrow
            return
        order = np.argsort(shard, kind="stable")
        sorted_shards = shard[order]
        bounds = np.flatnonzero(np.diff(sorted_shards)) + 1
        for begin, end in zip(np.r_[0, bounds], np.r_[bounds, len(order)], strict=True):
            # take(), not slice(): a pickled slice carries its whole parent
            # table (apache/arrow GH-26685), which multiplied the shuffle by
            # the shard count.
            yield int(sorted_shards[begin]), narrow.take(pa.array(order[begin:end]))


class _AggregateShard(beam.DoFn):
    def __init__(self, window_ms: int):
        self._window_ms = window_ms
        self._windows = beam.metrics.Metrics.counter(COMPONENT, "series_windows")

    def process(self, shard_and_tables):
        _, tables = shard_and_tables
        # Each batch brought its own dictionary; unify them, then one array.
        table = pa.concat_tables(list(tables)).unify_dictionaries().combine_chunks()
        aggregates = _aggregate_series(
            table.column("series").chunk(0),
            table.column("timestamp_ms").to_numpy(),
            table.column("value").to_numpy(),
            self._window_ms,
        )
        self._windows.inc(aggregates.num_rows)
        yield aggregates


class Aggregate(beam.PTransform):
    """Normalized point batches -> :data:`AGGREGATE_SCHEMA` tables (one per shard)."""

    def __init__(self, window_seconds: int = 60, num_shards: int = 16):
        super().__init__()
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {window_seconds}")
        if num_shards <= 0:
            raise ValueError(f"num_shards must be positive, got {num_shards}")
        self._window_ms = window_seconds * 1000
        self._num_shards = num_shards

    def expand(self, batches):
        return (
            batches
            | "ShardBySeries" >> beam.ParDo(_ShardBySeries(self._num_shards))
            | "GroupShards" >> beam.GroupByKey()
            | "AggregateShards" >> beam.ParDo(_AggregateShard(self._window_ms))
        )
