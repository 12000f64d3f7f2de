"""``ClientPoller``: the client lifecycle every API poller shares (no Beam).

A poller (:mod:`sources.polling`) that talks to one API through one client
object subclasses it and implements :meth:`ClientPoller.make_client`.
:attr:`ClientPoller.client` builds the client on first use, so ``poll`` works
with or without an explicit ``setup``; ``teardown`` closes it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClientPoller"]


class ClientPoller:
    """Holds one API client (anything with ``close()``); see the module docstring."""

    _client: Any = None

    def make_client(self) -> Any:
        raise NotImplementedError

    def setup(self) -> None:
        if self._client is None:
            self._client = self.make_client()

    @property
    def client(self) -> Any:
        self.setup()
        return self._client

    def teardown(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
