"""The email sink against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS, SMTPS, AUTH."""

import datetime
import email
import email.policy
import ipaddress
import json
import random
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr, ValidationError

from sinks.delivery import RetryConfig, idempotency_key
from sinks.delivery.retry import Outcome
from sinks.email import EmailConfig, SmtpDeliverer, WriteToEmail, build_message, classify_error
from tests.sinks.receivers import FakeTime
from tests.transforms.rules.scenarios import GROUP, series, threshold_rule
from transforms.rules.engine import evaluate

TESTDATA = Path(__file__).parent / "testdata"
USER, PASSWORD = "airis", "correct-horse-battery"
NOW_S = 1_795_824_200.0

# --- a real SMTP server ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    tls: bool
    authenticated: bool


class Handler:
    """Records accepted messages; ``data_replies`` answer DATA first (then 250); ``refuse`` get 550 at RCPT."""

    def __init__(self, data_replies=(), refuse=()):
        self.received: list[Received] = []
        self.data_attempts = 0
        self._data_replies = list(data_replies)
        self._refuse = set(refuse)
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd hook)
        if address in self._refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook)
        with self._lock:
            self.data_attempts += 1
            if self._data_replies:
                return self._data_replies.pop(0)
            message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message,
                         server.transport.get_extra_info("ssl_object") is not None, bool(session.authenticated))
            )  # fmt: skip
        return "250 2.0.0 accepted"


class _AnyPortController(Controller):
    """Binds port 0 and learns the port before aiosmtpd's readiness probe connects."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    def __init__(self, handler: Handler, **smtp_kwargs):
        self.handler = handler
        self._controller = _AnyPortController(handler, hostname="127.0.0.1", port=0, **smtp_kwargs)

    @property
    def port(self) -> int:
        return self._controller.port

    def __enter__(self):
        self._controller.start()
        return self

    def __exit__(self, *exc):
        self._controller.stop()


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[str, str]:
    """A throwaway self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airis-mon-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def server_tls(tls_files) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


# --- helpers -----------------------------------------------------------------------------------------------------


def mail_config(port: int = 25, **overrides) -> EmailConfig:
    fields = {"name": "mail", "host": "127.0.0.1", "port": port, "starttls": False,
              "from_address": "AIRIS-MON <alerts@airis.example>", "to": ["oncall@example.com"], "timeout_s": 5,
              "retry": RetryConfig(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)}  # fmt: skip
    return EmailConfig(**{**fields, **overrides})


def episode():
    """trigger, repeat, repeat, resolve of one episode."""
    return evaluate(threshold_rule(repeat_interval=60, severity="critical"), GROUP, series(11.5, 12.0, 11.0, 1.0))[0]


def run(config: EmailConfig, alerts, delivered=(), dead=()) -> dict[str, int]:
    """Run WriteToEmail, assert its outputs (dead letters as (component, reason)); returns its counters."""
    pipeline = beam.Pipeline()
    outputs = pipeline | beam.Create(alerts) | WriteToEmail(config)
    assert_that(outputs["delivered"], equal_to(list(delivered)), label="delivered")
    assert_that(
        outputs["dead_letters"] | beam.Map(lambda d: (d.component, d.reason)), equal_to(list(dead)), label="dead"
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace(f"sink:{config.name}"))["counters"]
    }
    return counters


# --- config ------------------------------------------------------------------------------------------------------


