"""Reading the YAML config file, without validating it (Beam-free).

:func:`airis_mon.config.load_config` validates the whole document; the HTTP
gateway validates only its own integration entry (:func:`integration_entries`),
so that it starts without importing every integration (and Beam).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from airis_mon.errors import ConfigError

__all__ = ["integration_entries", "read_document"]


def read_document(path: str | Path) -> tuple[Any, Path]:
    """The decoded YAML document of the config file at ``path`` and the folder its relative paths are relative
    to; a :class:`ConfigError` when the file cannot be read or is not YAML."""
    config_path = Path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"(file): cannot read {config_path}: {error.strerror}"], str(config_path)) from None
    return parse_yaml(text, str(config_path)), config_path.resolve().parent


def parse_yaml(text: str, source: str) -> Any:
    """``text`` decoded as YAML, or a :class:`ConfigError` naming the line and column at fault."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError([f"{where}: invalid YAML: {getattr(error, 'problem', error)}"], source) from None


def integration_entries(document: Any, type_name: str) -> list[tuple[int, dict]]:
    """``(index, entry)`` of each ``integrations`` entry of type ``type_name``, unvalidated."""
    integrations = document.get("integrations") if isinstance(document, dict) else None
    if not isinstance(integrations, list):
        return []
    return [
        (i, entry) for i, entry in enumerate(integrations) if isinstance(entry, dict) and entry.get("type") == type_name
    ]
