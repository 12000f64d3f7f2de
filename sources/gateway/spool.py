"""The durable hand-off between the gateway and the pipeline: a spool folder.

The gateway appends each accepted request's records to an open segment and
``fsync``s it before answering 2xx, so nothing acknowledged is lost to a
crash. Segments rotate by size or age; a rotated (closed) segment is never
written again. The pipeline reads closed segments only, and after a
successful run moves them to ``done/``: each record is processed once across
runs (a run that fails leaves them for the next one).

Layout::

    SPOOL/open-000042-1795824000000.jsonl   the segment being written (at most one), and when it
                                             was opened (epoch ms)
    SPOOL/segment-000041.jsonl   closed, waiting for the pipeline
    SPOOL/done/segment-000040.jsonl   processed

One line per accepted request: an envelope (:mod:`sources.gateway.envelope`)
holding its payloads and its ack id. On start, a writer closes a segment left
open by a crash, first cutting a torn last line (a write that was never
acknowledged).

Group commit: requests are queued; one committer thread writes everything
queued as one write and one ``fsync``, then completes every request's future
with its ack id. Each 2xx is still sent after the fsync that covers it, but
under load one fsync covers many requests (the disk's ``fsync`` rate, not the
request rate, bounds nothing but latency).

Dedup keys (``Idempotency-Key``, webhook delivery ids) are stored in the
request's own line, so remembering a key and storing its records are one
atomic write. When a segment closes, its keys are also written to
``SPOOL/keys/segment-NNNNNN.keys`` so that a restart reloads them without
reading the segments (:func:`spooled_keys`).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path

from airis_mon.files import fsync_directory, write_text_atomically
from sources.gateway.envelope import SpoolEntry, encode_line, keyed_prefix, payloads_of

__all__ = [
    "SpoolEntry",
    "SpoolWriter",
    "closed_segments",
    "find_acknowledged",
    "mark_processed",
    "oldest_unread_ms",
    "prune_keys",
    "prune_processed",
    "segment_payloads",
    "spooled_keys",
]

_OPEN = re.compile(r"^open-(\d{6,})(?:-(\d+))?\.jsonl$")
_CLOSED = re.compile(r"^segment-(\d{6,})\.jsonl$")
_ACK = re.compile(r"^(\d{6,})-([0-9a-f]{1,12})$")
KEYS_FOLDER = "keys"


def closed_segments(directory: str | Path) -> list[Path]:
    """Closed segments not yet processed, oldest first."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _CLOSED.match(p.name))


def oldest_unread_ms(directory: str | Path) -> int | None:
    """When the open segment was opened (epoch ms; None without one): every record not yet in a closed
    segment was accepted after about then. The live runner's input position."""
    folder = Path(directory)
    if not folder.is_dir():
        return None
    opened = []
    for path in folder.iterdir():
        match = _OPEN.match(path.name)
        if match:
            opened.append(int(match.group(2)) if match.group(2) else int(path.stat().st_mtime * 1000))
    return min(opened, default=None)


def open_segment_lines(directory: str | Path) -> int:
    """How many acknowledged requests sit in the open segment (a run cannot read them until it closes)."""
    folder = Path(directory)
    if not folder.is_dir():
        return 0
    total = 0
    for path in folder.iterdir():
        if _OPEN.match(path.name):
            with path.open("rb") as handle:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return total


def mark_processed(directory: str | Path, segments: Iterable[str | Path]) -> None:
    """Move processed segments to ``done/`` (atomic renames, then an fsync of both folders)."""
    folder = Path(directory)
    done = folder / "done"
    done.mkdir(exist_ok=True)
    for segment in segments:
        source = Path(segment)
        if source.exists():
            os.replace(source, done / source.name)
    fsync_directory(done, strict=True)
    fsync_directory(folder, strict=True)


def _segment_files(folder: Path, sequence: int) -> list[Path]:
    """The file of segment ``sequence`` wherever it is now: open, closed or processed (``done/``)."""
    number = f"{sequence:06d}"
    candidates = [folder / f"segment-{number}.jsonl", folder / "done" / f"segment-{number}.jsonl"]
    candidates += sorted(folder.glob(f"open-{number}-*.jsonl")) + sorted(folder.glob(f"open-{number}.jsonl"))
    return [path for path in candidates if path.exists()]


