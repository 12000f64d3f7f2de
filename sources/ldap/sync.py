"""One full directory sync: every user under ``base_dn`` with its groups (no Beam).

1. one LDAP session (:class:`~sources.ldap.client.LdapClient`: connect, StartTLS, bind);
2. a paged search of ``user_filter`` under ``base_dn``, each entry mapped by
   :func:`~sources.ldap.mapping.map_entry`;
3. only when some inetOrgPerson-mapped user has no ``memberOf``: a paged search
   of ``group_filter`` under ``group_base_dn`` (else ``base_dn``); each group's
   ``member`` / ``uniqueMember`` DNs give those users their groups (DNs compared
   case- and escape-insensitively). Active Directory users always have their
   groups from ``memberOf`` (AD's primary group, e.g. "Domain Users", is not in it).

Users come back sorted by username (then user id), so a sync of an unchanged
directory is always the same list. Any failure raises (no partial sync):
:class:`~airis_mon.errors.TransientError` or
:class:`~airis_mon.errors.PermanentError` as :mod:`sources.ldap.client` says.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass

from sources.ldap.client import LdapClient
from sources.ldap.config import LdapConfig
from sources.ldap.mapping import (
    INET_ORG_PERSON,
    DirectoryUser,
    dn_key,
    group_name,
    map_entry,
    member_dn,
    requested_attributes,
)

__all__ = ["SyncResult", "sync_directory"]

_MEMBER_ATTRIBUTES = ["member", "uniqueMember"]


@dataclass(frozen=True)
class SyncResult:
    """The users of one sync and how many search requests (pages) it took."""

    users: list[DirectoryUser]
    user_pages: int
    group_pages: int


def _group_index(client: LdapClient, config: LdapConfig) -> tuple[dict[object, set[str]], int]:
    """Member DN (comparable form) -> names of the groups listing it, and the pages read."""
    groups: dict[object, set[str]] = defaultdict(set)
    entries = client.paged_search(
        config.group_base_dn or config.base_dn, config.group_filter, _MEMBER_ATTRIBUTES, config.page_size
    )
    for dn, attributes in entries:
        name = group_name(dn, config.group_name_attribute)
        for attribute, values in attributes.items():
            if attribute.split(";", 1)[0].lower() in ("member", "uniquemember"):
                for value in values:
                    groups[dn_key(member_dn(value.decode("utf-8", "replace")))].add(name)
    return groups, client.last_pages


def sync_directory(config: LdapConfig) -> SyncResult:
    """Read every user of the directory (see the module docstring)."""
    with LdapClient(config.url, config.bind_dn, config.bind_password, start_tls=config.start_tls,
                    ca_file=config.ca_file, timeout_s=config.timeout_s) as client:  # fmt: skip
        entries = client.paged_search(
            config.base_dn, config.user_filter, requested_attributes(config.directory), config.page_size
        )
        users = [map_entry(dn, attributes, config.directory, config.group_name_attribute) for dn, attributes in entries]
        user_pages = client.last_pages
        group_pages = 0
        if any(user.kind == INET_ORG_PERSON and not user.has_member_of for user in users):
            index, group_pages = _group_index(client, config)
            users = [
                dataclasses.replace(user, groups=tuple(sorted(index.get(dn_key(user.dn), ()))))
                if user.kind == INET_ORG_PERSON and not user.has_member_of
                else user
                for user in users
            ]
    users.sort(key=lambda user: (user.username.casefold(), user.username, user.user_id))
    return SyncResult(users, user_pages, group_pages)
