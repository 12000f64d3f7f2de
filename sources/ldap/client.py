"""One LDAP session through ``ldap3`` (no Beam): connect, TLS, simple bind, paged searches.

::

    with LdapClient("ldaps://dc1.example.com", "cn=svc,dc=example,dc=com", SecretStr("..."),
                    ca_file="/etc/ssl/corp-ca.pem", timeout_s=30) as client:   # connect (+ StartTLS) + bind
        for dn, attributes in client.paged_search("dc=example,dc=com", "(uid=*)", ["uid", "mail"], 500):
            ...                                                      # raw values: {name: [bytes, ...]}
        client.last_pages                                            # search requests of that search

TLS: an ``ldaps://`` URL wraps the socket at connect; ``start_tls=True`` sends
StartTLS on an ``ldap://`` connection before the bind. Both verify the server
certificate (``ssl.CERT_REQUIRED``) against ``ca_file`` (else the system's
CAs) and check its host name.

Timeouts: ``timeout_s`` (whole seconds: ldap3 sets ``SO_RCVTIMEO`` in seconds)
bounds the TCP connect, each wait for an answer and (as the server-side time
limit) each search request.

Errors are translated here: connection refused or reset, timeouts, and the
result codes busy (51), unavailable (52) and timeLimitExceeded (3) become
:class:`~airis_mon.errors.TransientError`; invalid credentials (49, the
message names the bind DN), certificate failures, a failed StartTLS,
sizeLimitExceeded (4, the sync would be incomplete) and every other result
code :class:`~airis_mon.errors.PermanentError`. No message ever contains the
password.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

from pydantic import SecretStr

from airis_mon.errors import PermanentError, TransientError

__all__ = ["TRANSIENT_RESULTS", "LdapClient"]

log = logging.getLogger(__name__)

#: LDAP result codes worth retrying: timeLimitExceeded, busy, unavailable.
TRANSIENT_RESULTS = frozenset({3, 51, 52})
_INVALID_CREDENTIALS = 49
_SIZE_LIMIT_EXCEEDED = 4
_CERTIFICATE_FAILURES = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "doesn't match any name")
_SEARCH_ENTRY = "searchResEntry"


class LdapClient:
    """One bound LDAP session; see the module docstring. Use it as a context manager."""

    def __init__(self, url: str, bind_dn: str, password: SecretStr, *, start_tls: bool = False,
                 ca_file: str | None = None, timeout_s: int = 30):  # fmt: skip
        self._url = url
        self._bind_dn = bind_dn
        self._password = password
        self._start_tls = start_tls
        self._ca_file = ca_file
        self._timeout_s = timeout_s
        self._connection = None
        #: Search requests (pages) sent by the last :meth:`paged_search`.
        self.last_pages = 0

    def __enter__(self) -> LdapClient:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- session ------------------------------------------------------------------------------------

    def _server(self):
        import ldap3

        parts = urlsplit(self._url)
        use_ssl = parts.scheme.lower() == "ldaps"
        tls = None
        if use_ssl or self._start_tls:
            try:
                ipaddress.ip_address(parts.hostname)
                sni = None  # no SNI for an address
            except ValueError:
                sni = parts.hostname
            with self._errors(f"TLS setup (ca_file {self._ca_file})"):  # e.g. the CA file does not exist
                tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self._ca_file, sni=sni)
        return ldap3.Server(
            parts.hostname,
            port=parts.port or (636 if use_ssl else 389),
            use_ssl=use_ssl,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=self._timeout_s,
        )

    def open(self) -> None:
        """Connect, StartTLS when configured, and bind."""
        import ldap3

        if self._connection is not None:
            return
        connection = ldap3.Connection(
            self._server(),
            user=self._bind_dn,
            password=self._password.get_secret_value(),
            authentication=ldap3.SIMPLE,
            client_strategy=ldap3.SYNC,
            raise_exceptions=True,
            receive_timeout=self._timeout_s,
            auto_referrals=False,
            check_names=False,  # no schema is read; DNs and filters go to the server as written
            read_only=True,
            collect_usage=True,
        )
        try:
            with self._errors("connect"):
                connection.open()
            if self._start_tls:
                with self._errors("StartTLS"):
                    connection.start_tls()
            with self._errors(f"bind as {self._bind_dn!r}"):
                connection.bind()
        except BaseException:
            self._abandon(connection)
            raise
        self._connection = connection

    def close(self) -> None:
        """Unbind and close the socket (errors while closing are ignored)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._abandon(connection)

    @staticmethod
    def _abandon(connection) -> None:
        try:
            connection.unbind()
        except Exception as error:  # closing a session that may already be broken
            log.debug("ldap unbind failed: %s", type(error).__name__)

    # --- searches -----------------------------------------------------------------------------------

    def paged_search(self, base_dn: str, search_filter: str, attributes: list[str],
                     page_size: int) -> Iterator[tuple[str, dict[str, list[bytes]]]]:  # fmt: skip
        """Every entry under ``base_dn`` (subtree) matching ``search_filter``: ``(dn, raw attributes)``,
        read ``page_size`` entries a request (RFC 2696 paged results). Referrals are skipped."""
        import ldap3

        self.open()
        connection = self._connection
        before = connection.usage.search_operations
        action = f"search {base_dn!r} {search_filter}"
        try:
            with self._errors(action):
                for item in connection.extend.standard.paged_search(
                    base_dn,
                    search_filter,
                    search_scope=ldap3.SUBTREE,
                    dereference_aliases=ldap3.DEREF_NEVER,
                    attributes=attributes,
                    time_limit=self._timeout_s,
                    paged_size=page_size,
                    paged_criticality=True,  # a server that cannot page must say so, not truncate
                    generator=True,
                ):
                    if item.get("type") == _SEARCH_ENTRY:
                        yield item["dn"], dict(item.get("raw_attributes") or {})
            result = connection.result or {}
            code = int(result.get("result") or 0)  # ldap3 does not raise for size and time limits
            if code:
                raise self._result_error(action, code, result.get("description"), result.get("message"))
        finally:
            self.last_pages = connection.usage.search_operations - before

    # --- errors -------------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        password = self._password.get_secret_value()
        return text.replace(password, "**********") if password else text

    def _result_error(self, action: str, code: int, description: object, message: object) -> Exception:
        detail = f"{description or 'error'} (LDAP result {code})"
        if message:
            detail += f": {' '.join(str(message).split())[:300]}"
        text = self._scrub(f"ldap {self._url}: {action} failed: {detail}")
        if code == _INVALID_CREDENTIALS:
            return PermanentError(f"{text}; check bind_dn and bind_password")
        if code == _SIZE_LIMIT_EXCEEDED:
            return PermanentError(f"{text}; the server's size limit cut the sync short (raise it for this account)")
        if code in TRANSIENT_RESULTS:
            return TransientError(text)
        return PermanentError(text)

    def _failure(self, action: str, error: Exception) -> Exception:
        """A client-side failure (socket, TLS, ldap3) of ``action`` as an AIRIS error."""
        from ldap3.core import exceptions as ex

        text = self._scrub(f"ldap {self._url}: {action} failed: {type(error).__name__}: {error}")[:600]
        if isinstance(error, ex.LDAPCertificateError | ex.LDAPStartTLSError) or any(
            marker in str(error) for marker in _CERTIFICATE_FAILURES
        ):
            return PermanentError(f"{text} (check ca_file and the server's certificate)")
        if isinstance(error, ex.LDAPCommunicationError | ex.LDAPResponseTimeoutError | OSError):
            return TransientError(text)
        return PermanentError(text)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate what ``ldap3`` raises during ``action``; see the module docstring."""
        from ldap3.core import exceptions as ex

        try:
            yield
        except ex.LDAPOperationResult as error:
            raise self._result_error(action, int(error.result or 0), error.description, error.message) from None
        except (ex.LDAPExceptionError, OSError) as error:
            raise self._failure(action, error) from None
