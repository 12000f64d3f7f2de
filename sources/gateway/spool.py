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

One JSON object a line: a payload of the public contract (metrics or event).
On start, a writer closes a segment left open by a crash, first cutting a
torn last line (a write that was never acknowledged).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from airis_mon.files import fsync_directory

__all__ = ["SpoolWriter", "closed_segments", "mark_processed", "oldest_unread_ms"]

_OPEN = re.compile(r"^open-(\d{6,})(?:-(\d+))?\.jsonl$")
_CLOSED = re.compile(r"^segment-(\d{6,})\.jsonl$")


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


class SpoolWriter:
    """Appends records durably; thread-safe; one instance per spool folder.

    ``max_segment_bytes`` and ``max_segment_age_s`` bound an open segment
    (bytes, seconds); the age is checked on each append and by :meth:`rotate_if_due`.
    """

    def __init__(self, directory: str | Path, max_segment_bytes: int = 64 << 20, max_segment_age_s: float = 60.0):
        if max_segment_bytes <= 0 or max_segment_age_s <= 0:
            raise ValueError("max_segment_bytes and max_segment_age_s must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_segment_bytes
        self._max_age_s = max_segment_age_s
        self._lock = threading.Lock()
        self._handle = None
        self._opened_at = 0.0
        self._size = 0
        self._sequence = self._recover()

    def _recover(self) -> int:
        """Close segments a crash left open; return the next sequence number."""
        numbers = [0]
        for path in sorted(self.directory.iterdir()):
            match = _OPEN.match(path.name)
            if match:
                self._cut_torn_line(path)
                os.replace(path, self.directory / f"segment-{match.group(1)}.jsonl")
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

    def _open(self) -> None:
        self._open_path = self.directory / f"open-{self._sequence:06d}-{int(time.time() * 1000)}.jsonl"
        self._handle = open(self._open_path, "ab")  # noqa: SIM115 (kept open across appends, closed on rotate)
        self._opened_at = time.monotonic()
        self._size = 0
        fsync_directory(self.directory, strict=True)

    def _close_current(self) -> None:
        if self._handle is None:
            return
        self._handle.close()
        os.replace(self._open_path, self.directory / f"segment-{self._sequence:06d}.jsonl")
        fsync_directory(self.directory, strict=True)
        self._handle = None
        self._sequence += 1

    def append(self, records: list[dict]) -> int:
        """Write ``records`` (one line each) and fsync; return the bytes written.

        When this returns, the records survive a crash of the process or the machine.
        """
        data = b"".join(json.dumps(r, separators=(",", ":"), allow_nan=False).encode() + b"\n" for r in records)
        with self._lock:
            if self._handle is not None and time.monotonic() - self._opened_at >= self._max_age_s:
                self._close_current()
            if self._handle is None:
                self._open()
            self._handle.write(data)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._size += len(data)
            if self._size >= self._max_bytes:
                self._close_current()
        return len(data)

    def rotate_if_due(self) -> bool:
        """Close the open segment if it is older than the age bound (call periodically)."""
        with self._lock:
            if self._handle is not None and time.monotonic() - self._opened_at >= self._max_age_s:
                self._close_current()
                return True
        return False

    def close(self) -> None:
        """Close the open segment so the pipeline can read it."""
        with self._lock:
            self._close_current()
