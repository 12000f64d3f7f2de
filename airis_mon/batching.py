"""Turn rows into Arrow batches inside a DoFn without ``beam.Create``.

Beam has no per-DoFn "flush at end of bundle" helper for Arrow; this small
buffer is shared by every source that produces metric points row by row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

__all__ = ["RowBuffer", "rows_to_table"]


def rows_to_table(rows: Sequence[tuple], schema: pa.Schema) -> pa.Table:
    """Build a table from row tuples whose fields follow ``schema``'s order."""
    columns = list(zip(*rows, strict=False)) if rows else [() for _ in schema]
    return pa.Table.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=False)], schema=schema
    )


class RowBuffer:
    """Collects row tuples and hands out a table every ``batch_rows`` rows."""

    def __init__(self, schema: pa.Schema, batch_rows: int):
        self.schema = schema
        self.batch_rows = batch_rows
        self._rows: list[tuple] = []

    def extend(self, rows: Sequence[tuple]) -> Iterator[pa.Table]:
        """Add rows; yield a full batch when one is ready."""
        self._rows.extend(rows)
        if len(self._rows) >= self.batch_rows:
            yield self.flush()

    def flush(self) -> pa.Table:
        table = rows_to_table(self._rows, self.schema)
        self._rows = []
        return table

    def __len__(self) -> int:
        return len(self._rows)
