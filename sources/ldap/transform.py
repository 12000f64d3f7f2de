"""``ReadFromLdap``: an LDAP / Active Directory directory -> ``user_sync`` events and health.

>>> outputs = pipeline | ReadFromLdap(config)          # doctest: +SKIP
>>> outputs["events"], outputs["dead_letters"], outputs["health"]  # doctest: +SKIP

Bounded (``poll.interval_s`` unset or ``bounded=True``): one sync when the
pipeline runs. Unbounded: one sync every ``poll.interval_s`` seconds from
``poll.start`` to ``poll.stop``. Each sync is one ``user_sync`` event (see
:mod:`sources.ldap.poller`); ``points`` stays empty. A sync that fails (server
down, wrong password) is an unhealthy health record, never a crashed run.
"""

from __future__ import annotations

import functools

import apache_beam as beam

from sources.ldap.config import LdapConfig
from sources.ldap.poller import LdapPoller
from sources.polling import ReadFromPoller

__all__ = ["ReadFromLdap"]


class ReadFromLdap(beam.PTransform):
    """Sync the configured directory; see the module docstring."""

    def __init__(self, config: LdapConfig, bounded: bool = False):
        super().__init__()
        self._config = config
        self._read = ReadFromPoller(config.name, functools.partial(LdapPoller, config), config.poll, bounded)

    def expand(self, pbegin):
        return pbegin | "Poll" >> self._read
