"""``ParquetIndex``: an incremental DuckDB copy of OUTPUT's stored rows, for the console's queries.

Why: the live runner writes one file per cycle (every few seconds) and per shard, so a day holds thousands of
tiny Parquet files; DuckDB over a glob of them re-opens every file on every query (``benchmarks.console``
measures both). The index loads each file once into native tables and answers from those.

What it holds (one DuckDB database; ``path=None`` keeps it in memory):

- ``aggregates``, ``alerts``, ``alert_states``, ``events``, ``health``: the columns of
  :data:`sinks.parquet.transform.PARQUET_KINDS` plus ``file_id`` (which file the row came from);
- ``loaded_files(file_id, path, kind, size, mtime_ns)``: ``path`` relative to OUTPUT, e.g.
  ``aggregates/date=2026-11-28/part-live0a1bc00000042-s003.parquet``;
- ``scanned_dirs(path, mtime_ns)``: date folders whose listing has not changed since they were read;
- ``deliveries`` (``notification_history.jsonl``: key, sink, alert_id, rule, notification, outcome, status,
  attempts, retries, reason, at_ms; not the dead-lettered alert payload) and ``acknowledgements``
  (``acknowledgements.jsonl``: type ``ack`` or ``delivery``, alert_id, by, via, sink, notification, outcome,
  status, attempts, retries, reason, at_ms), with ``jsonl_offsets(name, offset, size)``: the bytes read so far.

:meth:`ParquetIndex.refresh` loads what is new: a date folder whose mtime (ns) is unchanged since its last
listing is skipped without listing it (a file written by rename changes its folder's mtime); in a changed
folder, a file of a known name with the same size and mtime is skipped (the live runner and re-runs rewrite
byte-identical files under the same name), a file whose size or mtime changed has its rows deleted (by
``file_id``) and is loaded again, a file gone has its rows deleted. New files are read by DuckDB's
``read_parquet`` on the list of them, one transaction per batch of :data:`BATCH_FILES` files, so a reader sees
a whole batch or none of it. JSON-lines files are read from the byte offset reached; a last line without its
newline (torn, or being written) waits for the next refresh; a file that shrank is read again from the start.

It is a cache: delete the database file (or change :data:`FORMAT`) and the next refresh rebuilds it from
OUTPUT. Nothing secret is stored (rows of the store only; no config, no tokens).

Threads: one DuckDB connection; :meth:`cursor` gives each query its own cursor (a DuckDB cursor is a
connection of its own to the same database, to be used by one thread; cursors are made under a lock), and
refreshes are serialised by another lock and write in transactions, so queries on other threads keep reading
the last committed state meanwhile.

``keep_days`` (optional): rows of date folders older than that many days before the newest date folder are
deleted and such folders are not loaded.

``feed`` (optional; :class:`console.bigquery_feed.BigQueryFeed` on GCP): the kinds in ``feed.kinds`` are taken
from it instead of from files. Each refresh asks ``feed.pull(kind, since_ms)`` for the rows from the newest held
row's time minus ``feed.overlap_ms`` (none held: now minus ``feed.lookback_ms``) and :meth:`ParquetIndex.load_rows`
replaces the held rows of that time range with them, in one transaction (``file_id`` :data:`FEED_FILE_ID`; the
table ``feed_sources(kind, source)`` names the feed, and rows of another source are dropped). A failed pull raises
before anything is written. ``keep_days`` does not apply to fed rows.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from sinks.parquet.transform import PARQUET_KINDS

__all__ = ["BATCH_FILES", "FEED_FILE_ID", "FORMAT", "INDEX_KINDS", "ParquetIndex"]

LOG = logging.getLogger("airis_mon.console.index")
#: The stored kinds the index loads.
INDEX_KINDS = ("aggregates", "alerts", "alert_states", "events", "health")
#: Files loaded per transaction.
BATCH_FILES = 400
#: Version of the database layout; a database of another version is rebuilt.
FORMAT = 1
#: The ``file_id`` of rows taken from a feed (not from a file).
FEED_FILE_ID = -1
HISTORY_FILE = "notification_history.jsonl"
ACKS_FILE = "acknowledgements.jsonl"
#: The tables and columns of the JSON-lines files (name, DuckDB type).
JSONL_TABLES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "deliveries": (
        HISTORY_FILE,
        [("key", "VARCHAR"), ("sink", "VARCHAR"), ("alert_id", "VARCHAR"), ("rule", "VARCHAR"),
         ("notification", "VARCHAR"), ("outcome", "VARCHAR"), ("status", "BIGINT"), ("attempts", "BIGINT"),
         ("retries", "BIGINT"), ("reason", "VARCHAR"), ("at_ms", "BIGINT")],
    ),
    "acknowledgements": (
        ACKS_FILE,
        [("type", "VARCHAR"), ("alert_id", "VARCHAR"), ("by", "VARCHAR"), ("via", "VARCHAR"), ("sink", "VARCHAR"),
         ("notification", "VARCHAR"), ("outcome", "VARCHAR"), ("status", "BIGINT"), ("attempts", "BIGINT"),
         ("retries", "BIGINT"), ("reason", "VARCHAR"), ("at_ms", "BIGINT")],
    ),
}  # fmt: skip
_ACK_TYPES = ("ack", "delivery")
_DUCK_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
#: A folder modified this recently (ns) is listed again next time: a file may land within its mtime's granularity.
_SETTLE_NS = 2_000_000_000


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(kind: str) -> list[str]:
    return PARQUET_KINDS[kind][0].names


class ParquetIndex:
    """An incremental DuckDB index of the Parquet files and JSON-lines histories under ``output``.

    ``path``: the database file (created with its folder; ``None``: in memory). ``keep_days``: see the module
    docstring. ``batch_files``: files per load transaction. ``feed``: see the module docstring.
    """

    def __init__(
        self,
        output: str | Path,
        path: str | Path | None = None,
        keep_days: int | None = None,
        batch_files: int = BATCH_FILES,
        feed: object | None = None,
    ):
        if keep_days is not None and keep_days < 1:
            raise ValueError(f"keep_days: at least 1 day, got {keep_days!r}")
        if batch_files < 1:
            raise ValueError(f"batch_files: at least 1, got {batch_files!r}")
        self.output = Path(output)
        self.path = Path(path) if path is not None else None
        self.keep_days = keep_days
        self._batch = batch_files
        self.feed = feed
        self._lock = threading.Lock()  # one refresh at a time
        self._cursor_lock = threading.Lock()  # cursor() on the shared connection, from any thread
        self._conn = self._open()

    # --- database -------------------------------------------------------------------------------------------

    def _open(self) -> duckdb.DuckDBPyConnection:
        if self.path is None:
            conn = duckdb.connect(":memory:")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = duckdb.connect(str(self.path))
                version = self._version(conn)
            except duckdb.Error as error:  # not a DuckDB file, or a newer one: it is a cache, rebuild it
                LOG.warning("console index %s unreadable (%s): rebuilding it", self.path, type(error).__name__)
                self._remove_files()
                conn = duckdb.connect(str(self.path))
                version = None
            if version not in (None, FORMAT):
                conn.close()
                self._remove_files()
                conn = duckdb.connect(str(self.path))
        self._create(conn)
        return conn

    def _remove_files(self) -> None:
        for suffix in ("", ".wal"):
            candidate = Path(str(self.path) + suffix)
            if candidate.exists():
                candidate.unlink()

    @staticmethod
    def _version(conn: duckdb.DuckDBPyConnection) -> int | None:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'index_meta'"
        ).fetchone()[0]
        if not found:
            return None
        row = conn.execute("SELECT format FROM index_meta").fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    def _create(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS index_meta (format INTEGER)")
        if conn.execute("SELECT count(*) FROM index_meta").fetchone()[0] == 0:
            conn.execute("INSERT INTO index_meta VALUES (?)", [FORMAT])
        conn.execute(
            "CREATE TABLE IF NOT EXISTS loaded_files (file_id BIGINT PRIMARY KEY, path VARCHAR UNIQUE, kind VARCHAR,"
            " size BIGINT, mtime_ns BIGINT)"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS scanned_dirs (path VARCHAR PRIMARY KEY, mtime_ns BIGINT)")
        conn.execute("CREATE TABLE IF NOT EXISTS feed_sources (kind VARCHAR PRIMARY KEY, source VARCHAR)")
        conn.execute('CREATE TABLE IF NOT EXISTS jsonl_offsets (name VARCHAR PRIMARY KEY, "offset" BIGINT)')
        for kind in INDEX_KINDS:
            schema = PARQUET_KINDS[kind][0]
            columns = ", ".join(f"{_quote(f.name)} {_DUCK_TYPES[f.type]}" for f in schema)
            conn.execute(f"CREATE TABLE IF NOT EXISTS {kind} ({columns}, file_id BIGINT)")
        for table, (_, columns) in JSONL_TABLES.items():
            spec = ", ".join(f"{_quote(name)} {kind}" for name, kind in columns)
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({spec})")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own for one query (or one thread); close it when done."""
        with self._cursor_lock:
            return self._conn.cursor()

    def close(self) -> None:
        """Close the database (the file stays, for the next start)."""
        with self._lock:
            self._conn.close()

    # --- refresh --------------------------------------------------------------------------------------------

    def refresh(self) -> int:
        """Load every stored file and JSON line not loaded yet, and the feed's new rows; return how many files,
        lines and fed rows (the re-read overlap included) were (re)loaded. Raises what ``feed.pull`` raises."""
        with self._lock:
            cur = self.cursor()
            try:
                fed = tuple(self.feed.kinds) if self.feed is not None else ()
                loaded = 0
                for kind in INDEX_KINDS:
                    if kind in fed:
                        loaded += self._refresh_feed(cur, kind)
                    else:
                        self._drop_fed(cur, kind, None)
                        loaded += self._refresh_kind(cur, kind)
                loaded += sum(self._refresh_jsonl(cur, table) for table in JSONL_TABLES)
                return loaded
            finally:
                cur.close()

    def _refresh_feed(self, cur: duckdb.DuckDBPyConnection, kind: str) -> int:
        time_column = PARQUET_KINDS[kind][1]
        self._drop_fed(cur, kind, self.feed.source_id)
        if cur.execute("SELECT count(*) FROM loaded_files WHERE kind = ?", [kind]).fetchone()[0]:
            cur.execute("BEGIN")  # the kind comes from the feed only: forget its files' rows
            cur.execute(f"DELETE FROM {kind} WHERE file_id <> ?", [FEED_FILE_ID])
            cur.execute("DELETE FROM loaded_files WHERE kind = ?", [kind])
            cur.execute("DELETE FROM scanned_dirs WHERE starts_with(path, ?)", [kind + "/"])
            cur.execute("COMMIT")
        newest = cur.execute(
            f"SELECT max({_quote(time_column)}) FROM {kind} WHERE file_id = ?", [FEED_FILE_ID]
        ).fetchone()[0]
        since_ms = int(
            _now_ns() // 1_000_000 - self.feed.lookback_ms if newest is None else newest - self.feed.overlap_ms
        )
        table = self.feed.pull(kind, since_ms)
        return self._load_rows(cur, kind, table, self.feed.source_id, since_ms)

    def _drop_fed(self, cur: duckdb.DuckDBPyConnection, kind: str, keep_source: str | None) -> None:
        """Delete the fed rows of ``kind`` unless they come from ``keep_source``."""
        row = cur.execute("SELECT source FROM feed_sources WHERE kind = ?", [kind]).fetchone()
        if row is None or row[0] == keep_source:
            return
        cur.execute("BEGIN")
        cur.execute(f"DELETE FROM {kind} WHERE file_id = ?", [FEED_FILE_ID])
        cur.execute("DELETE FROM feed_sources WHERE kind = ?", [kind])
        cur.execute("COMMIT")

    def load_rows(self, kind: str, table: pa.Table, source_id: str, since_ms: int) -> int:
        """Replace the held rows of ``kind`` from ``source_id`` whose time column is at or after ``since_ms``
        (epoch ms) by ``table`` (the kind's Parquet schema), in one transaction; rows of another source of the
        kind go. Returns the rows inserted."""
        with self._lock:
            cur = self.cursor()
            try:
                self._drop_fed(cur, kind, source_id)
                return self._load_rows(cur, kind, table, source_id, since_ms)
            finally:
                cur.close()

    def _load_rows(self, cur: duckdb.DuckDBPyConnection, kind: str, table: pa.Table, source: str, since_ms: int) -> int:
        if kind not in INDEX_KINDS:
            raise ValueError(f"kind: one of {', '.join(INDEX_KINDS)}, got {kind!r}")
        schema, time_column = PARQUET_KINDS[kind]
        if table.schema.names != schema.names or table.schema.types != schema.types:
            raise ValueError(f"table: the {kind} Parquet schema ({', '.join(schema.names)}), got {table.schema}")
        cur.execute("BEGIN")
        try:
            cur.execute(
                f"DELETE FROM {kind} WHERE file_id = ? AND {_quote(time_column)} >= ?", [FEED_FILE_ID, since_ms]
            )
            cur.register("feed_batch", table)
            cur.execute(
                f"INSERT INTO {kind} SELECT {', '.join(_quote(n) for n in schema.names)}, ? FROM feed_batch",
                [FEED_FILE_ID],
            )
            cur.unregister("feed_batch")
            cur.execute("INSERT OR REPLACE INTO feed_sources VALUES (?, ?)", [kind, source])
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return table.num_rows

    def _cutoff(self, dates: list[str]) -> str | None:
        if self.keep_days is None:
            return None
        valid = []
        for name in dates:
            try:
                valid.append(date.fromisoformat(name))
            except ValueError:
                continue
        return (max(valid) - timedelta(days=self.keep_days)).isoformat() if valid else None

    def _refresh_kind(self, cur: duckdb.DuckDBPyConnection, kind: str) -> int:
        root = self.output / kind
        known_dirs = dict(
            cur.execute("SELECT path, mtime_ns FROM scanned_dirs WHERE starts_with(path, ?)", [kind + "/"]).fetchall()
        )
        present: dict[str, os.stat_result] = {}
        if root.is_dir():
            with os.scandir(root) as entries:
                for entry in entries:
                    if entry.is_dir() and entry.name.startswith("date="):
                        present[f"{kind}/{entry.name}"] = entry.stat()
        cutoff = self._cutoff([name.split("=", 1)[1] for name in present])
        expired = {d for d in present if cutoff is not None and d.split("=", 1)[1] < cutoff}
        loaded_dirs = {
            f"{kind}/{folder}"
            for (folder,) in cur.execute(
                "SELECT DISTINCT split_part(path, '/', 2) FROM loaded_files WHERE kind = ?", [kind]
            ).fetchall()
        }
        gone = [d for d in sorted(set(known_dirs) | loaded_dirs) if d not in present or d in expired]
        if gone:
            self._forget_dirs(cur, kind, gone)
        now_ns = _now_ns()
        changed = 0
        new_files: list[tuple[str, int, int]] = []  # relative path, size, mtime_ns
        rewritten: list[str] = []
        settled: list[tuple[str, int]] = []
        for folder, stat in sorted(present.items()):
            if folder in expired or known_dirs.get(folder) == stat.st_mtime_ns:
                continue
            known = dict(
                (path, (size, mtime))
                for path, size, mtime in cur.execute(
                    "SELECT path, size, mtime_ns FROM loaded_files WHERE starts_with(path, ?)", [folder + "/"]
                ).fetchall()
            )
            seen = set()
            with os.scandir(self.output / folder) as entries:
                for entry in entries:
                    if not entry.name.endswith(".parquet") or entry.name.startswith("."):
                        continue
                    relative = f"{folder}/{entry.name}"
                    try:
                        file_stat = entry.stat()
                    except FileNotFoundError:
                        continue
                    seen.add(relative)
                    before = known.get(relative)
                    if before == (file_stat.st_size, file_stat.st_mtime_ns):
                        continue
                    if before is not None:
                        rewritten.append(relative)
                    new_files.append((relative, file_stat.st_size, file_stat.st_mtime_ns))
            removed = [path for path in known if path not in seen]
            if removed:
                self._forget_files(cur, kind, removed)
                changed += len(removed)
            if now_ns - stat.st_mtime_ns > _SETTLE_NS:
                settled.append((folder, stat.st_mtime_ns))
        for start in range(0, len(new_files), self._batch):
            changed += self._load(cur, kind, new_files[start : start + self._batch], set(rewritten))
        if settled:
            cur.execute("BEGIN")
            cur.executemany("INSERT OR REPLACE INTO scanned_dirs VALUES (?, ?)", [list(s) for s in settled])
            cur.execute("COMMIT")
        return changed

    def _forget_dirs(self, cur: duckdb.DuckDBPyConnection, kind: str, folders: list[str]) -> None:
        cur.execute("BEGIN")
        for folder in folders:
            pattern = folder + "/"  # a prefix (LIKE would read '_' as a wildcard)
            cur.execute(
                f"DELETE FROM {kind} WHERE file_id IN (SELECT file_id FROM loaded_files WHERE starts_with(path, ?))",
                [pattern],
            )
            cur.execute("DELETE FROM loaded_files WHERE starts_with(path, ?)", [pattern])
            cur.execute("DELETE FROM scanned_dirs WHERE path = ?", [folder])
        cur.execute("COMMIT")

    def _forget_files(self, cur: duckdb.DuckDBPyConnection, kind: str, paths: list[str]) -> None:
        cur.execute("BEGIN")
        cur.execute(
            f"DELETE FROM {kind} WHERE file_id IN (SELECT file_id FROM loaded_files WHERE list_contains(?, path))",
            [paths],
        )
        cur.execute("DELETE FROM loaded_files WHERE list_contains(?, path)", [paths])
        cur.execute("COMMIT")

    def _load(
        self, cur: duckdb.DuckDBPyConnection, kind: str, files: list[tuple[str, int, int]], rewritten: set
    ) -> int:
        """One transaction: delete the rows of rewritten files, then insert the files' rows and their ids."""
        paths = [path for path, _, _ in files]
        cur.execute("BEGIN")
        try:
            again = [path for path in paths if path in rewritten]
            if again:
                cur.execute(
                    f"DELETE FROM {kind} WHERE file_id IN (SELECT file_id FROM loaded_files"
                    " WHERE list_contains(?, path))",
                    [again],
                )
                cur.execute("DELETE FROM loaded_files WHERE list_contains(?, path)", [again])
            first = cur.execute("SELECT coalesce(max(file_id), 0) + 1 FROM loaded_files").fetchone()[0]
            ids = list(range(first, first + len(files)))
            cur.execute(
                "INSERT INTO loaded_files SELECT unnest(?), unnest(?), ?, unnest(?), unnest(?)",
                [ids, paths, kind, [size for _, size, _ in files], [mtime for _, _, mtime in files]],
            )
            absolute = [str(self.output / path) for path in paths]
            cur.execute(
                f"INSERT INTO {kind} SELECT {', '.join('p.' + _quote(n) for n in _columns(kind))}, f.file_id"
                f" FROM read_parquet(?, filename = true, union_by_name = true) AS p"
                " JOIN (SELECT unnest(?) AS filename, unnest(?) AS file_id) AS f ON p.filename = f.filename",
                [absolute, absolute, ids],
            )
            cur.execute("COMMIT")
        except (duckdb.IOException, duckdb.InvalidInputException) as error:
            cur.execute("ROLLBACK")
            if len(files) == 1:  # a file being replaced or not Parquet: skip it until it changes
                LOG.warning("console index: cannot read %s (%s)", paths[0], type(error).__name__)
                return 0
            return sum(self._load(cur, kind, [one], rewritten) for one in files)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return len(files)

    def _refresh_jsonl(self, cur: duckdb.DuckDBPyConnection, table: str) -> int:
        name, columns = JSONL_TABLES[table]
        path = self.output / name
        row = cur.execute('SELECT "offset" FROM jsonl_offsets WHERE name = ?', [name]).fetchone()
        offset = row[0] if row else 0
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        restart = size < offset  # truncated or replaced: read it again
        if restart:
            offset = 0
        if size == offset and not restart:
            return 0
        data = b""
        if size:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(size - offset)
        end = data.rfind(b"\n") + 1  # a last line without its newline waits
        rows = []
        names = [column for column, _ in columns]
        for line in data[:end].splitlines():
            record = _json_object(line)
            if record is None or (table == "acknowledgements" and record.get("type") not in _ACK_TYPES):
                continue
            rows.append([_scalar(record.get(column), kind) for column, kind in columns])
        cur.execute("BEGIN")
        if restart:
            cur.execute(f"DELETE FROM {table}")
        if rows:
            arrow_types = {"VARCHAR": pa.string(), "BIGINT": pa.int64()}
            batch = pa.table(
                {name: pa.array([row[i] for row in rows], arrow_types[kind]) for i, (name, kind) in enumerate(columns)}
            )
            cur.register("jsonl_batch", batch)
            cur.execute(f"INSERT INTO {table} SELECT {', '.join(_quote(n) for n in names)} FROM jsonl_batch")
            cur.unregister("jsonl_batch")

        cur.execute("INSERT OR REPLACE INTO jsonl_offsets VALUES (?, ?)", [name, offset + end])
        cur.execute("COMMIT")
        return len(rows)


def _now_ns() -> int:
    import time

    return time.time_ns()


def _json_object(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _scalar(value: object, kind: str) -> object:
    if value is None:
        return None
    if kind == "BIGINT":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None
    return value if isinstance(value, str) else json.dumps(value)
