"""The ``ldap`` poller: one poll = one full directory sync -> one ``user_sync`` event (no Beam).

The event has exactly the shape the HTTP gateway emits for
``POST /api/v1/integrations/user-sync`` (:mod:`pipelines.gateway`)::

    {"timestamp": now_ms, "event_type": "user_sync", "source": "<source or integration name>",
     "severity": "info",
     "data": {"count": 2, "users": [{"user_id": "...", "username": "alice", "email": "...",
                                      "display_name": "...", "department": "...", "title": "...",
                                      "groups": ["ml-admins"]}, ...]}}

``users`` are sorted by username; ``count`` is their number (0 is a valid
sync: a filter that matches nobody is visible, not silent). With
``environment`` set, ``data`` also carries ``"environment"``. ``timestamp``
is the poll time in epoch milliseconds. The mapping is
:mod:`sources.ldap.mapping`, the sync :mod:`sources.ldap.sync`.
"""

from __future__ import annotations

import logging

from sources.ldap.config import LdapConfig
from sources.ldap.mapping import DirectoryUser
from sources.ldap.sync import sync_directory

__all__ = ["EVENT_TYPE", "LdapPoller", "user_sync_event"]

log = logging.getLogger(__name__)

EVENT_TYPE = "user_sync"


def user_sync_event(users: list[DirectoryUser], now_ms: int, source: str, environment: str = "") -> dict:
    """The public-contract ``user_sync`` event of ``users`` at ``now_ms`` (epoch ms)."""
    data: dict = {"count": len(users), "users": [user.as_payload() for user in users]}
    if environment:
        data["environment"] = environment
    return {"timestamp": now_ms, "event_type": EVENT_TYPE, "source": source, "severity": "info", "data": data}


class LdapPoller:
    """Syncs one directory per poll; see the module docstring. ``LdapPoller(config)`` is the factory
    :class:`sources.polling.ReadFromPoller` needs (pickle it with ``functools.partial``)."""

    def __init__(self, config: LdapConfig):
        self._config = config

    def setup(self) -> None:
        """Nothing to open: each poll is its own LDAP session (no idle connection to go stale)."""

    def teardown(self) -> None:
        """Nothing to close (each poll unbinds)."""

    def poll(self, now_ms: int) -> list[dict]:
        config = self._config
        result = sync_directory(config)
        log.info("ldap %s: %d users in %d page(s) (+%d group page(s))", config.name, len(result.users),
                 result.user_pages, result.group_pages)  # fmt: skip
        return [user_sync_event(result.users, now_ms, config.event_source, config.environment)]