def test_config_defaults_and_rules(monkeypatch):
    config = EmailConfig(name="mail", host="smtp.example.com", from_address="a@example.com", to=["b@example.com"])
    assert (config.port, config.starttls, config.ssl, config.tls_verify, config.subject_prefix) == (
        587, True, False, True, "[AIRIS-MON]")  # fmt: skip
    base = {"name": "mail", "host": "smtp.example.com", "from_address": "a@example.com", "to": ["b@example.com"]}
    with pytest.raises(ValidationError, match="at least 1"):
        EmailConfig(**{**base, "to": []})
    with pytest.raises(ValidationError, match="not an email address"):
        EmailConfig(**{**base, "to": ["nobody"]})
    with pytest.raises(ValidationError, match="CR, LF"):
        EmailConfig(**{**base, "to": ["b@example.com\r\nBcc: evil@example.com"]})
    with pytest.raises(ValidationError, match="CR, LF"):
        EmailConfig(**{**base, "subject_prefix": "[X]\r\nBcc: evil@example.com"})
    with pytest.raises(ValidationError, match="username and password go together"):
        EmailConfig(**{**base, "username": USER})
    with pytest.raises(ValidationError, match="only sent over TLS"):
        EmailConfig(**{**base, "starttls": False, "username": USER, "password": SecretStr(PASSWORD)})
    with pytest.raises(ValidationError, match="not both"):
        EmailConfig(**{**base, "ssl": True, "starttls": True})
    assert not EmailConfig(**{**base, "ssl": True, "port": 465}).uses_starttls  # ssl alone: starttls not applied
    with pytest.raises(ValidationError, match="not a literal value"):
        EmailConfig(**{**base, "username": USER, "password": PASSWORD})
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    loaded = EmailConfig.model_validate({**base, "username": USER, "password": {"env": "SMTP_PASSWORD"}})
    assert loaded.password.get_secret_value() == PASSWORD and PASSWORD not in repr(loaded)


# --- the message -------------------------------------------------------------------------------------------------


def test_golden_message_of_a_trigger():
    trigger = episode()[0]
    config = mail_config()
    message = build_message(config, trigger, NOW_S)
    assert message["Subject"] == "[AIRIS-MON] [CRITICAL] latency (fraud, prod) — triggered"
    assert message["From"] == "AIRIS-MON <alerts@airis.example>" and message["To"] == "oncall@example.com"
    assert message["Date"] == "Sat, 28 Nov 2026 00:03:20 +0000"
    episode_start = trigger._replace(timestamp_ms=trigger.starts_at_ms)  # so every notification can refer to it
    assert message["Message-ID"] == f"<{idempotency_key('mail', episode_start)}@airis.example>"
    assert message["In-Reply-To"] is None and message["References"] is None
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    assert text == (TESTDATA / "trigger.txt").read_text(encoding="utf-8")
    html = message.get_body(("html",)).get_content()
    assert "<h2>[CRITICAL] latency (fraud, prod) — triggered</h2>" in html and "<td>11.5</td>" in html


def test_resolves_and_repeats_thread_under_the_trigger():
    config = mail_config()
    trigger, first_repeat, second_repeat, resolve = (build_message(config, a, NOW_S) for a in episode())
    root = trigger["Message-ID"]
    for message in (first_repeat, second_repeat, resolve):
        assert message["In-Reply-To"] == root and message["References"] == root
    ids = {m["Message-ID"] for m in (trigger, first_repeat, second_repeat, resolve)}
    assert len(ids) == 4  # every notification its own id
    assert resolve["Subject"].endswith("— resolved") and first_repeat["Subject"].endswith("— repeated")
    assert build_message(config, episode()[3], NOW_S + 60)["Message-ID"] == resolve["Message-ID"]  # replay: same id


def test_texts_are_escaped_in_html_and_unknown_values_shown_as_such():
    trigger = episode()[0]
    gap = evaluate(threshold_rule(), GROUP, series(11, 11, float("nan")))[0][1]
    html = build_message(mail_config(), trigger._replace(summary="<b>x</b> & y"), NOW_S).get_body(("html",))
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in html.get_content() and "<b>x</b>" not in html.get_content()
    text = build_message(mail_config(), gap, NOW_S).get_body(("plain",)).get_content()
    assert "Current value: unknown" in text


# --- error classification ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, outcome, code",
    [(smtplib.SMTPDataError(451, b"4.3.0 try later"), Outcome.RETRY, 451),
     (smtplib.SMTPSenderRefused(452, b"4.3.1 insufficient storage", "a@x"), Outcome.RETRY, 452),
     (smtplib.SMTPConnectError(421, b"4.3.2 service not available"), Outcome.RETRY, 421),
     (smtplib.SMTPRecipientsRefused({"a@x": (450, b"mailbox busy")}), Outcome.RETRY, 450),
     (smtplib.SMTPAuthenticationError(454, b"4.7.0 temporary auth failure"), Outcome.RETRY, 454),
     (smtplib.SMTPServerDisconnected("gone"), Outcome.RETRY, None),
     (TimeoutError(), Outcome.RETRY, None), (ConnectionRefusedError(), Outcome.RETRY, None),
     (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such user")}), Outcome.PERMANENT, 550),
     (smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy"), "b@x": (550, b"no")}), Outcome.PERMANENT, 550),
     (smtplib.SMTPDataError(554, b"5.7.1 rejected"), Outcome.PERMANENT, 554),
     (smtplib.SMTPAuthenticationError(535, b"5.7.8 invalid"), Outcome.PERMANENT, 535),
     (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), Outcome.PERMANENT, None),
     (ssl.SSLCertVerificationError("self-signed"), Outcome.PERMANENT, None)],
)  # fmt: skip
def test_transient_and_permanent_smtp_errors(error, outcome, code):
    got, got_code, reason = classify_error(error, 5)
    assert (got, got_code) == (outcome, code) and reason


