"""SSRF rules of outbound webhooks (``sinks.webhooks.destination``), with real sockets on 127.0.0.1.

Name lookups are injected (a ``socket.getaddrinfo``-compatible resolver the test controls), so that a
name can "resolve" to loopback or be re-bound between lookups without any DNS traffic; the receivers are
real HTTP(S) servers on 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airis_mon.errors import PermanentError, TransientError
from sinks.delivery import DeliveryConfig, HttpDeliverer, HttpRequest, RetryConfig
from sinks.webhooks.destination import (
    REDACTED,
    DestinationPolicy,
    DestinationRefusedError,
    DestinationUnresolvedError,
    PinnedAdapter,
    check_registration,
    redact_headers,
    redacted_registration,
    resolve_destination,
)
from tests.sinks.receivers import Receiver

REPO = Path(__file__).resolve().parents[3]
OK = (200, {}, b"ok")
NAME = "hooks.example.test"
LOOPBACK_ONLY = DestinationPolicy(allowed_networks=["127.0.0.1/32"])
SECRET_VALUE = "Bearer s3cr3t-t0ken-value"


class Resolver:
    """``socket.getaddrinfo``-compatible; call ``n`` answers ``answers[n]`` (the last repeats). An answer
    is a list of addresses or an exception to raise. Records every name it was asked."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.calls.append(host)
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
             (a, port, 0, 0) if ":" in a else (a, port))
            for a in answer
        ]  # fmt: skip


def deliverer(session: requests.Session | None = None, attempts: int = 1) -> HttpDeliverer:
    retry = RetryConfig(max_attempts=attempts, initial_backoff_s=0.01, max_backoff_s=0.01)
    return HttpDeliverer(DeliveryConfig(retry=retry, timeout_s=5), session=session, sleep=lambda _: None)


def post(url: str, policy: DestinationPolicy, resolver, headers=None) -> HttpRequest:
    transport = PinnedAdapter(policy, resolver)
    return HttpRequest("POST", url, b'{"a":1}', {"Content-Type": "application/json", **(headers or {})},
                       label="ops", transport=transport)  # fmt: skip


# --- the address policy --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "phrase"),
    [("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"),
     ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.0.1", "private"), ("fc00::1", "private"),
     ("fd12:3456::1", "private"), ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"),
     ("169.254.10.1", "link-local"), ("fe80::1", "link-local"), ("fe80::1%1", "link-local"),
     ("0.0.0.0", "unspecified"), ("0.1.2.3", "unspecified"), ("::", "unspecified"),
     ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("240.0.0.1", "reserved"),
     ("255.255.255.255", "reserved"), ("100.64.0.1", "carrier-grade NAT"), ("100.100.100.200", "carrier-grade NAT"),
     ("192.0.2.1", "address"), ("198.18.0.1", "address"), ("fec0::1", "site-local"),
     ("::ffff:127.0.0.1", "loopback address (IPv4 inside IPv6)"), ("::ffff:10.0.0.1", "private"),
     ("::ffff:169.254.169.254", "cloud metadata"), ("64:ff9b::7f00:1", "loopback"), ("2002:a00:1::", "private"),
     ("::7f00:1", "reserved"), ("100::1", "address")],
)  # fmt: skip
def test_non_public_addresses_are_refused(address, phrase):
    problem = DestinationPolicy().address_problem(ipaddress.ip_address(address))
    assert problem is not None and phrase in problem


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808", "2002:808:808::1"])  # fmt: skip
def test_public_addresses_are_allowed(address):
    assert DestinationPolicy().address_problem(ipaddress.ip_address(address)) is None


def test_allowed_networks_open_exactly_those_networks():
    policy = DestinationPolicy(allowed_networks=["127.0.0.0/8", "fd12:3456::/48"])
    assert policy.allowed_networks == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("fd12:3456::/48"))
    for allowed in ("127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1", "fd12:3456::5"):
        assert policy.address_problem(ipaddress.ip_address(allowed)) is None, allowed
    for refused in ("10.0.0.1", "::1", "169.254.169.254", "fd00:ec2::254"):
        assert policy.address_problem(ipaddress.ip_address(refused)), refused
    everything = DestinationPolicy.allow_all()
    assert everything.address_problem(ipaddress.ip_address("169.254.169.254")) is None


