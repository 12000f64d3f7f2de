"""The one error family of AIRIS-MON.

::

    AirisError
    ├── ConfigError          a config file or option is wrong; lists every problem
    ├── TransientError       worth retrying (timeouts, 429, 5xx, connection errors)
    └── PermanentError       retrying cannot help; the record goes to the dead letter
        └── RecordError      one input record is malformed (reason + original payload)

Vendor exceptions are translated into this family at the boundary of each
client, so that callers catch one family.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AirisError", "ConfigError", "PermanentError", "RecordError", "TransientError"]


class AirisError(Exception):
    """Base class of every error AIRIS-MON raises on purpose."""


class ConfigError(AirisError):
    """A configuration is invalid.

    ``problems`` holds one human-readable line per problem, each starting
    with the dotted path of the field at fault (``rules[0].threshold: ...``).
    """

    def __init__(self, problems: list[str] | str, source: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{where}{len(self.problems)} configuration error(s):\n{lines}")


class TransientError(AirisError):
    """A failure that may succeed when retried."""


class PermanentError(AirisError):
    """A failure that will not succeed when retried."""


class RecordError(PermanentError):
    """One input record is malformed.

    ``reason`` says what is wrong and names the field; ``original`` is the
    record as received, kept for the dead letter.
    """

    def __init__(self, reason: str, original: Any = None):
        self.reason = reason
        self.original = original
        super().__init__(reason)