# --- against the real server -------------------------------------------------------------------------------------


def test_plain_smtp_end_to_end_through_a_pipeline():
    alerts = episode()
    with SmtpServer(Handler()) as server:
        config = mail_config(server.port, to=["oncall@example.com", "Data Science <ds@example.com>"])
        counters = run(config, alerts, delivered=[("mail", a.id, a.notification, 250, 1) for a in alerts])
    assert (counters["sent"], counters["retried"], counters.get("dead_lettered", 0)) == (4, 0, 0)
    received = server.handler.received
    assert sorted(r.message["X-AIRIS-MON-Notification"] for r in received) == ["repeat", "repeat", "resolve", "trigger"]
    envelopes = {(r.mail_from, tuple(r.rcpt_tos), r.tls) for r in received}
    assert envelopes == {("alerts@airis.example", ("oncall@example.com", "ds@example.com"), False)}
    by_kind = {r.message["X-AIRIS-MON-Notification"]: r.message for r in server.handler.received}
    trigger, resolve = by_kind["trigger"], by_kind["resolve"]
    assert trigger["Subject"] == "[AIRIS-MON] [CRITICAL] latency (fraud, prod) — triggered"
    assert trigger["To"] == "oncall@example.com, Data Science <ds@example.com>"
    assert resolve["Subject"] == "[AIRIS-MON] [CRITICAL] latency (fraud, prod) — resolved"
    assert resolve["In-Reply-To"] == trigger["Message-ID"] and resolve["References"] == trigger["Message-ID"]
    assert "Status:        resolved" in resolve.get_body(("plain",)).get_content()
    assert "<td>resolved</td>" in resolve.get_body(("html",)).get_content()


def test_starttls_with_a_self_signed_certificate_when_verification_is_off(server_tls):
    trigger = episode()[0]
    with SmtpServer(Handler(), tls_context=server_tls, require_starttls=True) as server:
        run(
            mail_config(server.port, starttls=True, tls_verify=False),
            [trigger],
            [("mail", trigger.id, "trigger", 250, 1)],
        )
    assert [r.tls for r in server.handler.received] == [True]


def test_starttls_refuses_an_unverifiable_certificate_and_a_server_without_starttls(server_tls):
    trigger = episode()[0]
    with SmtpServer(Handler(), tls_context=server_tls, require_starttls=True) as server:
        result = SmtpDeliverer(mail_config(server.port, starttls=True)).deliver(
            build_message(mail_config(), trigger, 0)
        )
    assert (result.delivered, result.attempts) == (False, 1)
    assert result.reason.startswith("permanent failure: TLS certificate verification failed")
    with SmtpServer(Handler()) as server:  # no tls_context: no STARTTLS offered; never fall back to plain text
        result = SmtpDeliverer(mail_config(server.port, starttls=True)).deliver(
            build_message(mail_config(), trigger, 0)
        )
    assert (result.delivered, result.attempts) == (False, 1) and "STARTTLS" in result.reason
    assert server.handler.data_attempts == 0


def test_smtps_implicit_tls(server_tls):
    trigger = episode()[0]
    with SmtpServer(Handler(), ssl_context=server_tls) as server:
        run(mail_config(server.port, ssl=True, tls_verify=False), [trigger], [("mail", trigger.id, "trigger", 250, 1)])
    assert [r.tls for r in server.handler.received] == [True]


