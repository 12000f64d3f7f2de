"""Directory entries -> users: the attribute mapping of the ``ldap`` source (no network, no Beam).

Active Directory (entries with ``sAMAccountName`` in ``directory: auto``):

========================  =====================================================
user_id                   ``objectGUID`` as a UUID string, else the entry's DN
username                  ``sAMAccountName``
email                     ``mail``
display_name              ``displayName``
department                ``department``
title                     ``title``
groups                    CN of each ``memberOf`` DN
========================  =====================================================

inetOrgPerson (the fallback):

========================  =====================================================
user_id                   ``entryUUID``, else the entry's DN
username                  ``uid``
email                     ``mail``
display_name              ``displayName``, else ``cn``
department                ``departmentNumber``, else ``ou``
title                     ``title``
groups                    CN of each ``memberOf`` DN when the entry has it, else
                          of each ``groupOfNames`` / ``groupOfUniqueNames`` whose
                          ``member`` / ``uniqueMember`` is the entry's DN (see
                          :mod:`sources.ldap.sync`)
========================  =====================================================

A missing attribute becomes ``""`` (first value of a multi-valued one); a user
without a username gets the value of its DN's first RDN. Group names are the
value of the group DN's ``cn`` (``group_name_attribute``) RDN, unescaped,
sorted and without duplicates. Nested groups are not expanded.

:func:`to_user_records` turns the users of a ``user_sync`` event (from this
source or the HTTP gateway) into :class:`~airis_mon.schema.UserRecord` rows.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airis_mon.schema import UserRecord

__all__ = [
    "ACTIVE_DIRECTORY",
    "INET_ORG_PERSON",
    "DirectoryUser",
    "dn_key",
    "group_name",
    "map_entry",
    "member_dn",
    "requested_attributes",
    "to_user_records",
]

ACTIVE_DIRECTORY = "active_directory"
INET_ORG_PERSON = "inet_org_person"
Kind = Literal["active_directory", "inet_org_person"]
Attributes = Mapping[str, list[bytes]]

_AD_ATTRIBUTES = ("objectGUID", "sAMAccountName", "mail", "displayName", "department", "title", "memberOf")
_INET_ATTRIBUTES = ("entryUUID", "uid", "mail", "displayName", "cn", "departmentNumber", "ou", "title", "memberOf")
_ESCAPE = re.compile(r"\\([0-9A-Fa-f]{2})|\\(.)", re.DOTALL)
_OPTIONAL_UID = re.compile(r"#'[01]*'B$")  # uniqueMember: "dn#'0101'B"


@dataclass(frozen=True)
class DirectoryUser:
    """One user as the ``user_sync`` event carries it, plus where it came from."""

    user_id: str
    username: str
    email: str
    display_name: str
    department: str
    title: str
    groups: tuple[str, ...]
    dn: str
    kind: Kind
    has_member_of: bool  # False: groups still to be read from group entries

    def as_payload(self) -> dict[str, Any]:
        """The user of the event's ``data.users`` (the HTTP gateway's ``user_sync`` shape)."""
        return {
            "user_id": self.user_id,
            "username": self.username,
            "email": self.email,
            "display_name": self.display_name,
            "department": self.department,
            "title": self.title,
            "groups": list(self.groups),
        }


def requested_attributes(directory: str) -> list[str]:
    """The attributes to ask for in ``directory`` mode (auto: both mappings')."""
    if directory == ACTIVE_DIRECTORY:
        names = _AD_ATTRIBUTES
    elif directory == INET_ORG_PERSON:
        names = _INET_ATTRIBUTES
    else:
        names = _AD_ATTRIBUTES + _INET_ATTRIBUTES
    return list(dict.fromkeys(names))


def _unescape(value: str) -> str:
    """An RFC 4514 attribute value without its escapes (``\\,`` and ``\\c3\\a9`` UTF-8 hex pairs)."""
    if "\\" not in value:
        return value
    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(value):
        raw += value[position : match.start()].encode()
        raw += bytes.fromhex(match.group(1)) if match.group(1) else match.group(2).encode()
        position = match.end()
    raw += value[position:].encode()
    return raw.decode("utf-8", "replace")


def _components(dn: str) -> list[tuple[str, str, str]] | None:
    from ldap3.core.exceptions import LDAPInvalidDnError
    from ldap3.utils.dn import parse_dn

    try:
        return [(attr, _unescape(value), separator) for attr, value, separator in parse_dn(dn, strip=True)]
    except LDAPInvalidDnError:
        return None


def dn_key(dn: str) -> tuple[tuple[str, str], ...] | str:
    """A comparable form of a DN: attribute types and values case-folded, escapes and spaces around
    separators removed (``CN=Ann\\, B , dc=X`` equals ``cn=ann\\2c b,DC=x``)."""
    components = _components(dn)
    if components is None:
        return " ".join(dn.split()).casefold()
    return tuple((attr.casefold(), " ".join(value.split()).casefold()) for attr, value, _ in components)


def group_name(dn: str, name_attribute: str = "cn") -> str:
    """The group's name: the ``name_attribute`` value of the DN's first RDN, else that RDN's first value."""
    components = _components(dn)
    if not components:
        return dn.strip()
    first_rdn = []
    for component in components:
        first_rdn.append(component)
        if component[2] != "+":
            break
    for attr, value, _ in first_rdn:
        if attr.casefold() == name_attribute.casefold():
            return value
    return first_rdn[0][1]


def member_dn(value: str) -> str:
    """The DN of a ``member`` / ``uniqueMember`` value (without uniqueMember's optional ``#'...'B`` UID)."""
    return _OPTIONAL_UID.sub("", value.strip())


def _by_name(attributes: Attributes) -> dict[str, list[bytes]]:
    """Attributes that have values, by lower-case name without options (``memberOf;range=0-*`` ->
    ``memberof``); ldap3 lists requested attributes the entry lacks with no values."""
    named: dict[str, list[bytes]] = {}
    for name, values in attributes.items():
        if values:
            named.setdefault(name.split(";", 1)[0].lower(), []).extend(values)
    return named


def _text(values: list[bytes] | None) -> str:
    if not values:
        return ""
    first = values[0]
    return first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)


