"""Secrets in config: references to env vars or files, never literals.

In YAML a secret is written ``{env: SLACK_WEBHOOK_URL}`` or
``{file: /run/secrets/pagerduty_key}``; it resolves at load time to a
``pydantic.SecretStr``, whose ``repr`` and ``str`` print ``**********``, so the
value never reaches a log line, an error message or an output file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr

__all__ = ["Secret", "resolve_secret"]


def resolve_secret(reference: Any) -> SecretStr:
    """Resolve ``{"env": NAME}`` or ``{"file": PATH}`` to a ``SecretStr``.

    Raises ``ValueError`` (which config validation reports with the field's
    path) when the reference is malformed, the variable is unset or the file
    is unreadable. The message never contains the secret.
    """
    if isinstance(reference, SecretStr):
        return reference
    if not isinstance(reference, dict) or len(reference) != 1 or not ({"env", "file"} & set(reference)):
        raise ValueError("a secret must be {env: VAR_NAME} or {file: /path/to/file}, not a literal value")
    if "env" in reference:
        name = str(reference["env"])
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return SecretStr(os.environ[name])
    path = Path(str(reference["file"]))
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as error:
        raise ValueError(f"cannot read secret file {path}: {error.strerror}") from None


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
"""Use as a field type in component configs: ``token: Secret``."""