@pytest.mark.parametrize("network", ["127.0.0.1/8", "not-a-network", "10.0.0.0/33"])
def test_a_bad_allowed_network_is_a_value_error(network):
    with pytest.raises(ValueError, match="is not a CIDR network"):
        DestinationPolicy(allowed_networks=[network])


# --- registration: no DNS ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://metadata.google.internal/computeMetadata/v1/", "https://METADATA.GOOGLE.INTERNAL./x",
     "https://metadata/x", "https://metadata.goog/x", "https://instance-data.ec2.internal/x",
     "https://metadata\u3002google\uff0einternal/x",  # IDNA dots: requests sends metadata.google.internal
     "https://169.254.169.254/latest/meta-data/", "https://[fd00:ec2::254]/latest/meta-data/",
     "https://[::ffff:169.254.169.254]/", "https://0xa9fea9fe/", "https://2852039166/"],
)  # fmt: skip
def test_metadata_names_and_addresses_are_refused_at_registration(url):
    ((field, message),) = check_registration(url, {}, DestinationPolicy())
    assert field == "url" and "metadata" in message and "169.254" not in message.replace("169.254.169.254", "")
    metadata_allowed = DestinationPolicy(allowed_networks=["169.254.169.254/32", "fd00:ec2::/32"])
    assert check_registration(url, {}, metadata_allowed) == []


@pytest.mark.parametrize("url", ["https://localhost/", "https://LocalHost.:8443/", "https://api.localhost/",
                                 "https://localhost.localdomain/", "https://ip6-localhost/", "https://127.1/",
                                 "https://[::1]/", "https://10.0.0.1/", "https://0/"])  # fmt: skip
def test_loopback_and_private_hosts_are_refused_at_registration(url):
    ((field, message),) = check_registration(url, {}, DestinationPolicy())
    assert field == "url" and message.startswith("the host is ") and url.split("/")[2] not in message


def test_loopback_names_are_allowed_when_their_network_is():
    assert check_registration("http://localhost:9000/in", {}, DestinationPolicy(allowed_networks=["127.0.0.0/8"])) == []
    assert check_registration("http://ip6-localhost/in", {}, DestinationPolicy(allowed_networks=["::1/128"])) == []
    assert check_registration("http://ip6-localhost/in", {}, DestinationPolicy(allowed_networks=["127.0.0.0/8"]))


def test_names_are_accepted_at_registration_and_judged_by_their_addresses_at_delivery():
    url = "https://127.0.0.1.nip.io/in"
    assert check_registration(url, {}, DestinationPolicy()) == []  # no DNS at registration
    resolver = Resolver(["127.0.0.1"])
    with pytest.raises(DestinationRefusedError) as refused:
        resolve_destination(url, DestinationPolicy(), resolver)
    assert str(refused.value) == "destination refused: the host resolves to 127.0.0.1, a loopback address"
    assert resolver.calls == ["127.0.0.1.nip.io"]
    assert isinstance(refused.value, PermanentError)


@pytest.mark.parametrize(
    ("url", "message"),
    [("ftp://example.com/in", "must be http:// or https://"), ("file:///etc/passwd", "must be http:// or https://"),
     ("example.com/in", "must be http:// or https://"), ("https:///in", "has no host"),
     ("https://example.com:99999/", "not valid"), ("https://exa mple.com/", "spaces or control characters"),
     ("https://127.0.0.1\n.example.com/", "spaces or control characters"),
     ("https://example.com/in\r\nX-Evil: 1", "spaces or control characters"),
     ("https://*.example.com/", "not a valid host name"), ("https://a..example.com/", "not a valid host name"),
     ("https://" + "a" * 64 + ".example.com/", "not a valid host name")],
)  # fmt: skip
def test_the_url_form_is_checked_without_echoing_it(url, message):
    ((field, problem),) = check_registration(url, {}, DestinationPolicy.allow_all())
    assert field == "url" and message in problem and url not in problem


