"""Reading a notification log back in tests."""

import json
from pathlib import Path
from types import SimpleNamespace

from sinks.delivery import idempotency_key


def logged_keys(path: Path, sink: str) -> list[str]:
    """The idempotency key of every line of the log at ``path``, in file order, duplicates kept."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [idempotency_key(sink, SimpleNamespace(**line)) for line in lines]
