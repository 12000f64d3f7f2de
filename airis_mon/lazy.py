"""Package exports loaded on first use, so that importing a package's config does not import its client.

An integration's ``__init__.py`` names what it exports and where it lives; importing
``sources.cloudwatch.config`` (to validate a config, say) then no longer imports boto3 through the
package's transform::

    __getattr__, __all__ = lazy_exports(__name__, {"CloudWatchConfig": "config", "ReadFromCloudWatch": "transform"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """A module ``__getattr__`` (PEP 562) importing ``package.exports[name]`` on first access, and ``__all__``."""

    def load(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return load, sorted(exports)
