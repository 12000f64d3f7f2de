"""Turn rows into Arrow batches inside a DoFn without ``beam.Create``.

Beam has no per-DoFn "flush at end of bundle" helper for Arrow; this small
buffer is shared by every source that produces metric points row by row.

A row Arrow cannot hold (an integer beyond ``int64`` in a float column, text
with a lone surrogate ...) never fails the batch: :func:`split_rows` sets it
aside with a reason naming the column, and :class:`RowBuffer` keeps such rows
for its caller to dead-letter (:meth:`RowBuffer.take_rejected`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

__all__ = ["RowBuffer", "rows_to_table", "split_rows"]

#: What Arrow raises for a value that does not fit a column (``ArrowInvalid`` and
#: ``UnicodeEncodeError`` are ``ValueError``s, ``ArrowTypeError`` a ``TypeError``).
_CONVERSION_ERRORS = (ValueError, TypeError, OverflowError)


def rows_to_table(rows: Sequence[tuple], schema: pa.Schema) -> pa.Table:
    """Build a table from row tuples whose fields follow ``schema``'s order."""
    columns = list(zip(*rows, strict=False)) if rows else [() for _ in schema]
    return pa.Table.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=False)], schema=schema
    )


def _unfit_column(row: tuple, schema: pa.Schema) -> str:
    for value, field in zip(row, schema, strict=False):
        try:
            pa.array([value], type=field.type)
        except _CONVERSION_ERRORS:
            return f"{field.name}: not representable as Arrow {field.type}"
    return "row: does not match the Arrow schema"


def split_rows(rows: Sequence[tuple], schema: pa.Schema) -> tuple[pa.Table, list[tuple[tuple, str]]]:
    """``(table of the rows Arrow can hold, [(row, reason), ...] for the others)``.

    One conversion when every row fits; otherwise the rows are halved until
    the bad ones are isolated (about ``bad rows × log2(rows)`` conversions), so
    good rows keep their order and a bad row costs only itself.
    """
    try:
        return rows_to_table(rows, schema), []
    except _CONVERSION_ERRORS:
        pass
    tables: list[pa.Table] = []
    rejected: list[tuple[tuple, str]] = []
    pending = [list(rows)]
    while pending:
        part = pending.pop()
        try:
            tables.append(rows_to_table(part, schema))
        except _CONVERSION_ERRORS:
            if len(part) == 1:
                rejected.append((part[0], _unfit_column(part[0], schema)))
            else:
                middle = len(part) // 2
                pending += [part[middle:], part[:middle]]  # the first half is converted first
    table = pa.concat_tables(tables).combine_chunks() if tables else rows_to_table([], schema)
    return table, rejected


class RowBuffer:
    """Collects row tuples and hands out a table every ``batch_rows`` rows.

    Rows Arrow cannot hold are left out of the tables and kept, with their
    reason, until :meth:`take_rejected`.
    """

    def __init__(self, schema: pa.Schema, batch_rows: int):
        self.schema = schema
        self.batch_rows = batch_rows
        self._rows: list[tuple] = []
        self._rejected: list[tuple[tuple, str]] = []

    def extend(self, rows: Sequence[tuple]) -> Iterator[pa.Table]:
        """Add rows; yield a full batch when one is ready (it may hold fewer
        rows when some were rejected, and is not yielded when it holds none)."""
        self._rows.extend(rows)
        if len(self._rows) >= self.batch_rows:
            table = self.flush()
            if table.num_rows:
                yield table

    def flush(self) -> pa.Table:
        """The table of every buffered row Arrow can hold; the buffer is emptied."""
        table, rejected = split_rows(self._rows, self.schema)
        self._rows = []
        self._rejected.extend(rejected)
        return table

    def take_rejected(self) -> list[tuple[tuple, str]]:
        """``(row, reason)`` of every row left out since the last call."""
        rejected, self._rejected = self._rejected, []
        return rejected

    def __len__(self) -> int:
        return len(self._rows)
