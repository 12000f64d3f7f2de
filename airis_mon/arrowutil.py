"""Arrow helpers shared by transforms and sinks: record schemas and dictionary encoding."""

from __future__ import annotations

import typing
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from airis_mon.batching import rows_to_table

__all__ = ["dictionary_encode", "record_schema", "records_to_table"]

_ARROW_TYPES = {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}


def record_schema(record_type: type) -> pa.Schema:
    """The Arrow schema of a ``typing.NamedTuple`` record class."""
    hints = typing.get_type_hints(record_type)
    return pa.schema([(name, _ARROW_TYPES[hints[name]]) for name in record_type._fields])


def records_to_table(records: Sequence[tuple], record_type: type) -> pa.Table:
    """Rows of ``record_type`` -> Arrow table with :func:`record_schema`."""
    return rows_to_table(records, record_schema(record_type))


def dictionary_encode(values: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    """Dictionary-encode into one contiguous array: ``.dictionary`` holds the
    distinct values, ``.indices`` one index per row. Per-distinct-value
    Python work then costs nothing per row."""
    encoded = pc.dictionary_encode(values)
    return encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded
