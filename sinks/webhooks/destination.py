"""Where a webhook may go: the SSRF rules, checked at registration and again, with DNS, at every delivery.

No Beam here (the gateway imports this module); ``import sinks.webhooks.destination`` stays light.

- **Policy** (:class:`DestinationPolicy`): public addresses only. Loopback, private (RFC 1918, unique
  local ``fc00::/7``), link-local (``169.254.0.0/16`` with the ``169.254.169.254`` cloud metadata address,
  ``fe80::/10``), site-local, unspecified, multicast, reserved, shared (carrier-grade NAT ``100.64.0.0/10``)
  and every other not globally routable address are refused, also written as IPv4-mapped IPv6
  (``::ffff:127.0.0.1``), NAT64 (``64:ff9b::7f00:1``) or 6to4 (``2002:7f00:1::``), and so are the loopback
  names (``localhost``, ``*.localhost``, ``ip6-localhost``, ...) and the cloud metadata names
  (``metadata.google.internal``, ``metadata``, ...; the AWS IPv6 metadata ``fd00:ec2::254`` is unique
  local). ``allowed_networks`` (CIDRs) lets the operator open networks, e.g. ``127.0.0.0/8`` for tests or
  ``10.20.0.0/16`` for an internal receiver; a name stands for its well-known address there (``localhost``
  for ``127.0.0.1``, a metadata name for ``169.254.169.254``).
- **Registration** (:func:`check_registration`, no DNS): the URL (scheme, host, IP literals in every form
  a resolver accepts, special names) and the extra headers (RFC 9110 names; no CR, LF, NUL or other
  control characters in values; no ``Host``, ``Content-Length``, ``Transfer-Encoding``, ``Connection``,
  other hop-by-hop headers or headers the sink sets). Messages never repeat a URL or a header value.
- **Delivery** (:func:`resolve_destination`, :class:`PinnedAdapter`): the host is resolved once per
  attempt, *every* address it resolves to is checked (one refused address refuses the destination),
  and the connection goes to the first checked address: no second lookup happens between the check
  and the connection, so a name re-bound by DNS after the check ("DNS rebinding") cannot redirect it.
  The ``Host`` header, TLS SNI and certificate verification keep the URL's host name. A refused
  destination raises :class:`DestinationRefusedError` (a :class:`~airis_mon.errors.PermanentError`: never
  retried, the delivery goes to the dead letter); a failed lookup raises :class:`DestinationUnresolvedError`
  (a :class:`~airis_mon.errors.TransientError`: retried). Pinned connections never use
  ``HTTP(S)_PROXY``: they go straight to the checked address.
- **Redaction** (:func:`redact_headers`, :func:`redacted_registration`): registration headers are
  secrets (a receiver's ``Authorization``); they are shown as their names with the value ``"***"``:
  ``{"headers": {"Authorization": "***"}}``.

::

    policy = DestinationPolicy(allowed_networks=["127.0.0.0/8"])     # default: DestinationPolicy()
    problems = check_registration(url, headers, policy)              # [("url", "the host is ..."), ...]
    destination = resolve_destination(url, policy)                   # raises DestinationRefusedError
    session.mount("https://", PinnedAdapter(policy))                 # or HttpRequest(..., transport=...)
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

from airis_mon.errors import PermanentError, TransientError

__all__ = [
    "FORBIDDEN_HEADERS",
    "LOOPBACK_HOST_NAMES",
    "METADATA_HOST_NAMES",
    "REDACTED",
    "DestinationPolicy",
    "DestinationRefusedError",
    "DestinationUnresolvedError",
    "PinnedAdapter",
    "PinnedDestination",
    "Resolver",
    "check_registration",
    "header_problems",
    "ip_literal",
    "redact_headers",
    "redacted_registration",
    "resolve_destination",
    "url_problem",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``socket.getaddrinfo``-compatible: ``resolver(host, port, family, type, proto)`` -> ``[(family, type,
#: proto, canonname, sockaddr), ...]``; raises ``socket.gaierror`` when the name does not resolve.
Resolver = Callable[..., Sequence[tuple]]

#: What a redacted header value reads.
REDACTED = "***"
#: Cloud metadata service names (GCP, AWS instance-data), refused unless 169.254.169.254 is allowed.
METADATA_HOST_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)
#: Loopback names of common resolvers and ``/etc/hosts`` files (besides ``*.localhost``).
LOOPBACK_HOST_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4", "localhost6",
     "localhost6.localdomain6", "ip6-localhost", "ip6-loopback"}
)  # fmt: skip
#: Headers a registration may not set (case-insensitive): framing, hop-by-hop, and what the sink sets
#: itself (also every ``webhook-*`` header, the signature).
FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
     "trailer", "upgrade", "expect", "content-type"}
)  # fmt: skip
_SET_BY_SINK = frozenset({"host", "content-length", "transfer-encoding", "content-type"})
#: At most this many extra headers per registration, each name and value at most this long (characters).
MAX_HEADERS = 32
MAX_HEADER_NAME_CHARS = 256
MAX_HEADER_VALUE_CHARS = 8192

_METADATA_ADDRESS = ipaddress.ip_address("169.254.169.254")
# A special name -> the address it stands for (it is refused unless that address is allowed), and why.
_NAMED_ADDRESSES = {
    **dict.fromkeys(METADATA_HOST_NAMES, (_METADATA_ADDRESS, "a cloud metadata name")),
    **{
        name: (ipaddress.ip_address("::1" if "6" in name else "127.0.0.1"), "a loopback name")
        for name in LOOPBACK_HOST_NAMES
    },
}
_CLOUD_METADATA = {_METADATA_ADDRESS, ipaddress.ip_address("fd00:ec2::254")}
# Refused networks, most specific phrase first; ipaddress's own flags and is_global catch the rest.
_REFUSED_NETWORKS = tuple(
    (ipaddress.ip_network(network), phrase)
    for network, phrase in (
        ("0.0.0.0/8", "an unspecified address"),
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("169.254.0.0/16", "a link-local address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
_FLAGS = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# fullmatch, not "^...$": "$" also matches before a trailing newline.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP field name (RFC 9110 token)
_LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.IGNORECASE)
_HOST_LABEL = re.compile(r"[a-z0-9_-]{1,63}")  # after IDNA encoding; "_" occurs in real names
_DEFAULT_PORTS = {"http": 80, "https": 443}


class DestinationRefusedError(PermanentError):
    """The destination breaks the policy; not retried. The message holds no URL, path or header value."""


class DestinationUnresolvedError(TransientError):
    """The host name did not resolve (now); retried."""


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` stands for when it is an IP literal in any form a resolver accepts
    (``127.0.0.1``, ``::1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and reaches (mapped, NAT64, 6to4), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination (ignoring any allowance), or None if it is one."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        phrase = _refusal(embedded)
        return f"{phrase} (IPv4 inside IPv6)" if phrase else None
    if address in _CLOUD_METADATA:
        return "a cloud metadata address"
    for network, phrase in _REFUSED_NETWORKS:
        if address in network:
            return phrase
    for flag, phrase in _FLAGS:
        if getattr(address, flag):
            return phrase
    return None if address.is_global else "an address that is not globally routable"


def _normalized_host(host: str) -> str | None:
    """``host`` as it is looked up: lower case, IDNA (UTS 46, as requests encodes it), no trailing dot;
    None when it is no valid host name."""
    host = host.lower()
    if not host.isascii():
        try:
            import idna  # requests' own dependency

            host = idna.encode(host, uts46=True).decode("ascii")
        except (ImportError, UnicodeError, ValueError):  # idna.IDNAError is a UnicodeError
            return None
    host = host[:-1] if host.endswith(".") else host
    if ip_literal(host) is not None:
        return host
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        return None
    return host


@dataclass(frozen=True)
class DestinationPolicy:
    """Which destinations webhooks may reach: public addresses, plus ``allowed_networks``.

    ``allowed_networks``: CIDRs (``"127.0.0.0/8"``, ``"fd12:3456::/48"``) reachable although they are
    loopback, private, link-local, ...; strings are parsed (``ValueError`` for a bad one, or one with host
    bits set). ``allow_http``: ``http://`` URLs are accepted as well as ``https://``.

    >>> DestinationPolicy().address_problem(ipaddress.ip_address("10.1.2.3"))
    'a private address'
    >>> DestinationPolicy(allowed_networks=["10.0.0.0/8"]).address_problem(ipaddress.ip_address("10.1.2.3"))
    """

    allowed_networks: tuple[IPNetwork, ...] = ()
    allow_http: bool = True

    def __post_init__(self) -> None:
        networks = []
        for network in self.allowed_networks:
            try:
                networks.append(ipaddress.ip_network(network))
            except ValueError as error:
                raise ValueError(f"allowed network {network!r} is not a CIDR network ({error})") from None
        object.__setattr__(self, "allowed_networks", tuple(networks))

    @classmethod
    def allow_all(cls, allow_http: bool = True) -> DestinationPolicy:
        """Every address allowed (``allow_private_addresses: true``): only the URL's form is checked."""
        return cls(allowed_networks=("0.0.0.0/0", "::/0"), allow_http=allow_http)

    def allows(self, address: IPAddress) -> bool:
        """``address`` (or the IPv4 address it carries) is in an allowed network."""
        embedded = _embedded_ipv4(address)
        return any(address in network or (embedded is not None and embedded in network)
                   for network in self.allowed_networks)  # fmt: skip

    def address_problem(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be reached (``"a loopback address"``), or None when it may."""
        return None if self.allows(address) else _refusal(address)

    def host_problem(self, host: str) -> str | None:
        """Why ``host`` may not be reached, judged without DNS: IP literals, loopback and metadata names.

        ``host`` is normalized first (see :func:`url_problem`); a name that is neither is fine here and
        is judged by the addresses it resolves to at delivery."""
        address = ip_literal(host)
        if address is not None:
            return self.address_problem(address)
        named = _NAMED_ADDRESSES.get(host) or (_NAMED_ADDRESSES["localhost"] if host.endswith(".localhost") else None)
        if named is not None and not self.allows(named[0]):
            return named[1]
        return None


def _url_form_problem(url: str, policy: DestinationPolicy) -> tuple[str | None, str]:
    """(problem of the URL's form, or None; the normalized host)."""
    if not isinstance(url, str) or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return "the URL may not contain spaces or control characters", ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return "the URL is not valid", ""
    schemes = ("http", "https") if policy.allow_http else ("https",)
    if parts.scheme.lower() not in schemes:
        return ("the URL must be http:// or https://" if policy.allow_http else "the URL must be https://"), ""
    if not parts.hostname:
        return "the URL has no host", ""
    host = _normalized_host(parts.hostname)
    if host is None:
        return "the URL's host is not a valid host name", ""
    return None, host


def url_problem(url: str, policy: DestinationPolicy) -> str | None:
    """Why ``url`` is no acceptable webhook destination under ``policy``, without DNS, or None.

    The message (``"the host is a loopback address"``) never repeats the URL."""
    problem, host = _url_form_problem(url, policy)
    if problem:
        return problem
    refused = policy.host_problem(host)
    return f"the host is {refused}" if refused else None


def header_problems(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(field, message)`` per problem of a registration's extra headers; ``field`` is
    ``headers.<Name>`` for a valid name, else ``headers``. Messages never repeat a value."""
    if not isinstance(headers, Mapping):
        return [("headers", "must be an object of header names to values")]
    problems: list[tuple[str, str]] = []
    if len(headers) > MAX_HEADERS:
        problems.append(("headers", f"at most {MAX_HEADERS} headers"))
    seen: set[str] = set()
    for position, (name, value) in enumerate(headers.items(), start=1):
        if not isinstance(name, str) or len(name) > MAX_HEADER_NAME_CHARS or not _TOKEN.fullmatch(name):
            problems.append(("headers", f"header #{position}: the name is not a valid HTTP header name"))
            continue
        where, lower = f"headers.{name}", name.lower()
        if lower in _SET_BY_SINK or lower.startswith("webhook-"):
            problems.append((where, f"header {name} is set by the sink and cannot be configured"))
        elif lower in FORBIDDEN_HEADERS:
            problems.append((where, f"header {name} is a hop-by-hop header and cannot be configured"))
        if lower in seen:
            problems.append((where, f"header {name} is given twice"))
        seen.add(lower)
        if not isinstance(value, str):
            problems.append((where, f"header {name}: the value must be a string"))
        elif any(c in value for c in "\r\n\0"):
            problems.append((where, f"header {name}: the value may not contain CR, LF or NUL"))
        elif any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
            problems.append((where, f"header {name}: the value may not contain control characters"))
        elif any(ord(c) > 0xFF for c in value):
            problems.append((where, f"header {name}: the value must be ASCII (or Latin-1) text"))
        elif len(value) > MAX_HEADER_VALUE_CHARS:
            problems.append((where, f"header {name}: the value is longer than {MAX_HEADER_VALUE_CHARS} characters"))
    return problems


def check_registration(url: str, headers: Mapping[str, str], policy: DestinationPolicy) -> list[tuple[str, str]]:
    """Every problem of a webhook registration as ``(field, message)`` (``[]``: acceptable), without DNS.

    ``field`` is ``url``, ``headers`` or ``headers.<Name>``. A host *name* is accepted here and judged by
    what it resolves to at every delivery (:func:`resolve_destination`).

    >>> for problem in check_registration("https://127.0.0.1/in", {"X-A": "1\\nX-B: 2"}, DestinationPolicy()):
    ...     print(problem)
    ('url', 'the host is a loopback address')
    ('headers.X-A', 'header X-A: the value may not contain CR, LF or NUL')
    """
    problem = url_problem(url, policy)
    return ([("url", problem)] if problem else []) + header_problems(headers)


@dataclass(frozen=True)
class PinnedDestination:
    """A checked destination: connect to ``address``; speak to ``host``.

    ``host``: the URL's host (normalized: lower case, IDNA, no trailing dot), for ``Host``, SNI and the
    certificate check; ``address``: the checked address the connection goes to; ``addresses``: every
    address the host resolved to (all checked).
    """

    scheme: str
    host: str
    port: int
    address: str
    addresses: tuple[str, ...] = field(default=())
    explicit_port: bool = False

    @property
    def host_header(self) -> str:
        """The ``Host`` header value: the host name (an IPv6 literal in brackets) and a non-default port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.explicit_port and self.port != _DEFAULT_PORTS[self.scheme] else host


def resolve_destination(
    url: str, policy: DestinationPolicy, resolver: Resolver = socket.getaddrinfo
) -> PinnedDestination:
    """Resolve ``url``'s host once, check every address, and return where to connect.

    Raises :class:`DestinationRefusedError` (permanent) when the URL breaks the policy or any resolved address
    is refused, and :class:`DestinationUnresolvedError` (transient) when the name does not resolve. IP literals
    are not passed to ``resolver``; names are, exactly once.
    """
    problem, host = _url_form_problem(url, policy)
    if problem:
        raise DestinationRefusedError(f"destination refused: {problem}")
    refused = policy.host_problem(host)
    if refused:
        raise DestinationRefusedError(f"destination refused: the host is {refused}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS[scheme]
    literal = ip_literal(host)
    addresses = [literal] if literal is not None else _resolve(host, port, resolver)
    for address in addresses:
        refused = policy.address_problem(address)
        if refused:
            raise DestinationRefusedError(f"destination refused: the host resolves to {address}, {refused}")
    return PinnedDestination(
        scheme, host, port, str(addresses[0]), tuple(str(a) for a in addresses), explicit_port=parts.port is not None
    )


def _resolve(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        infos = resolver(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except UnicodeError:
        raise DestinationRefusedError("destination refused: the URL's host is not a valid host name") from None
    except OSError as error:  # socket.gaierror and friends
        why = error.strerror or type(error).__name__
        raise DestinationUnresolvedError(f"could not resolve the host ({why})") from None
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            address = ipaddress.ip_address(sockaddr[0])
        except ValueError:
            raise DestinationRefusedError("destination refused: the host resolves to a non-IP address") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DestinationUnresolvedError("could not resolve the host (no IPv4 or IPv6 address)")
    return addresses


class PinnedAdapter(HTTPAdapter):
    """A requests transport adapter that sends each request only to an address it has just checked.

    Per :meth:`send`: :func:`resolve_destination` (one lookup, every address checked), then the
    connection is made to the checked address itself (a urllib3 pool bound to the IP, so no second
    lookup), with the URL's host name as ``Host`` header, TLS ``server_hostname`` (SNI) and
    ``assert_hostname`` (certificate check). Proxies are never used; redirects are not followed.
    Pools are kept per (address, host name, port), so connections are reused while the name keeps
    resolving to the same address. Thread-safe.

    >>> session = requests.Session()  # doctest: +SKIP
    >>> session.mount("https://", PinnedAdapter(DestinationPolicy()))  # doctest: +SKIP
    """

    def __init__(self, policy: DestinationPolicy, resolver: Resolver = socket.getaddrinfo, **kwargs: Any):
        self._policy = policy
        self._resolver = resolver
        self._pinned = threading.local()
        super().__init__(**kwargs)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._pinned = threading.local()

    __attrs__: ClassVar[list[str]] = [*HTTPAdapter.__attrs__, "_policy", "_resolver"]  # pickled state

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        """Send ``request`` (a ``PreparedRequest``) to its checked address; raises
        :class:`DestinationRefusedError` / :class:`DestinationUnresolvedError` before connecting."""
        destination = resolve_destination(request.url, self._policy, self._resolver)
        pinned = request.copy()
        pinned.headers["Host"] = destination.host_header
        self._pinned.destination = destination
        try:
            return super().send(pinned, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=None)
        finally:
            self._pinned.destination = None

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        """The pool of the checked address, verifying TLS against the URL's host name."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        destination: PinnedDestination | None = getattr(self._pinned, "destination", None)
        if destination is None:  # only send() may open connections
            raise DestinationRefusedError("destination refused: not resolved and checked by PinnedAdapter.send")
        host_params["host"] = destination.address
        if destination.scheme == "https":
            pool_kwargs["server_hostname"] = destination.host
            pool_kwargs["assert_hostname"] = destination.host
        return host_params, pool_kwargs


def redact_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Registration headers as shown by the API and in logs: names kept, every value ``"***"``.

    >>> redact_headers({"Authorization": "Bearer s3cr3t", "X-Team": "ml"})
    {'Authorization': '***', 'X-Team': '***'}
    """
    return dict.fromkeys(headers or {}, REDACTED)


def redacted_registration(registration: Mapping[str, Any]) -> dict[str, Any]:
    """A stored registration as the API may return it: without ``secret``, headers redacted."""
    shown = {key: value for key, value in registration.items() if key != "secret"}
    if "headers" in shown:
        shown["headers"] = redact_headers(shown["headers"])
    return shown
