"""Arrow helpers shared by transforms and sinks: record schemas and dictionary encoding."""

from __future__ import annotations

import typing
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airis_mon.batching import rows_to_table

__all__ = ["conform", "dictionary_encode", "record_schema", "records_to_table", "repeat_strings"]

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


def repeat_strings(values: Sequence[str], indices: pa.Array | np.ndarray) -> pa.DictionaryArray:
    """``values[indices[i]]`` for every row ``i``, as a dictionary array of the distinct values.

    The dictionary holds each distinct value once, in first-use order of ``values``: the same inputs give
    the same array, and Parquet stores it as dictionary pages without hashing every row.
    """
    encoded = pc.dictionary_encode(pa.array(values, type=pa.string()))
    return pa.DictionaryArray.from_arrays(encoded.indices.take(pa.array(indices)), encoded.dictionary)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns of ``schema``, in its order, cast to its types, except that a dictionary column
    whose values already have the schema's type stays dictionary-encoded (write such tables with
    ``store_schema=False``: readers then see the schema's plain type)."""
    columns = []
    for field in schema:
        column = table.column(field.name)
        if not (pa.types.is_dictionary(column.type) and column.type.value_type == field.type):
            column = column.cast(field.type)
        columns.append(column)
    return pa.table(columns, names=schema.names)