def test_plain_http_can_be_refused():
    assert check_registration("http://hooks.example.com/in", {}, DestinationPolicy()) == []
    assert check_registration("http://hooks.example.com/in", {}, DestinationPolicy(allow_http=False)) == [
        ("url", "the URL must be https://")
    ]


@pytest.mark.parametrize(
    ("headers", "field", "message"),
    [({"Authorization": SECRET_VALUE + "\r\nX-Evil: 1"}, "headers.Authorization", "CR, LF or NUL"),
     ({"Authorization": SECRET_VALUE + "\n"}, "headers.Authorization", "CR, LF or NUL"),
     ({"Authorization": SECRET_VALUE + "\r"}, "headers.Authorization", "CR, LF or NUL"),
     ({"Authorization": SECRET_VALUE + "\0"}, "headers.Authorization", "CR, LF or NUL"),
     ({"Authorization": SECRET_VALUE + "\x1b[2J"}, "headers.Authorization", "control characters"),
     ({"Authorization": SECRET_VALUE + "\u2028"}, "headers.Authorization", "ASCII"),
     ({"X-Evil\r\nHost": "x"}, "headers", "header #1: the name is not a valid HTTP header name"),
     ({"X-Evil\n": "x"}, "headers", "not a valid HTTP header name"),
     ({"X Team": "x"}, "headers", "not a valid HTTP header name"), ({"X-A:": "x"}, "headers", "not a valid"),
     ({"": "x"}, "headers", "not a valid HTTP header name"), ({"X-Ünicode": "x"}, "headers", "not a valid"),
     ({"Host": "169.254.169.254"}, "headers.Host", "set by the sink"),
     ({"content-length": "0"}, "headers.content-length", "set by the sink"),
     ({"Transfer-Encoding": "chunked"}, "headers.Transfer-Encoding", "set by the sink"),
     ({"Connection": "close"}, "headers.Connection", "hop-by-hop"),
     ({"Upgrade": "h2c"}, "headers.Upgrade", "hop-by-hop"),
     ({"Webhook-Signature": "v1,x"}, "headers.Webhook-Signature", "set by the sink"),
     ({"X-Team": "a", "x-team": "b"}, "headers.x-team", "given twice"),
     ({"X-Big": "x" * 8193}, "headers.X-Big", "longer than 8192"),
     (dict.fromkeys((f"X-{i}" for i in range(33)), "x"), "headers", "at most 32 headers")],
)  # fmt: skip
def test_header_problems_name_the_header_and_never_the_value(headers, field, message):
    problems = check_registration("https://hooks.example.com/in", headers, DestinationPolicy())
    assert (field, message) in [(f, m) for f, m in problems if message in m] or any(
        f == field and message in m for f, m in problems
    ), problems
    assert not any(SECRET_VALUE in m or "Evil" in m or "169.254" in m for _, m in problems)


def test_every_problem_is_reported_at_once():
    problems = check_registration("https://localhost/in", {"Host": "x", "X-A": "1\r\n"}, DestinationPolicy())
    assert [field for field, _ in problems] == ["url", "headers.Host", "headers.X-A"]
    fine = check_registration("https://hooks.example.com/in", {"Authorization": SECRET_VALUE}, DestinationPolicy())
    assert fine == []


def test_registration_headers_are_redacted_to_their_names():
    headers = {"Authorization": SECRET_VALUE, "X-Team": "ml"}
    assert redact_headers(headers) == {"Authorization": REDACTED, "X-Team": REDACTED}
    assert REDACTED == "***"
    assert redact_headers(None) == {}
    stored = {"name": "bot", "url": "https://hooks.example.com/in", "events": ["*"], "headers": headers,
              "secret": "whsec_c2VjcmV0"}  # fmt: skip
    shown = redacted_registration(stored)
    assert shown == {"name": "bot", "url": "https://hooks.example.com/in", "events": ["*"],
                     "headers": {"Authorization": "***", "X-Team": "***"}}  # fmt: skip
    assert SECRET_VALUE not in repr(shown) and stored["headers"]["Authorization"] == SECRET_VALUE  # input untouched


