"""Remembering requests already received: webhook delivery ids and ``Idempotency-Key`` headers.

A key is remembered for ``window_s`` seconds after its first arrival (and at most ``max_keys`` keys: the
oldest are forgotten first). Durable across restarts: the key is stored in the request's own spool line
(:mod:`sources.gateway.envelope`), and :meth:`KeyMemory.load` reloads the keys of the window from the spool.
A request whose store failed is forgotten, so its retry is accepted.

Keys are namespaced by who may send them: ``mlflow:<X-MLflow-Delivery-Id>``,
``github:<X-GitHub-Delivery>``, ``idem:<token name>:<Idempotency-Key>``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KeyMemory", "Remembered"]


@dataclass
class Remembered:
    """A key's first request: the SHA-256 ``digest`` of its body, when it arrived (epoch s), and its ack id
    (``ack``: a future while the first request is still being stored)."""

    digest: str
    first_seen_s: float
    ack: Future


class KeyMemory:
    """Keys seen within the last ``window_s`` seconds (at most ``max_keys``). Thread-safe."""

    def __init__(self, window_s: float, max_keys: int = 1_000_000):
        if window_s <= 0 or max_keys <= 0:
            raise ValueError("window_s and max_keys must be positive")
        self.window_s = window_s
        self.max_keys = max_keys
        self._entries: OrderedDict[str, Remembered] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self, now_s: float) -> None:
        horizon = now_s - self.window_s
        entries = self._entries
        while entries:
            first = next(iter(entries.values()))
            if first.first_seen_s > horizon and len(entries) <= self.max_keys:
                break
            entries.popitem(last=False)

    def claim(self, key: str, digest: str, now_s: float, store) -> tuple[Remembered, bool]:
        """``(the key's first request, whether this call is it)``. For a new key, ``store()`` is called (under
        the lock, so a concurrent repeat waits for the same future) and must return the future of the ack id;
        a failed store forgets the key again."""
        with self._lock:
            self._evict(now_s)
            known = self._entries.get(key)
            if known is not None:
                return known, False
            remembered = Remembered(digest, now_s, store())
            self._entries[key] = remembered
            if len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)  # the oldest makes room
        remembered.ack.add_done_callback(lambda done, key=key: done.exception() is not None and self.forget(key))
        return remembered, True

    def forget(self, key: str) -> None:
        """Forget ``key`` (its first request was not stored)."""
        with self._lock:
            self._entries.pop(key, None)

    def remember_stored(self, key: str, digest: str, ack: str, first_seen_s: float) -> None:
        """Remember a key whose request is already stored (the spool's record of it)."""
        future: Future = Future()
        future.set_result(ack)
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = Remembered(digest, first_seen_s, future)

    def load(self, spool: str | Path, now_s: float) -> int:
        """Remember the keys the spool holds from the last ``window_s`` seconds; return how many."""
        from sources.gateway.spool import spooled_keys

        loaded = 0
        for entry in spooled_keys(spool, now_s - self.window_s):
            self.remember_stored(entry["key"], entry.get("digest") or "", str(entry["ack"]),
                                 entry["received_ms"] / 1000)  # fmt: skip
            loaded += 1
        with self._lock:
            self._evict(now_s)
        return loaded
