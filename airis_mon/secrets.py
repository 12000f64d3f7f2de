"""Secrets in config: references to env vars, files or Google Secret Manager, never literals.

In YAML a secret is written as one of::

    {env: SLACK_WEBHOOK_URL}                                        # an environment variable
    {file: /run/secrets/pagerduty_key}                              # a file's text, surrounding whitespace stripped
    {secret_manager: projects/my-project/secrets/slack-webhook/versions/latest}

It resolves at load time to a ``pydantic.SecretStr``, whose ``repr`` and
``str`` print ``**********``, so the value never reaches a log line, an error
message or an output file. Errors name the variable, file or secret, never the value.

Secret Manager references name one secret version:
``projects/PROJECT/secrets/SECRET/versions/VERSION``, where PROJECT is a
project id or number and VERSION a version number, ``latest`` or a version
alias. A malformed name is refused before any call (and not echoed: it may be
a value pasted in the wrong place). The version is read with
``SecretManagerServiceClient.access_secret_version`` (google-cloud-secret-manager,
part of ``apache-beam[gcp]``); the client and its import are created on first
use, so configs without such references never load them. Credentials are
Application Default Credentials: on Dataflow the service account of the
process that loads the config (the flex-template launcher) needs
``roles/secretmanager.secretAccessor`` on the secret; workers receive the
resolved value with the pickled config and never call Secret Manager. The
payload must be UTF-8 text; surrounding whitespace is stripped as for files,
and its CRC32C is checked when the server sends one (and ``google-crc32c``
is installed). One reference costs one call, retried on UNAVAILABLE,
RESOURCE_EXHAUSTED, INTERNAL and DEADLINE_EXCEEDED for at most
:data:`ACCESS_DEADLINE_S` seconds in all.

Tests and emulators: ``AIRIS_SECRET_MANAGER_ENDPOINT=127.0.0.1:PORT`` (see
:data:`ENDPOINT_ENV`) sends the calls to that address over an insecure gRPC
channel without credentials. Only loopback addresses are accepted, so a
stray setting cannot send secret names in clear text across a network.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr

__all__ = ["ACCESS_DEADLINE_S", "ENDPOINT_ENV", "SECRET_VERSION_NAME", "Secret", "resolve_secret"]

#: Environment variable overriding the Secret Manager endpoint (``host:port``, loopback only, insecure gRPC).
ENDPOINT_ENV = "AIRIS_SECRET_MANAGER_ENDPOINT"
#: Upper bound of one Secret Manager read including its retries, s.
ACCESS_DEADLINE_S = 30.0
#: Upper bound of one Secret Manager call attempt, s.
_ATTEMPT_TIMEOUT_S = 10.0

_PROJECT = r"(?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20}"  # id (maybe domain-scoped) or number
_VERSION = r"[1-9][0-9]{0,18}|[A-Za-z][A-Za-z0-9_-]{0,62}"  # number, ``latest`` or an alias
#: A Secret Manager secret version resource name.
SECRET_VERSION_NAME = re.compile(rf"projects/(?:{_PROJECT})/secrets/[A-Za-z0-9_-]{{1,255}}/versions/(?:{_VERSION})")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_KINDS = {"env", "file", "secret_manager"}
_NOT_INSTALLED = "secret {name}: Secret Manager needs google-cloud-secret-manager (pip install airis-mon[gcp])"

# Why a call failed, by gRPC status name; other statuses are reported by name.
_CALL_FAILURES = {
    "NOT_FOUND": "not found (no such project, secret or version)",
    "PERMISSION_DENIED": "permission denied (the caller needs roles/secretmanager.secretAccessor on the secret)",
    "UNAUTHENTICATED": "the credentials were refused",
    "FAILED_PRECONDITION": "the version cannot be read (disabled or destroyed)",
    "INVALID_ARGUMENT": "Secret Manager refused the name",
}


def resolve_secret(reference: Any) -> SecretStr:
    """Resolve ``{"env": NAME}``, ``{"file": PATH}`` or ``{"secret_manager": VERSION_NAME}`` to a ``SecretStr``.

    Raises ``ValueError`` (which config validation reports with the field's
    path) when the reference is malformed, the variable is unset, the file
    is unreadable or Secret Manager cannot give the version. The message
    never contains the secret.
    """
    if isinstance(reference, SecretStr):
        return reference
    if not isinstance(reference, dict) or len(reference) != 1 or not (_KINDS & set(reference)):
        raise ValueError(
            "a secret must be {env: VAR_NAME}, {file: /path/to/file} or "
            "{secret_manager: projects/P/secrets/S/versions/V}, not a literal value"
        )
    if "env" in reference:
        name = str(reference["env"])
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return SecretStr(os.environ[name])
    if "secret_manager" in reference:
        return SecretStr(_read_secret_version(reference["secret_manager"]))
    path = Path(str(reference["file"]))
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as error:
        raise ValueError(f"cannot read secret file {path}: {error.strerror}") from None


def _read_secret_version(name: Any) -> str:
    """The text of one Secret Manager version; ``ValueError`` naming ``name`` (never the value) otherwise."""
    if not isinstance(name, str) or not SECRET_VERSION_NAME.fullmatch(name):
        raise ValueError(
            "secret_manager must be a version name projects/PROJECT/secrets/SECRET/versions/VERSION "
            "(VERSION: a number, latest or an alias); the value given is not one"
        )
    try:
        from google.api_core import exceptions
        from google.api_core import retry as retries
        from google.auth import exceptions as auth_exceptions
    except ImportError:
        raise ValueError(_NOT_INSTALLED.format(name=name)) from None
    retry = retries.Retry(
        predicate=retries.if_exception_type(
            exceptions.ServiceUnavailable,
            exceptions.TooManyRequests,
            exceptions.InternalServerError,
            exceptions.DeadlineExceeded,
        ),
        initial=0.2,
        maximum=5.0,
        timeout=ACCESS_DEADLINE_S,
    )
    try:
        client = _secret_manager_client(os.environ.get(ENDPOINT_ENV) or None)
        response = client.access_secret_version(
            request={"name": name}, retry=retry, timeout=min(_ATTEMPT_TIMEOUT_S, ACCESS_DEADLINE_S)
        )
    except ImportError:
        raise ValueError(_NOT_INSTALLED.format(name=name)) from None
    except auth_exceptions.DefaultCredentialsError:
        raise ValueError(
            f"secret {name}: no Google credentials found (Application Default Credentials: "
            "gcloud auth application-default login, or run as a service account)"
        ) from None
    except auth_exceptions.GoogleAuthError as error:
        raise ValueError(f"secret {name}: Google credentials failed ({type(error).__name__})") from None
    except exceptions.RetryError as error:
        last = _status_name(error.cause) if error.cause is not None else "no answer"
        raise ValueError(f"secret {name}: Secret Manager unavailable for {ACCESS_DEADLINE_S:g} s ({last})") from None
    except exceptions.GoogleAPICallError as error:
        status = _status_name(error)
        why = _CALL_FAILURES.get(status, status)
        raise ValueError(f"secret {name}: {why} [{status}: {str(error.message)[:300]}]") from None
    return _payload_text(name, response.payload)


def _status_name(error: Exception) -> str:
    code = getattr(error, "grpc_status_code", None)
    return code.name if code is not None else type(error).__name__


def _payload_text(name: str, payload: Any) -> str:
    data = bytes(payload.data)
    if "data_crc32c" in payload:
        try:
            import google_crc32c
        except ImportError:
            google_crc32c = None
        if google_crc32c is not None and google_crc32c.value(data) != payload.data_crc32c:
            raise ValueError(f"secret {name}: the payload's CRC32C does not match (corrupted in transit)")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"secret {name}: the payload is not UTF-8 text") from None


@functools.cache
def _secret_manager_client(endpoint: str | None):
    """One Secret Manager client per endpoint, created on first use; ``None`` is Google's with ADC."""
    from google.cloud import secretmanager

    if endpoint is None:
        return secretmanager.SecretManagerServiceClient()
    host, _, port = endpoint.rpartition(":")
    if host.strip("[]") not in _LOOPBACK_HOSTS or not port.isdigit():
        raise ValueError(
            f"{ENDPOINT_ENV} must be a loopback HOST:PORT (127.0.0.1, localhost or [::1]), got {endpoint!r}"
        )
    import grpc
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    # A transport given a channel ignores credentials: no Application Default Credentials lookup.
    transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
    return secretmanager.SecretManagerServiceClient(transport=transport)


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
"""Use as a field type in component configs: ``token: Secret``."""
