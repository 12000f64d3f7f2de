"""Atomic file replacement: the one way AIRIS-MON writes a file that others read.

A reader sees the old file or the new one, never a partial write, and once
the call returns the new content survives a crash: the data is written to a
temporary file in the target's folder, fsync'ed, renamed over the target,
and the folder is fsync'ed so the rename itself is durable. Used for storage
partitions, backfill chunks, poller state files and the gateway's webhook
registrations.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["fsync_directory", "write_atomically", "write_text_atomically"]


def fsync_directory(directory: str | os.PathLike, strict: bool = False) -> None:
    """Make renames inside ``directory`` durable. Where folders cannot be opened or fsync'ed this is a
    no-op, unless ``strict`` (the gateway spool, which acknowledges only what is durable): then it raises."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(handle)
    except OSError:
        if strict:
            raise
    finally:
        os.close(handle)


def write_atomically(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(temporary_path)`` to produce the file, then fsync it and rename it to ``path``.

    The temporary file is removed when ``write`` raises; ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_directory(target.parent)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))
