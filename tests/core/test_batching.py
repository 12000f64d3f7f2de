"""Arrow batching: a row Arrow cannot hold costs only that row (issue 13)."""

import pyarrow as pa

from airis_mon.batching import RowBuffer, split_rows
from airis_mon.schema import RAW_POINT_SCHEMA
from tests.conftest import DAY_MS


def point(timestamp=DAY_MS, source="tf", name="lat") -> tuple:
    return (timestamp, source, name, 1.0, "ms", "{}")


def test_every_row_that_fits_is_one_table_in_order():
    rows = [point(DAY_MS + i) for i in range(5)]
    table, rejected = split_rows(rows, RAW_POINT_SCHEMA)
    assert rejected == [] and table.column("timestamp").to_pylist() == [float(DAY_MS + i) for i in range(5)]


def test_rows_arrow_cannot_hold_are_set_aside_with_the_column_named_and_the_rest_keep_their_order():
    rows = [point(DAY_MS + i) for i in range(100)]
    rows[3] = point(10**25)  # "PyLong is too large to fit int64", which used to fail the whole run
    rows[50] = point(source="tf\ud800")  # not encodable as UTF-8
    rows[99] = point(-(10**30))
    table, rejected = split_rows(rows, RAW_POINT_SCHEMA)
    assert table.schema == RAW_POINT_SCHEMA and table.num_rows == 97
    assert table.column("timestamp").to_pylist() == [float(r[0]) for i, r in enumerate(rows) if i not in (3, 50, 99)]
    assert [(row, reason) for row, reason in rejected] == [
        (rows[3], "timestamp: not representable as Arrow double"),
        (rows[50], "source: not representable as Arrow string"),
        (rows[99], "timestamp: not representable as Arrow double"),
    ]


def test_an_all_bad_batch_is_an_empty_table():
    table, rejected = split_rows([point(10**25)], RAW_POINT_SCHEMA)
    assert table.num_rows == 0 and table.schema == RAW_POINT_SCHEMA and len(rejected) == 1


def test_the_buffer_keeps_rejected_rows_for_its_caller_and_yields_no_empty_batch():
    buffer = RowBuffer(RAW_POINT_SCHEMA, batch_rows=2)
    assert list(buffer.extend([point(10**25)])) == []
    assert list(buffer.extend([point(10**26)])) == []  # a full batch of bad rows: nothing to yield
    (batch,) = list(buffer.extend([point(), point(DAY_MS + 1)]))
    assert isinstance(batch, pa.Table) and batch.num_rows == 2
    assert [row[0] for row, _ in buffer.take_rejected()] == [10**25, 10**26]
    assert buffer.take_rejected() == []
    assert list(buffer.extend([point(10**27)])) == [] and len(buffer) == 1  # not a full batch: kept
    assert buffer.take_rejected() == []  # not converted yet
    table = buffer.flush()
    assert table.num_rows == 0 and len(buffer) == 0 and len(buffer.take_rejected()) == 1