def test_auth_over_starttls_and_a_wrong_password_is_a_permanent_dead_letter_without_the_password(server_tls):
    trigger = episode()[0]
    smtp_kwargs = {"tls_context": server_tls, "require_starttls": True, "authenticator": authenticator,
                   "auth_required": True}  # fmt: skip
    secure = {"starttls": True, "tls_verify": False, "username": USER}
    with SmtpServer(Handler(), **smtp_kwargs) as server:
        run(
            mail_config(server.port, **secure, password=SecretStr(PASSWORD)),
            [trigger],
            [("mail", trigger.id, "trigger", 250, 1)],
        )
    assert [r.authenticated for r in server.handler.received] == [True]
    wrong = "wrong-" + PASSWORD
    reason = "permanent failure: authentication refused: 535 5.7.8 Authentication credentials invalid (attempts: 1)"
    with SmtpServer(Handler(), **smtp_kwargs) as server:
        counters = run(mail_config(server.port, **secure, password=SecretStr(wrong)), [trigger], [],
                       [("sink:mail", reason)])  # fmt: skip
    assert server.handler.received == [] and wrong not in reason and PASSWORD not in reason
    assert counters["dead_lettered"] == 1 and counters["retried"] == 0


def test_451_once_then_accepted_is_retried():
    trigger = episode()[0]
    with SmtpServer(Handler(data_replies=["451 4.3.0 try later"])) as server:
        counters = run(mail_config(server.port), [trigger], [("mail", trigger.id, "trigger", 250, 2)])
    assert counters["retried"] == 1 and counters["sent"] == 1 and server.handler.data_attempts == 2
    assert len(server.handler.received) == 1


def test_550_no_such_user_is_a_dead_letter():
    trigger = episode()[0]
    with SmtpServer(Handler(refuse={"oncall@example.com"})) as server:
        reason = "permanent failure: all 1 recipients refused: 550 5.1.1 no such user (attempts: 1)"
        counters = run(mail_config(server.port), [trigger], [], [("sink:mail", reason)])
    assert server.handler.data_attempts == 0 and counters["dead_lettered"] == 1


def test_one_refused_recipient_of_two_still_delivers_to_the_other():
    trigger = episode()[0]
    with SmtpServer(Handler(refuse={"gone@example.com"})) as server:
        config = mail_config(server.port, to=["oncall@example.com", "gone@example.com"])
        result = SmtpDeliverer(config).deliver(build_message(config, trigger, NOW_S))
    assert (result.delivered, result.refused) == (True, ("gone@example.com",))
    assert [r.rcpt_tos for r in server.handler.received] == [["oncall@example.com"]]


def test_retries_are_bounded_by_attempts_and_total_time():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    message = build_message(mail_config(), episode()[0], NOW_S)
    fake = FakeTime()
    retry = RetryConfig(max_attempts=4, initial_backoff_s=1, max_backoff_s=10, max_total_s=100)
    deliverer = SmtpDeliverer(mail_config(port, retry=retry), clock=fake.clock, sleep=fake.sleep, rng=random.Random(1))
    result = deliverer.deliver(message)
    assert (result.delivered, result.attempts, result.retries, len(fake.sleeps)) == (False, 4, 3, 3)
    assert result.reason == "gave up after 4 attempts: connection failed (ConnectionRefusedError)"
    fake = FakeTime()
    with SmtpServer(Handler(data_replies=["421 4.3.2 shutting down"] * 10)) as server:
        retry = RetryConfig(max_attempts=10, initial_backoff_s=50, max_backoff_s=50, max_total_s=60)
        deliverer = SmtpDeliverer(mail_config(server.port, retry=retry), clock=fake.clock, sleep=fake.sleep,
                                  rng=random.Random(3))  # fmt: skip
        result = deliverer.deliver(message)
    assert not result.delivered and "would pass max_total_s (60 s)" in result.reason
    assert result.reason.startswith(f"gave up after {result.attempts} attempts: DATA: 421 4.3.2 shutting down")
    assert sum(fake.sleeps) <= 60


def test_original_alert_is_kept_in_the_dead_letter():
    trigger = episode()[0]
    with SmtpServer(Handler(refuse={"oncall@example.com"})) as server, beam.Pipeline() as pipeline:
        outputs = pipeline | beam.Create([trigger]) | WriteToEmail(mail_config(server.port))
        assert_that(outputs["dead_letters"] | beam.Map(lambda d: json.loads(d.original)["id"]), equal_to([trigger.id]))