# --- resolution at delivery ----------------------------------------------------------------------------------


def test_every_resolved_address_is_checked():
    resolver = Resolver(["93.184.216.34", "127.0.0.1"])
    with pytest.raises(DestinationRefusedError, match=re.escape("resolves to 127.0.0.1, a loopback address")):
        resolve_destination(f"https://{NAME}/in", DestinationPolicy(), resolver)
    resolver = Resolver(["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"])
    pinned = resolve_destination(f"https://{NAME}:8443/in?token=x", DestinationPolicy(), resolver)
    assert (pinned.scheme, pinned.host, pinned.port, pinned.address) == ("https", NAME, 8443, "93.184.216.34")
    assert pinned.addresses == ("93.184.216.34", "2606:2800:220:1::1") and pinned.host_header == f"{NAME}:8443"
    assert resolver.calls == [NAME]


def test_ip_literals_and_special_names_never_reach_the_resolver():
    resolver = Resolver(["8.8.8.8"])
    pinned = resolve_destination("http://2130706433:80/in", LOOPBACK_ONLY, resolver)
    assert (pinned.address, pinned.host_header) == ("127.0.0.1", "2130706433")
    assert resolve_destination("https://[2606:4700::1]/", DestinationPolicy(), resolver).host_header == "[2606:4700::1]"
    for url in ("https://metadata.google.internal/", "https://localhost/", "gopher://hooks.example.com/"):
        with pytest.raises(DestinationRefusedError):
            resolve_destination(url, DestinationPolicy(), resolver)
    assert resolver.calls == []


