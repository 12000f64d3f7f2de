"""``Aggregate``: normalized points -> per-(series, window) statistics.

A series is (source, name, unit, tags). Windows are fixed, ``window_ms``
long, aligned to the epoch: a point at ``t`` belongs to the window starting
at ``t - t % window_ms``. Each output row of :data:`AGGREGATE_SCHEMA` holds
count, sum, min, max, mean and the exact p50/p95/p99 (linear interpolation
between closest ranks, numpy's default method).

The fast path: no per-point Beam element and no per-window
GroupByKey. Each Arrow batch is split by a stable hash of the series key into
``num_shards`` slices; one GroupByKey brings every point of a series to one
shard, where :func:`aggregate_table` computes all windows of all its series
with a handful of vectorised numpy passes (one sort). Since a shard holds
whole series, downstream rule evaluation sees complete, ordered windows.

>>> aggregates = normalized_batches | Aggregate(window_seconds=60)  # doctest: +SKIP

With ``keep_points=True`` the shuffle is also the storage's: each shard then
also emits ``(part, table)`` pairs, ``part`` = ``sNNN`` the shard number,
of its aggregates and of its points (:data:`METRIC_SCHEMA`, rows sorted by
series, time, value), so storage writes one file per shard and date with
no second shuffle of every point (see :class:`sinks.parquet.WriteToStorage`).

>>> out = normalized_batches | Aggregate(60, keep_points=True)  # doctest: +SKIP
>>> out["aggregates"], out["aggregate_parts"], out["point_parts"]  # doctest: +SKIP

With ``distributions=Distributions({"model_score"})`` each shard also keeps a
mergeable distribution (DDSketch, :mod:`transforms.distributions`) per
(series, window) of those metrics, from the same sorted values:
:data:`~airis_mon.schema.DISTRIBUTION_SCHEMA` tables on the ``distributions``
output (and ``(part, table)`` pairs on ``distribution_parts`` with
``keep_points``), for drift rules and storage.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.transforms import trigger, window

from airis_mon.arrowutil import dictionary_encode, repeat_strings
from airis_mon.beamutil import windowed_name
from airis_mon.progress import Tally
from airis_mon.schema import AGGREGATE_SCHEMA, DISTRIBUTION_SCHEMA, METRIC_SCHEMA

__all__ = [
    "AGGREGATE_PARTS",
    "DISTRIBUTIONS",
    "DISTRIBUTION_PARTS",
    "POINT_PARTS",
    "QUANTILES",
    "Aggregate",
    "Distributions",
    "aggregate_table",
    "aggregate_with_distributions",
]

COMPONENT = "aggregate"
QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
_SEPARATOR = "\x1f"
_SERIES_COLUMNS = ("source", "name", "unit", "tags")
AGGREGATE_PARTS = "aggregate_parts"
POINT_PARTS = "point_parts"
DISTRIBUTIONS = "distributions"
DISTRIBUTION_PARTS = "distribution_parts"


class Distributions(NamedTuple):
    """Which metrics keep a distribution per (series, window), and the sketch's relative accuracy (0.01:
    every quantile within 1 % of the exact value)."""

    metrics: frozenset[str]
    relative_accuracy: float = 0.01


def _series_keys(table: pa.Table) -> pa.Array:
    """One string per row identifying its series."""
    return pc.binary_join_element_wise(*(table.column(c) for c in _SERIES_COLUMNS), _SEPARATOR)


def aggregate_table(table: pa.Table, window_ms: int) -> pa.Table:
    """Aggregate a :data:`METRIC_SCHEMA` table into :data:`AGGREGATE_SCHEMA` rows.

    Rows come out sorted by series key, then window start.
    """
    if window_ms <= 0:
        raise ValueError(f"window_ms must be positive, got {window_ms}")
    return aggregate_with_distributions(table, window_ms, None)[0]


def aggregate_with_distributions(
    table: pa.Table, window_ms: int, distributions: Distributions | None
) -> tuple[pa.Table, pa.Table]:
    """:func:`aggregate_table`, and the :data:`DISTRIBUTION_SCHEMA` rows of the metrics ``distributions``
    names (empty when None)."""
    if window_ms <= 0:
        raise ValueError(f"window_ms must be positive, got {window_ms}")
    if table.num_rows == 0:
        return AGGREGATE_SCHEMA.empty_table(), DISTRIBUTION_SCHEMA.empty_table()
    return _aggregate_series(
        dictionary_encode(_series_keys(table)),
        table.column("timestamp_ms").to_numpy(),
        table.column("value").to_numpy(),
        window_ms,
        distributions,
    )


def _aggregate_series(
    series: pa.DictionaryArray,
    timestamps: np.ndarray,
    values: np.ndarray,
    window_ms: int,
    distributions: Distributions | None = None,
) -> tuple[pa.Table, pa.Table]:
    """The statistics of every (series, window), and the distributions asked for; ``series`` holds one
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
    aggregates = pa.Table.from_arrays(arrays, schema=AGGREGATE_SCHEMA)
    return aggregates, _distribution_rows(aggregates, sorted_values, counts, distributions)


