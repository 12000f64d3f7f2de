"""Who may use the console: tokens, sign-in sessions and CSRF protection.

- **Tokens** (``console.tokens``) are kept as SHA-256 digests and compared in constant time against every
  digest (no early exit), as the gateway does. A token is either sent as ``Authorization: Bearer TOKEN``
  (the GraphQL API, scripts) or typed once into the sign-in page.
- **Sessions**: signing in creates a random 256-bit session id, kept only as its SHA-256 digest on the
  server (in memory: a restart signs everyone out) and sent to the browser as the ``airis_session`` cookie:
  ``HttpOnly`` (no script can read it), ``SameSite=Strict`` (no other site's page or link sends it),
  ``Path=/``, ``Max-Age`` = ``console.session_ttl``, and ``Secure`` when ``public_url`` is https. The
  token itself never reaches the browser again, nor does anything else secret.
- **CSRF**: every state-changing request made with the cookie (sign-out, acknowledge, silences, GraphQL)
  must carry the session's CSRF token (a second random value, shown in the page's forms as the hidden field
  ``csrf_token`` or sent as the ``X-CSRF-Token`` header), and, when the browser sends an ``Origin``
  header, it must be the console's own origin. Bearer-token requests carry no ambient credential and need
  neither. The sign-in form itself is checked by origin (a forged sign-in would only sign the victim in
  as the attacker).

Times are epoch seconds (``clock``, default :func:`time.time`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from airis_mon.console_config import ConsoleToken
from console.records import Principal

__all__ = ["SESSION_COOKIE", "Session", "SessionStore", "TokenBook", "csrf_matches", "origin_of", "same_origin"]

SESSION_COOKIE = "airis_session"
#: Sessions kept at most (the oldest is dropped first): a flood of sign-ins cannot exhaust memory.
MAX_SESSIONS = 10_000


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


class TokenBook:
    """The configured tokens, as digests; :meth:`principal_for` does the same work for any token."""

    def __init__(self, tokens: Iterable[ConsoleToken]):
        self._entries = [(_digest(t.token.get_secret_value()), t.name, t.role) for t in tokens]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def principal_for(self, presented: str, via: str = "bearer") -> Principal | None:
        """The principal whose token is ``presented``, or ``None``."""
        digest = _digest(presented)
        found = None
        for expected, name, role in self._entries:  # no early exit: the same work whichever token matches
            if hmac.compare_digest(digest, expected):
                found = Principal(name=name, role=role, via=via)
        return found


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_token: str
    expires_at_s: float


class SessionStore:
    """Signed-in sessions by the digest of their id; thread-safe."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.time):
        self._ttl_s = ttl_s
        self._clock = clock
        self._sessions: dict[bytes, Session] = {}
        self._lock = threading.Lock()

    def create(self, principal: Principal) -> tuple[str, Session]:
        """A new session for ``principal``: ``(session id for the cookie, session)``."""
        session_id = secrets.token_urlsafe(32)
        session = Session(
            principal=Principal(principal.name, principal.role, via="session"),
            csrf_token=secrets.token_urlsafe(32),
            expires_at_s=self._clock() + self._ttl_s,
        )
        with self._lock:
            self._drop_expired()
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[_digest(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie value, or ``None`` (unknown, expired or no cookie)."""
        if not session_id:
            return None
        key = _digest(session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.expires_at_s <= self._clock():
                del self._sessions[key]
                return None
            return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_digest(session_id), None)

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def _drop_expired(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._sessions.items() if s.expires_at_s <= now]:
            del self._sessions[key]


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Whether ``presented`` is the session's CSRF token (constant time)."""
    return bool(presented) and hmac.compare_digest(session.csrf_token.encode(), presented.encode())


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL, lower-cased."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(origin_header: str | None, allowed: Iterable[str]) -> bool:
    """True when the browser sent no ``Origin`` (old browsers, same-origin GETs) or one of ``allowed``."""
    if origin_header is None:
        return True
    return origin_header.strip().lower() in {origin.lower() for origin in allowed}
