"""Config of the ``email`` sink: one SMTP message per alert notification.

::

    sinks:
      - name: oncall-mail
        type: email
        host: smtp.example.com
        port: 587                  # default 587 (submission with STARTTLS); SMTPS: port 465 + ssl: true
        starttls: true             # default true: upgrade with STARTTLS, refuse to send if the server lacks it
        ssl: false                 # true: TLS from the first byte (SMTPS)
        tls_verify: true           # false only for test servers with self-signed certificates
        username: airis-mon        # optional; needs password, and starttls or ssl
        password: {env: SMTP_PASSWORD}
        from_address: "AIRIS-MON <alerts@example.com>"
        to: [ml-oncall@example.com, "Data Science <ds@example.com>"]
        subject_prefix: "[AIRIS-MON]"
        timeout_s: 10              # per SMTP socket operation, s
        retry: {max_attempts: 5, initial_backoff_s: 0.5, max_backoff_s: 30, max_total_s: 120}
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Literal

from pydantic import Field, field_validator, model_validator

from airis_mon.models import ComponentConfig
from airis_mon.secrets import Secret
from sinks.delivery.config import RetryConfig

__all__ = ["EmailConfig", "bare_address"]

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")


def bare_address(address: str) -> str:
    """``alerts@example.com`` from ``"AIRIS-MON <alerts@example.com>"`` (or the address itself)."""
    return parseaddr(address)[1]


def _check_address(address: str) -> str:
    if any(c in address for c in "\r\n\0"):
        raise ValueError("an address may not contain CR, LF or NUL")
    if not _ADDRESS.match(bare_address(address)):
        raise ValueError(f"{address!r} is not an email address (user@domain or 'Name <user@domain>')")
    return address


class EmailConfig(ComponentConfig):
    """Where and how alert emails are sent."""

    type: Literal["email"] = "email"
    host: str = Field(min_length=1, description="SMTP server host name or address")
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = Field(default=True, description="upgrade the connection with STARTTLS (required if set)")
    ssl: bool = Field(default=False, description="SMTPS: TLS from the first byte (usually port 465)")
    tls_verify: bool = Field(default=True, description="verify the server certificate and host name")
    username: str | None = Field(default=None, min_length=1)
    password: Secret | None = None
    from_address: str
    to: list[str] = Field(min_length=1)
    subject_prefix: str = Field(default="[AIRIS-MON]", max_length=100)
    timeout_s: float = Field(default=10.0, gt=0, description="per SMTP socket operation, s")
    retry: RetryConfig = Field(default_factory=RetryConfig)

    @field_validator("from_address")
    @classmethod
    def _from(cls, address: str) -> str:
        return _check_address(address)

    @field_validator("to")
    @classmethod
    def _to(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            _check_address(address)
        return addresses

    @field_validator("subject_prefix", "host", "username")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in "\r\n\0"):
            raise ValueError("may not contain CR, LF or NUL")
        return value

    @model_validator(mode="after")
    def _tls_and_auth(self) -> EmailConfig:
        if self.ssl and self.starttls and "starttls" in self.model_fields_set:
            raise ValueError("choose ssl (SMTPS) or starttls, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.password is not None and not (self.ssl or self.starttls):
            raise ValueError("a password is only sent over TLS: set starttls: true or ssl: true")
        return self

    @property
    def uses_starttls(self) -> bool:
        """STARTTLS applies to plain connections only (with ``ssl`` the connection is already TLS)."""
        return self.starttls and not self.ssl