def test_a_name_that_does_not_resolve_is_transient():
    failing = Resolver(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    with pytest.raises(DestinationUnresolvedError, match=r"could not resolve the host \(Name or service not known\)"):
        resolve_destination(f"https://{NAME}/", DestinationPolicy(), failing)
    assert issubclass(DestinationUnresolvedError, TransientError)
    with pytest.raises(DestinationUnresolvedError, match="no IPv4 or IPv6 address"):
        resolve_destination(f"https://{NAME}/", DestinationPolicy(), Resolver([]))


def _etc_hosts_loopback_aliases() -> list[str]:
    names = []
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split("#")[0].split()
        if len(fields) > 1 and fields[0].startswith("127."):
            names += [n for n in fields[1:] if "localhost" not in n and n.isascii()]
    return names


@pytest.mark.skipif(not _etc_hosts_loopback_aliases(), reason="no loopback alias besides localhost in /etc/hosts")
def test_a_loopback_alias_from_etc_hosts_is_refused_with_the_system_resolver():
    """The fuzzing finding: an /etc/hosts alias of 127.0.0.1 passes every name check; its address does not."""
    alias = _etc_hosts_loopback_aliases()[0]
    assert check_registration(f"https://{alias}/in", {}, DestinationPolicy()) == []
    with pytest.raises(DestinationRefusedError, match="a loopback address"):
        resolve_destination(f"https://{alias}/in", DestinationPolicy())  # socket.getaddrinfo: /etc/hosts, no DNS


# --- delivery through the pinned connection ------------------------------------------------------------------


@pytest.fixture
def system_lookups(monkeypatch):
    """Every name given to the system resolver; a *name* is answered with 127.0.0.2, as if re-bound."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return real("127.0.0.2", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_the_connection_goes_to_the_checked_address_with_one_lookup(system_lookups):
    """DNS rebinding: the name answers 127.0.0.1 when checked and something else afterwards; the
    request still reaches 127.0.0.1, and the name is looked up exactly once."""
    with Receiver(lambda _: OK) as receiver:
        port = int(receiver.url.rsplit(":", 1)[1])
        rebinding = Resolver(["127.0.0.1"], ["127.0.0.3"])
        result = deliverer().deliver(post(f"http://{NAME}:{port}/hooks/in?token=T0KEN", LOOPBACK_ONLY, rebinding))
    assert (result.delivered, result.status, result.attempts) == (True, 200, 1)
    assert rebinding.calls == [NAME]
    assert NAME not in system_lookups  # the connection was opened to the address, not the name
    ((request,),) = [receiver.requests]
    assert (request.path, request.headers["host"], request.body) == ("/hooks/in?token=T0KEN", f"{NAME}:{port}",
                                                                     b'{"a":1}')  # fmt: skip


def test_each_attempt_resolves_again_and_a_failed_lookup_is_retried():
    down = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    flaky = Resolver(down, down, ["127.0.0.1"])
    with Receiver(lambda _: OK) as receiver:
        result = deliverer(attempts=5).deliver(post(receiver.url.replace("127.0.0.1", NAME), LOOPBACK_ONLY, flaky))
    assert (result.delivered, result.attempts, flaky.calls) == (True, 3, [NAME] * 3)
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(["127.0.0.1"], "the host resolves to 127.0.0.1, a loopback address"),
     (["127.0.0.1", "10.0.0.7"], "the host resolves to 127.0.0.1, a loopback address"),
     (["::ffff:127.0.0.1"],
      f"the host resolves to {ipaddress.ip_address('::ffff:127.0.0.1')}, a loopback address (IPv4 inside IPv6)")],
)  # fmt: skip
def test_a_refused_destination_fails_permanently_and_nothing_is_sent(answer, reason):
    resolver = Resolver(answer)
    with Receiver(lambda _: OK) as receiver:
        url = receiver.url.replace("127.0.0.1", "127.0.0.1.nip.io") + "/in?token=T0KEN"
        request = post(url, DestinationPolicy(), resolver, {"Authorization": SECRET_VALUE})
        result = deliverer(attempts=5).deliver(request)
    assert (result.delivered, result.status, result.attempts) == (False, None, 1)
    assert result.reason == f"permanent failure: destination refused: {reason}"
    assert receiver.requests == [] and resolver.calls == ["127.0.0.1.nip.io"]
    assert "T0KEN" not in result.reason and SECRET_VALUE not in result.reason and "nip.io" not in result.reason


def test_one_refused_address_among_allowed_ones_refuses_the_destination():
    resolver = Resolver(["127.0.0.1", "10.0.0.7"])  # 10.0.0.7 is never connected to: the check comes first
    with Receiver(lambda _: OK) as receiver:
        url = receiver.url.replace("127.0.0.1", NAME)
        result = deliverer().deliver(post(url, DestinationPolicy(allowed_networks=["127.0.0.0/8"]), resolver))
    assert result.reason == "permanent failure: destination refused: the host resolves to 10.0.0.7, a private address"
    assert receiver.requests == []


def test_localhost_is_refused_at_delivery_unless_allowed():
    resolver = Resolver(["127.0.0.1"])
    with Receiver(lambda _: OK) as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost")
        refused = deliverer().deliver(post(url, DestinationPolicy(), resolver))
        allowed = deliverer().deliver(post(url, DestinationPolicy(allowed_networks=["127.0.0.0/8"]), resolver))
    assert refused.reason == "permanent failure: destination refused: the host is a loopback name"
    assert allowed.delivered and resolver.calls == ["localhost"]
    assert receiver.requests[0].headers["host"] == url.split("/")[2]


def test_an_adapter_mounted_on_a_session_pins_too_and_ignores_proxies(system_lookups):
    session = requests.Session()
    resolver = Resolver(["127.0.0.1"], ["127.0.0.1"], ["127.0.0.9"])
    session.mount("http://", PinnedAdapter(LOOPBACK_ONLY, resolver))
    with Receiver(lambda _: OK) as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        assert session.get(f"http://{NAME}:{port}/x", timeout=5).status_code == 200
        # A proxy would see the name and resolve it itself; the pinned connection never uses one.
        proxied = session.get(f"http://{NAME}:{port}/y", timeout=5, proxies={"http": "http://127.0.0.1:9"})
        assert proxied.status_code == 200
        with pytest.raises(DestinationRefusedError, match=re.escape("resolves to 127.0.0.9")):
            session.get(f"http://{NAME}:{port}/z", timeout=5)
    assert resolver.calls == [NAME] * 3 and [r.path for r in receiver.requests] == ["/x", "/y"]
    assert NAME not in system_lookups


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_a_name_pinned_to_an_ipv6_address():
    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = Server(("::1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        port = server.server_address[1]
        policy = DestinationPolicy(allowed_networks=["::1/128"])
        named = deliverer().deliver(post(f"http://{NAME}:{port}/in", policy, Resolver(["::1"])))
        literal = deliverer().deliver(post(f"http://[::1]:{port}/in", policy, Resolver([])))
    finally:
        server.shutdown()
        server.server_close()
    assert (named.status, literal.status) == (204, 204)
    assert hosts == [f"{NAME}:{port}", f"[::1]:{port}"]


# --- HTTPS: SNI and certificate verification keep the name ---------------------------------------------------


def _certificate(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for DNS name ``name`` (signed by it): (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airis-mon test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = tmp / f"{name}-ca.pem", tmp / f"{name}-cert.pem", tmp / f"{name}-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class TlsReceiver:
    """An HTTPS server on 127.0.0.1 answering 200; records the SNI of every handshake and each request's
    path and Host header."""

    def __init__(self, cert: Path, key: Path):
        self.server_names: list[str | None] = []
        self.requests: list[tuple[str, str]] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda _sock, server_name, _context: self.server_names.append(server_name)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((self.path, self.headers["Host"]))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> TlsReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def trust(monkeypatch):
    """Trust a CA the way an operator does (``REQUESTS_CA_BUNDLE``, which requests prefers to ``Session.verify``)."""

    def use(ca: Path) -> None:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    return use


def test_https_keeps_the_name_for_sni_host_and_certificate_verification(tmp_path, system_lookups, trust):
    ca, cert, key = _certificate(tmp_path, NAME)
    trust(ca)
    resolver = Resolver(["127.0.0.1"])
    with TlsReceiver(cert, key) as receiver:
        result = deliverer().deliver(post(f"https://{NAME}:{receiver.port}/in", LOOPBACK_ONLY, resolver))
    assert (result.delivered, result.status) == (True, 200), result.reason
    assert receiver.server_names == [NAME]  # SNI: the name, not 127.0.0.1
    assert receiver.requests == [("/in", f"{NAME}:{receiver.port}")]
    assert resolver.calls == [NAME] and NAME not in system_lookups


def test_https_refuses_a_certificate_for_another_name(tmp_path, trust):
    """The certificate is checked against the URL's name (not the pinned address, not what the server says)."""
    ca, cert, key = _certificate(tmp_path, "other.example.test")
    trust(ca)
    with TlsReceiver(cert, key) as receiver:
        result = deliverer().deliver(post(f"https://{NAME}:{receiver.port}/in", LOOPBACK_ONLY, Resolver(["127.0.0.1"])))
    assert (result.delivered, result.reason) == (False, "gave up after 1 attempts: connection failed (SSLError)")
    assert receiver.server_names == [NAME] and receiver.requests == []


# --- no Beam -------------------------------------------------------------------------------------------------


def test_the_destination_rules_import_without_beam():
    code = (
        "import sys, sinks.webhooks, sinks.webhooks.destination\n"
        "sinks.webhooks.check_registration, sinks.webhooks.redact_headers, sinks.webhooks.DestinationPolicy\n"
        "assert 'apache_beam' not in sys.modules, 'apache_beam imported'\n"
        "assert sinks.webhooks.WriteToWebhooks.__name__ == 'WriteToWebhooks'  # the lazy names still work\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