def _first(named: dict[str, list[bytes]], *names: str) -> str:
    for name in names:
        text = _text(named.get(name.lower()))
        if text:
            return text
    return ""


def _guid(values: list[bytes] | None) -> str:
    """AD's objectGUID (16 bytes, little-endian fields) as the usual UUID string."""
    if values and isinstance(values[0], bytes) and len(values[0]) == 16:
        return str(uuid.UUID(bytes_le=values[0]))
    return ""


def _rdn_value(dn: str) -> str:
    components = _components(dn)
    return components[0][1] if components else ""


def map_entry(
    dn: str, attributes: Attributes, directory: str = "auto", group_name_attribute: str = "cn"
) -> DirectoryUser:
    """One user entry mapped as the module docstring says. ``attributes`` are the raw values (bytes)."""
    named = _by_name(attributes)
    if directory == "auto":
        kind: Kind = ACTIVE_DIRECTORY if "samaccountname" in named else INET_ORG_PERSON
    else:
        kind = ACTIVE_DIRECTORY if directory == ACTIVE_DIRECTORY else INET_ORG_PERSON
    member_of = [_text([value]) for value in named.get("memberof", [])]
    groups = tuple(sorted({group_name(group, group_name_attribute) for group in member_of} - {""}))
    if kind == ACTIVE_DIRECTORY:
        user_id = _guid(named.get("objectguid")) or dn
        username = _first(named, "sAMAccountName")
        display_name = _first(named, "displayName")
        department = _first(named, "department")
    else:
        user_id = _first(named, "entryUUID") or dn
        username = _first(named, "uid")
        display_name = _first(named, "displayName", "cn")
        department = _first(named, "departmentNumber", "ou")
    return DirectoryUser(
        user_id=user_id,
        username=username or _rdn_value(dn),
        email=_first(named, "mail"),
        display_name=display_name,
        department=department,
        title=_first(named, "title"),
        groups=groups,
        dn=dn,
        kind=kind,
        has_member_of=bool(member_of),
    )


def to_user_records(users: Iterable[Mapping[str, Any]], source: str) -> list[UserRecord]:
    """:class:`UserRecord` rows of the ``data.users`` of a ``user_sync`` event (groups as a JSON list)."""
    return [
        UserRecord(
            user_id=str(user.get("user_id") or ""),
            username=str(user.get("username") or ""),
            email=str(user.get("email") or ""),
            display_name=str(user.get("display_name") or ""),
            department=str(user.get("department") or ""),
            title=str(user.get("title") or ""),
            groups=json.dumps([str(group) for group in user.get("groups") or []], ensure_ascii=False),
            source=source,
        )
        for user in users
    ]