def find_acknowledged(directory: str | Path, ack: str) -> tuple[dict, str] | None:
    """``(envelope, state)`` of the spool line acknowledged as ``ack``, or ``None`` when no line carries that
    id. ``state`` is ``"spooled"`` (waiting for the pipeline) or ``"processed"`` (read by a successful run)."""
    match = _ACK.match(ack)
    if not match:
        return None
    folder = Path(directory)
    offset = int(match.group(2), 16)
    for path in _segment_files(folder, int(match.group(1))):
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                line = handle.readline()
        except OSError:
            continue
        if not line.endswith(b"\n"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("ack") == ack:
            return document, "processed" if path.parent.name == "done" else "spooled"
    return None


def _keys_of_lines(lines: Iterable[bytes]) -> Iterator[dict]:
    """``{"key", "digest", "ack", "received_ms"}`` of each keyed spool line."""
    for line in lines:
        if not keyed_prefix(line):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and isinstance(document.get("key"), str):
            yield {k: document.get(k) for k in ("key", "digest", "ack", "received_ms")}


def spooled_keys(directory: str | Path, since_s: float) -> list[dict]:
    """The dedup keys of every request accepted since ``since_s`` (epoch s), oldest first: from the keys files
    of closed segments, and by reading the segments that have none (closed by a crash). Files last written
    before ``since_s`` are skipped without reading."""
    folder = Path(directory)
    keys_folder = folder / KEYS_FOLDER
    found: list[dict] = []
    segments = [p for p in (closed_segments(folder) + closed_segments(folder / "done"))]
    for segment in segments:
        try:
            if segment.stat().st_mtime < since_s:
                continue
        except OSError:
            continue
        sidecar = keys_folder / (segment.stem + ".keys")
        if sidecar.exists():
            found += [json.loads(line) for line in sidecar.read_bytes().splitlines() if line.strip()]
        else:
            with open(segment, "rb") as handle:
                found += list(_keys_of_lines(handle))
    since_ms = since_s * 1000
    found = [k for k in found if isinstance(k.get("received_ms"), int) and k["received_ms"] >= since_ms]
    return sorted(found, key=lambda k: k["received_ms"])


def prune_keys(directory: str | Path, before_s: float) -> int:
    """Delete keys files last written before ``before_s`` (epoch s); return how many."""
    keys_folder = Path(directory) / KEYS_FOLDER
    removed = 0
    if keys_folder.is_dir():
        for path in keys_folder.iterdir():
            if path.suffix == ".keys" and path.stat().st_mtime < before_s:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def prune_processed(directory: str | Path, before_s: float) -> int:
    """Delete processed segments (``done/``) last written before ``before_s`` (epoch s), and their keys files;
    return how many segments. The newest is kept whatever its age: the next segment's number (and so every
    ack id) continues from it, so no ack id or segment name is ever used twice."""
    done = Path(directory) / "done"
    if not done.is_dir():
        return 0
    segments = sorted(p for p in done.iterdir() if _CLOSED.match(p.name))
    removed = 0
    for segment in segments[:-1]:
        try:
            if segment.stat().st_mtime >= before_s:
                continue
        except OSError:
            continue
        segment.unlink(missing_ok=True)
        (Path(directory) / KEYS_FOLDER / (segment.stem + ".keys")).unlink(missing_ok=True)
        removed += 1
    return removed


class SpoolWriter:
    """Appends requests durably with group commit; thread-safe; one instance per spool folder.

    :meth:`submit` queues one request and returns a future completed with its ack id once the request's line
    is fsync'ed (or with the error that prevented it); :meth:`append` is the blocking form.
    ``max_segment_bytes`` and ``max_segment_age_s`` bound an open segment (bytes, seconds); the age is checked
    before each write and by :meth:`rotate_if_due`. ``clock`` is the wall clock (epoch s) stamped on lines.
    """

    def __init__(
        self,
        directory: str | Path,
        max_segment_bytes: int = 64 << 20,
        max_segment_age_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ):
        if max_segment_bytes <= 0 or max_segment_age_s <= 0:
            raise ValueError("max_segment_bytes and max_segment_age_s must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_segment_bytes
        self._max_age_s = max_segment_age_s
        self._clock = clock
        self._lock = threading.Lock()  # the open segment: held while a batch is written
        self._queue_lock = threading.Condition()
        self._queue: list[tuple[SpoolEntry, Future]] = []
        self._broken: BaseException | None = None
        self._handle = None
        self._opened_at = 0.0
        self._size = 0
        self._segment_keys: list[bytes] = []
        self._sequence = self._recover()
        self._committer = threading.Thread(target=self._commit_loop, name="spool-committer", daemon=True)
        self._committer.start()

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> int:
        """Close segments a crash left open (with their keys files); return the next sequence number."""
        numbers = [0]
        for path in sorted(self.directory.iterdir()):
            match = _OPEN.match(path.name)
            if match:
                self._cut_torn_line(path)
                closed = self.directory / f"segment-{match.group(1)}.jsonl"
                os.replace(path, closed)
                with open(closed, "rb") as handle:
                    self._write_keys_file(closed, [self._key_line(k) for k in _keys_of_lines(handle)])
                numbers.append(int(match.group(1)))
            elif _CLOSED.match(path.name):
                numbers.append(int(_CLOSED.match(path.name).group(1)))
        done = self.directory / "done"
        if done.is_dir():
            numbers += [int(m.group(1)) for p in done.iterdir() if (m := _CLOSED.match(p.name))]
        fsync_directory(self.directory, strict=True)
        return max(numbers) + 1

    @staticmethod
    def _cut_torn_line(path: Path) -> None:
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            with open(path, "r+b") as handle:
                handle.truncate(keep)
                handle.flush()
                os.fsync(handle.fileno())

    @staticmethod
    def _key_line(key: dict) -> bytes:
        return json.dumps(key, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    def _write_keys_file(self, segment: Path, key_lines: list[bytes]) -> None:
        if key_lines:
            write_text_atomically(self.directory / KEYS_FOLDER / (segment.stem + ".keys"),
                                  b"".join(key_lines).decode())  # fmt: skip

    # ------------------------------------------------------------------ segments

    def _open(self) -> None:
        self._open_path = self.directory / f"open-{self._sequence:06d}-{int(self._clock() * 1000)}.jsonl"
        self._handle = open(self._open_path, "ab")  # noqa: SIM115 (kept open across appends, closed on rotate)
        self._opened_at = time.monotonic()
        self._size = 0
        self._segment_keys = []
        fsync_directory(self.directory, strict=True)

    def _close_current(self) -> None:
        if self._handle is None:
            return
        self._handle.close()
        closed = self.directory / f"segment-{self._sequence:06d}.jsonl"
        os.replace(self._open_path, closed)
        fsync_directory(self.directory, strict=True)
        self._handle = None
        self._sequence += 1
        self._write_keys_file(closed, self._segment_keys)

    # ------------------------------------------------------------------ writing

    def submit(self, entry: SpoolEntry) -> Future:
        """Queue ``entry``; the future's result is its ack id (str) once its line is fsync'ed."""
        future: Future = Future()
        with self._queue_lock:
            self._queue.append((entry, future))
            self._queue_lock.notify()
        return future

    def append(self, records: list[dict], token: str | None = None) -> str:
        """Store ``records`` as one request and wait for the fsync; return its ack id.

        When this returns, the records survive a crash of the process or the machine.
        """
        payloads = tuple(json.dumps(r, separators=(",", ":"), allow_nan=False).encode() for r in records)
        return self.submit(SpoolEntry(payloads, token=token)).result()

    def _commit_loop(self) -> None:
        while True:
            with self._queue_lock:
                while not self._queue:
                    self._queue_lock.wait()
                batch, self._queue = self._queue, []
            self._commit(batch)

    def _commit(self, batch: list[tuple[SpoolEntry, Future]]) -> None:
        """Write ``batch`` with one write and one fsync, then complete its futures (in order)."""
        with self._lock:
            try:
                if self._broken is not None:
                    raise RuntimeError("the spool is unusable after a failed write; restart the gateway")
                if self._handle is not None and time.monotonic() - self._opened_at >= self._max_age_s:
                    self._close_current()
                if self._handle is None:
                    self._open()
                received_ms = int(self._clock() * 1000)
                lines, acks, keys = [], [], []
                offset = self._size
                for entry, _ in batch:
                    ack = f"{self._sequence:06d}-{offset:x}"
                    line = encode_line(entry, ack, received_ms)
                    lines.append(line)
                    acks.append(ack)
                    offset += len(line)
                    if entry.key is not None:
                        key = {"key": entry.key, "digest": entry.digest, "ack": ack, "received_ms": received_ms}
                        keys.append(self._key_line(key))
                self._write_durably(b"".join(lines))
                self._size = offset
                self._segment_keys += keys
            except BaseException as error:
                for _, future in batch:
                    future.set_exception(error)
                return
            try:
                if self._size >= self._max_bytes:
                    self._close_current()
            except OSError:
                pass  # the batch is durable; the rotation is retried at the next write
        for (_, future), ack in zip(batch, acks, strict=True):
            future.set_result(ack)

    def _write_durably(self, data: bytes) -> None:
        """Append ``data`` and fsync; on failure cut it off again, or mark the writer broken if that fails."""
        try:
            self._handle.write(data)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except BaseException:
            try:
                self._handle.truncate(self._size)
                self._handle.seek(self._size)
                os.fsync(self._handle.fileno())
            except BaseException as cleanup_error:
                self._broken = cleanup_error
            raise

    def rotate_if_due(self) -> bool:
        """Close the open segment if it is older than the age bound (call periodically)."""
        with self._lock:
            if self._handle is not None and time.monotonic() - self._opened_at >= self._max_age_s:
                self._close_current()
                return True
        return False

    def close(self) -> None:
        """Finish the writes queued so far, then close the open segment so the pipeline can read it.
        The writer stays usable: a later write opens a new segment."""
        with self._queue_lock:
            waiting = [future for _, future in self._queue]
        for future in waiting:
            future.exception()  # waits; its outcome went to its own caller
        with self._lock:
            self._close_current()


def segment_payloads(path: str | Path) -> list:
    """The payloads a spool segment holds, in order (envelopes unwrapped; bare payloads of older spools as
    they are)."""
    payloads: list = []
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                payloads += payloads_of(json.loads(line))[0]
    return payloads