def _distribution_rows(
    aggregates: pa.Table, sorted_values: np.ndarray, counts: np.ndarray, distributions: Distributions | None
) -> pa.Table:
    """The distribution rows of the (series, window) groups of ``aggregates`` whose metric is asked for;
    ``sorted_values`` holds every group's values in group order, ascending within a group."""
    if distributions is None or not distributions.metrics:
        return DISTRIBUTION_SCHEMA.empty_table()
    from transforms.distributions import mapping_name, sketch_columns

    wanted = pc.is_in(aggregates.column("name"), pa.array(sorted(distributions.metrics), type=pa.string()))
    wanted = wanted.to_numpy(zero_copy_only=False)
    if not wanted.any():
        return DISTRIBUTION_SCHEMA.empty_table()
    kept_counts = counts[wanted]
    values = sorted_values[np.repeat(wanted, counts)]
    starts = np.concatenate(([0], np.cumsum(kept_counts)[:-1])).astype(np.int64)
    bins, bin_counts = sketch_columns(starts, values, distributions.relative_accuracy)
    rows = aggregates.filter(pa.array(wanted))
    mapping = pa.array([mapping_name(distributions.relative_accuracy)] * rows.num_rows, type=pa.string())
    columns = {name: rows.column(name) for name in ("window_start_ms", "window_end_ms", "source", "name", "unit",
                                                    "tags", "count")}  # fmt: skip
    columns.update(mapping=mapping, bins=bins, counts=bin_counts)
    return pa.table({f.name: columns[f.name] for f in DISTRIBUTION_SCHEMA}).cast(DISTRIBUTION_SCHEMA)


def _compact(narrow: pa.Table) -> pa.Table:
    """The narrow table with a dictionary of just the series keys its rows use.

    ``take`` keeps the whole dictionary: every shard's slice of a batch would
    carry all the batch's series keys (78 KB for 600 series), more than its
    points, into the shuffle.
    """
    series = narrow.column("series").combine_chunks()
    indices = series.indices.to_numpy()
    used, remapped = np.unique(indices, return_inverse=True)
    if len(used) == len(series.dictionary):
        return narrow
    compact = pa.DictionaryArray.from_arrays(
        pa.array(remapped.astype(np.int32)), series.dictionary.take(pa.array(used))
    )
    return narrow.set_column(0, "series", compact)


def _stable_shard(series_key: str, num_shards: int) -> int:
    return zlib.crc32(series_key.encode("utf-8")) % num_shards


