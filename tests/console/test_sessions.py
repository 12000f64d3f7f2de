"""Tokens, sessions and CSRF tokens (console/sessions.py), with a clock the test controls."""

from __future__ import annotations

import pytest

from airis_mon.console_config import ConsoleToken
from console.sessions import MAX_SESSIONS, SessionStore, TokenBook, csrf_matches, origin_of, same_origin


def _token(name: str, value: str, role: str = "read") -> ConsoleToken:
    return ConsoleToken.model_validate({"name": name, "token": {"env": "CONSOLE_TEST_" + name.upper()}, "role": role})


@pytest.fixture
def book(monkeypatch) -> TokenBook:
    monkeypatch.setenv("CONSOLE_TEST_VIEWER", "viewer-token-0123456789")
    monkeypatch.setenv("CONSOLE_TEST_ONCALL", "oncall-token-0123456789")
    return TokenBook([_token("viewer", ""), _token("oncall", "", "admin")])


def test_a_token_is_its_principal_and_anything_else_is_nobody(book):
    assert book.principal_for("viewer-token-0123456789").name == "viewer"
    assert book.principal_for("viewer-token-0123456789").role == "read"
    oncall = book.principal_for("oncall-token-0123456789", via="session")
    assert (oncall.name, oncall.role, oncall.via, oncall.is_admin) == ("oncall", "admin", "session", True)
    for wrong in ("", "viewer-token-012345678", "viewer-token-0123456789 ", "VIEWER-TOKEN-0123456789"):
        assert book.principal_for(wrong) is None


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_after_their_ttl_and_end_on_sign_out(book):
    clock = _Clock()
    store = SessionStore(ttl_s=600, clock=clock)
    session_id, session = store.create(book.principal_for("oncall-token-0123456789"))
    assert session.principal.via == "session" and session.principal.name == "oncall"
    assert store.get(session_id) == session
    clock.now += 599
    assert store.get(session_id) == session
    clock.now += 1
    assert store.get(session_id) is None  # expired exactly at the ttl
    other_id, _ = store.create(book.principal_for("viewer-token-0123456789"))
    store.end(other_id)
    assert store.get(other_id) is None
    assert store.get(None) is None and store.get("") is None and store.get("made-up") is None


def test_session_ids_and_csrf_tokens_are_random_and_distinct(book):
    store = SessionStore(ttl_s=600)
    principal = book.principal_for("viewer-token-0123456789")
    made = [store.create(principal) for _ in range(50)]
    ids = {session_id for session_id, _ in made}
    csrf = {session.csrf_token for _, session in made}
    assert len(ids) == 50 and len(csrf) == 50
    assert all(len(session_id) >= 43 for session_id in ids)  # 32 random bytes, base64url
    assert not ids & csrf


def test_the_store_never_holds_more_than_its_cap(book):
    store = SessionStore(ttl_s=600)
    principal = book.principal_for("viewer-token-0123456789")
    first_id, _ = store.create(principal)
    for _ in range(MAX_SESSIONS):
        store.create(principal)
    assert len(store._sessions) == MAX_SESSIONS
    assert store.get(first_id) is None  # the oldest was dropped


def test_csrf_and_origin_checks(book):
    _, session = SessionStore(ttl_s=600).create(book.principal_for("viewer-token-0123456789"))
    assert csrf_matches(session, session.csrf_token)
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, "")
    assert not csrf_matches(session, session.csrf_token[:-1])
    assert origin_of("https://Airis.Example.com:8443/dashboard?alert=1") == "https://airis.example.com:8443"
    allowed = {"https://airis.example.com"}
    assert same_origin(None, allowed)
    assert same_origin("https://airis.example.com", allowed)
    assert not same_origin("https://evil.example", allowed)
    assert not same_origin("null", allowed)
