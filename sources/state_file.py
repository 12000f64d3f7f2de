"""State files of polling sources: what the last successful poll saw, kept on
disk so that restarted or re-run pipelines pick up where they stopped.

One JSON object per file with a ``version``; written atomically (temporary
file, fsync, rename), so a reader sees the old or the new state, never a
partial one. Problems are :class:`~airis_mon.errors.PermanentError` naming the
file: a poll must not guess around a broken state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airis_mon.errors import PermanentError
from airis_mon.files import write_text_atomically

__all__ = ["read_state", "write_state"]


def read_state(path: str | os.PathLike, kind: str, version: int = 1) -> dict[str, Any] | None:
    """The saved document, or None when the file does not exist yet."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PermanentError(f"cannot read state file {path}: {error.strerror}") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        reason = f"not JSON: {error}"
    else:
        if isinstance(document, dict) and document.get("version") == version:
            return document
        reason = f"expected version {version}"
    raise PermanentError(f"state file {path} is not a {kind} state file ({reason}); delete it to start over")


def write_state(path: str | os.PathLike, document: dict[str, Any], version: int = 1) -> None:
    """Replace ``path`` atomically with ``document`` (plus its ``version``)."""
    text = json.dumps({**document, "version": version}, separators=(",", ":"), sort_keys=True)
    try:
        write_text_atomically(path, text)
    except OSError as error:
        raise PermanentError(f"cannot write state file {path}: {error.strerror}") from None