class _ShardBySeries(beam.DoFn):
    """Split a batch into per-shard narrow tables keyed by shard number.

    Only what aggregation needs crosses the shuffle: the dictionary-encoded
    series key, the timestamp and the value (~20 bytes a point instead of the
    full rows with their tag strings). In streaming (``window_ms`` given) each
    shard's points are also split by window, and each piece is timestamped at
    its window's start, so Beam's event-time windows and watermark decide when
    a window is complete.
    """

    def __init__(self, num_shards: int, window_ms: int | None = None):
        self._num_shards = num_shards
        self._window_ms = window_ms

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
        if self._window_ms is None:
            if (shard == shard[0]).all():
                yield int(shard[0]), narrow
                return
            for key, part in _split(narrow, shard):
                yield key, part
            return
        window = narrow.column("timestamp_ms").to_numpy() // self._window_ms
        first = int(window.min())
        span = int(window.max()) - first + 1
        for key, part in _split(narrow, shard * span + (window - first)):
            window_start_s = (first + key % span) * self._window_ms / 1000
            yield beam.window.TimestampedValue((key // span, part), window_start_s)


def _split(narrow: pa.Table, keys: np.ndarray):
    """``(key, rows of narrow with that key)`` for each distinct key."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
    for begin, end in zip(np.r_[0, bounds], np.r_[bounds, len(order)], strict=True):
        # take(), not slice(): a pickled slice carries its whole parent table
        # (apache/arrow GH-26685), which multiplied the shuffle by the shard count.
        yield int(sorted_keys[begin]), _compact(narrow.take(pa.array(order[begin:end])))


def part_name(shard: int) -> str:
    """The storage part name of a shard's output: ``s003``."""
    return f"s{shard:03d}"


def points_of_shard(series: pa.DictionaryArray, timestamps: np.ndarray, values: np.ndarray) -> pa.Table:
    """The :data:`METRIC_SCHEMA` rows of a shard's narrow table, sorted by series key, time, value.

    String columns come out dictionary-encoded (see :func:`airis_mon.arrowutil.conform`).
    """
    keys = series.dictionary.to_pylist()
    by_key = np.argsort(np.array(keys, dtype=object), kind="stable")
    key_rank = np.empty(len(keys), dtype=np.int64)
    key_rank[by_key] = np.arange(len(keys))
    order = pc.sort_indices(
        pa.table({"series": key_rank[series.indices.to_numpy()], "timestamp_ms": timestamps, "value": values}),
        [("series", "ascending"), ("timestamp_ms", "ascending"), ("value", "ascending")],
    )
    ranks = key_rank[pc.take(series.indices, order).to_numpy()]
    parts = [keys[i].split(_SEPARATOR) for i in by_key]  # in key order: the same shard gives the same dictionaries
    columns = {column: repeat_strings([p[i] for p in parts], ranks) for i, column in enumerate(_SERIES_COLUMNS)}
    columns["timestamp_ms"] = pa.array(timestamps).take(order)
    columns["value"] = pa.array(values).take(order)
    return pa.table({name: columns[name] for name in METRIC_SCHEMA.names})


class _AggregateShard(beam.DoFn):
    def __init__(self, window_ms: int, keep_points: bool, distributions: Distributions | None = None):
        self._window_ms = window_ms
        self._keep_points = keep_points
        self._distributions = distributions
        self._windows = Tally(COMPONENT, "series_windows", "windows")

    def process(self, shard_and_tables, beam_window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        shard, tables = shard_and_tables
        part = windowed_name(part_name(shard), beam_window)  # streaming: one part per shard, window and pane
        if part != part_name(shard):
            part += f"-p{pane.index}"
        # Each batch brought its own dictionary; unify them, then one array.
        table = pa.concat_tables(list(tables)).unify_dictionaries().combine_chunks()
        series = table.column("series").chunk(0)
        timestamps, values = table.column("timestamp_ms").to_numpy(), table.column("value").to_numpy()
        del table, tables
        aggregates, distributions = _aggregate_series(series, timestamps, values, self._window_ms, self._distributions)
        self._windows.inc(aggregates.num_rows)
        yield aggregates
        if distributions.num_rows:
            yield beam.pvalue.TaggedOutput(DISTRIBUTIONS, distributions)
        if self._keep_points:
            yield beam.pvalue.TaggedOutput(AGGREGATE_PARTS, (part, aggregates))
            yield beam.pvalue.TaggedOutput(POINT_PARTS, (part, points_of_shard(series, timestamps, values)))
            if distributions.num_rows:
                yield beam.pvalue.TaggedOutput(DISTRIBUTION_PARTS, (part, distributions))


class Aggregate(beam.PTransform):
    """Normalized point batches (one PCollection or a tuple of them) -> :data:`AGGREGATE_SCHEMA` tables
    (one per shard); see the module docstring."""

    def __init__(self, window_seconds: int = 60, num_shards: int = 16, keep_points: bool = False,
                 streaming: bool = False, allowed_lateness_s: int = 0,
                 distributions: Distributions | None = None):  # fmt: skip
        super().__init__()
        self._distributions = distributions if distributions and distributions.metrics else None
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {window_seconds}")
        if num_shards <= 0:
            raise ValueError(f"num_shards must be positive, got {num_shards}")
        self._window_ms = window_seconds * 1000
        self._num_shards = num_shards
        self._keep_points = keep_points
        self._streaming = streaming
        self._allowed_lateness_s = allowed_lateness_s

    def expand(self, batches):
        shard = _ShardBySeries(self._num_shards, self._window_ms if self._streaming else None)
        inputs = [batches] if isinstance(batches, beam.PCollection) else list(batches)
        sharded = []
        for index, pcoll in enumerate(inputs):
            suffix = "" if isinstance(batches, beam.PCollection) else f"[{index}]"
            pieces = pcoll | f"ShardBySeries{suffix}" >> beam.ParDo(shard)
            if self._streaming:
                # Event-time windows: a window's pane fires when the watermark passes its end; points up to
                # allowed_lateness later fire a late pane with just them (discarding: the rule runner combines
                # the partial windows, as it does across shards); later points are dropped by Beam. Applied to
                # each input, so inputs windowed differently upstream can be flattened.
                pieces = pieces | f"EventTimeWindows{suffix}" >> beam.WindowInto(
                    window.FixedWindows(self._window_ms / 1000),
                    trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                    accumulation_mode=trigger.AccumulationMode.DISCARDING,
                    allowed_lateness=self._allowed_lateness_s,
                )
            sharded.append(pieces)
        # Several inputs: shard each, then flatten the narrow tables. Flattening the full batches first
        # made the local runner copy every point of one input into a buffer (+1.2 GB at 2M points).
        shards = sharded[0] if len(sharded) == 1 else sharded | "FlattenShards" >> beam.Flatten()
        aggregated = (
            shards
            | "GroupShards" >> beam.GroupByKey()
            | "AggregateShards"
            >> beam.ParDo(_AggregateShard(self._window_ms, self._keep_points, self._distributions)).with_outputs(
                AGGREGATE_PARTS, POINT_PARTS, DISTRIBUTIONS, DISTRIBUTION_PARTS, main="aggregates"
            )
        )
        if not self._keep_points and self._distributions is None:
            return aggregated["aggregates"]
        names = ["aggregates"]
        if self._keep_points:
            names += [AGGREGATE_PARTS, POINT_PARTS]
        if self._distributions is not None:
            names += [DISTRIBUTIONS] + ([DISTRIBUTION_PARTS] if self._keep_points else [])
        return {name: aggregated[name] for name in names}
