"""Config of the ``ldap`` source: users of an LDAP directory or Active Directory, synced by polling.

::

    integrations:
      - name: corp-directory
        type: ldap
        url: ldaps://dc1.corp.example.com          # ldap://host[:389] or ldaps://host[:636]
        bind_dn: CN=svc-airis,OU=Service Accounts,DC=corp,DC=example,DC=com
        bind_password: {env: LDAP_BIND_PASSWORD}   # a secret reference, never a literal
        start_tls: false                           # StartTLS on an ldap:// URL before binding
        ca_file: ./certs/corp-ca.pem               # verify the server certificate with this CA (TLS only)
        base_dn: OU=Staff,DC=corp,DC=example,DC=com
        user_filter: "(&(objectCategory=person)(objectClass=user))"
        directory: active_directory                # auto | active_directory | inet_org_person
        page_size: 500                             # entries per page of the paged search
        timeout_s: 30                              # connect, each answer and each search (server side), s
        environment: prod
        poll: {interval_s: 3600, start: "2026-11-28T00:00:00Z", stop: "2026-11-29T00:00:00Z"}

Units: ``timeout_s`` in whole seconds (ldap3's receive timeout and the LDAP search time
limit are whole seconds); ``page_size`` in entries.
TLS: ``ldaps://`` URLs and ``start_tls: true`` always verify the server
certificate (``ca_file``, else the system's CAs) and its host name.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from airis_mon.models import ComponentConfig, ConfigPath
from airis_mon.secrets import Secret
from sources.polling import PollSettings

__all__ = ["DEFAULT_GROUP_FILTER", "DEFAULT_USER_FILTER", "LdapConfig"]

DEFAULT_USER_FILTER = "(|(objectClass=user)(objectClass=inetOrgPerson))"
DEFAULT_GROUP_FILTER = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"


def _check_filter(search_filter: str) -> str:
    """The filter when ldap3 can parse it (RFC 4515 string form)."""
    from ldap3.core.exceptions import LDAPInvalidFilterError
    from ldap3.operation.search import parse_filter

    try:
        parse_filter(search_filter, None, auto_escape=True, auto_encode=True, validator=None, check_names=False)
    except LDAPInvalidFilterError as error:
        raise ValueError(f"not a valid LDAP filter ({error}); e.g. (objectClass=inetOrgPerson)") from None
    return search_filter


class LdapConfig(ComponentConfig):
    """Users of an LDAP / Active Directory directory, one ``user_sync`` event per poll."""

    type: Literal["ldap"] = "ldap"
    url: str = Field(description="ldap://host[:port] or ldaps://host[:port] (no DN, attributes or filter in it)")
    bind_dn: str = Field(min_length=1, description="DN (or AD user principal name) of the account that binds")
    bind_password: Secret = Field(description="password of bind_dn: {env: VAR} or {file: PATH}")
    start_tls: bool = Field(default=False, description="send StartTLS before binding (ldap:// URLs only)")
    ca_file: ConfigPath | None = Field(
        default=None, description="PEM CA bundle that verifies the server certificate; None: the system's CAs"
    )
    base_dn: str = Field(min_length=1, description="where users are searched (whole subtree)")
    user_filter: str = Field(default=DEFAULT_USER_FILTER, description="LDAP filter selecting user entries")
    group_base_dn: str | None = Field(
        default=None, description="where groupOfNames/groupOfUniqueNames are searched; None: base_dn"
    )
    group_filter: str = Field(
        default=DEFAULT_GROUP_FILTER, description="LDAP filter of the groups read for users without memberOf"
    )
    group_name_attribute: str = Field(
        default="cn", min_length=1, description="RDN attribute of a group DN whose value names the group"
    )
    directory: Literal["auto", "active_directory", "inet_org_person"] = Field(
        default="auto", description="attribute mapping; auto: Active Directory for entries with sAMAccountName"
    )
    page_size: int = Field(default=500, ge=1, le=100_000, description="entries per page (AD's MaxPageSize is 1000)")
    timeout_s: int = Field(
        default=30, ge=1, le=600, description="connect, answer and search time limit, whole s (ldap3's unit)"
    )
    source: str | None = Field(
        default=None, min_length=1, max_length=256, description="`source` of the event; None: the integration name"
    )
    environment: str = Field(default="", description="added to the event data as `environment` when set")
    poll: PollSettings = Field(default_factory=PollSettings)

    @field_validator("url")
    @classmethod
    def _ldap_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("ldap", "ldaps"):
            raise ValueError("must start with ldap:// or ldaps://")
        try:
            parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        except ValueError:
            raise ValueError("has an invalid port") from None
        if not parts.hostname:
            raise ValueError("needs a host, e.g. ldaps://dc1.example.com")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must be ldap[s]://host[:port] only: put the DN in base_dn and the filter in user_filter")
        return url

    @field_validator("bind_password")
    @classmethod
    def _not_empty(cls, password: SecretStr) -> SecretStr:
        if not password.get_secret_value():
            raise ValueError("must not be empty (an empty simple bind is an anonymous bind)")
        return password

    @field_validator("user_filter", "group_filter")
    @classmethod
    def _valid_filter(cls, search_filter: str) -> str:
        return _check_filter(search_filter)

    @model_validator(mode="after")
    def _tls_settings(self) -> LdapConfig:
        if self.start_tls and self.uses_ldaps:
            raise ValueError("start_tls is for ldap:// URLs; an ldaps:// URL is already TLS")
        if self.ca_file is not None and not (self.start_tls or self.uses_ldaps):
            raise ValueError("ca_file is set but the connection is not TLS: use an ldaps:// URL or start_tls: true")
        return self

    @property
    def uses_ldaps(self) -> bool:
        """True for an ``ldaps://`` URL (TLS from the first byte)."""
        return urlsplit(self.url).scheme.lower() == "ldaps"

    @property
    def event_source(self) -> str:
        """The ``source`` of the emitted event: ``source``, else the integration name."""
        return self.source or self.name
