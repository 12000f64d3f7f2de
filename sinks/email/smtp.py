"""``SmtpDeliverer``: send one email over SMTP with bounded retries (no Beam).

Retry policy (backoff and its bounds are the shared ones:
:func:`sinks.delivery.retry.backoff_s` and :class:`sinks.delivery.config.RetryConfig`):

- transient, retried: connection errors and timeouts, the server hanging up
  (``SMTPServerDisconnected``), any 4xx reply (421 service not available, 450
  / 451 / 452 try later, 454 temporary auth failure), a TLS connection cut short;
- permanent, dead-lettered at once: 5xx replies (550 no such user, 554 ...),
  authentication refused (535), the server lacking STARTTLS or AUTH, a TLS
  certificate that fails verification.

Each attempt opens a fresh connection (EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA,
QUIT). If the server accepts some recipients and refuses others, the message
counts as delivered (retrying would duplicate it for the others) and the
refused addresses are reported in ``SmtpResult.refused``. Reasons never
contain the password.

>>> result = SmtpDeliverer(config).deliver(build_message(config, alert, time.time()))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from sinks.delivery.http import DeliveryResult
from sinks.delivery.retry import Attempt, Outcome, with_retries
from sinks.email.config import EmailConfig, bare_address

__all__ = ["SmtpDeliverer", "SmtpResult", "classify_error"]

_LOG = logging.getLogger(__name__)
_DELIVERED_CODE = 250  # smtplib raises unless DATA ends with 250


@dataclass(frozen=True)
class SmtpResult(DeliveryResult):
    """A :class:`DeliveryResult` whose ``status`` is the SMTP reply code; ``refused``: recipients refused
    while others accepted the message."""

    refused: tuple[str, ...] = ()


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}"[:200]


def _outcome_of_code(code: int) -> Outcome:
    return Outcome.RETRY if 400 <= code <= 499 else Outcome.PERMANENT


def classify_error(error: Exception, timeout_s: float) -> tuple[Outcome, int | None, str]:
    """(retry or permanent, the SMTP reply code if there was one, a reason without secrets)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        replies = list(error.recipients.values())
        outcome = Outcome.RETRY if all(400 <= code <= 499 for code, _ in replies) else Outcome.PERMANENT
        code, message = min(replies, key=lambda reply: _outcome_of_code(reply[0]) is Outcome.RETRY)
        return outcome, code, f"all {len(replies)} recipients refused: {_reply(code, message)}"
    if isinstance(error, smtplib.SMTPAuthenticationError):
        reason = f"authentication refused: {_reply(error.smtp_code, error.smtp_error)}"
        return _outcome_of_code(error.smtp_code), error.smtp_code, reason
    if isinstance(error, smtplib.SMTPResponseException):
        step = {
            smtplib.SMTPConnectError: "greeting",
            smtplib.SMTPHeloError: "EHLO",
            smtplib.SMTPSenderRefused: "MAIL FROM",
            smtplib.SMTPDataError: "DATA",
        }.get(type(error), "reply")
        reason = f"{step}: {_reply(error.smtp_code, error.smtp_error)}"
        return _outcome_of_code(error.smtp_code), error.smtp_code, reason
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return Outcome.RETRY, None, "server closed the connection"
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return Outcome.PERMANENT, None, f"server does not support it: {error}"
    if isinstance(error, smtplib.SMTPException):
        return Outcome.PERMANENT, None, f"SMTP error: {error}"
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            Outcome.PERMANENT,
            None,
            f"TLS certificate verification failed ({getattr(error, 'verify_message', '') or 'invalid'})",
        )
    if isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return Outcome.RETRY, None, "TLS connection closed early"
    if isinstance(error, ssl.SSLError):
        return Outcome.PERMANENT, None, f"TLS failed ({error.reason})"
    if isinstance(error, TimeoutError):
        return Outcome.RETRY, None, f"no response within {timeout_s:g} s"
    if isinstance(error, OSError):
        return Outcome.RETRY, None, f"connection failed ({type(error).__name__})"
    return Outcome.PERMANENT, None, f"unexpected error ({type(error).__name__})"


def _quit(smtp: smtplib.SMTP) -> None:
    """End a session after a delivery; the message is already accepted, so errors here do not matter."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


class SmtpDeliverer:
    """Deliver messages per an :class:`EmailConfig`; never raises for SMTP outcomes.

    Time is injected (``clock``, ``sleep``, ``rng``) so tests drive backoff without waiting.
    """

    def __init__(
        self,
        config: EmailConfig,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._sender = bare_address(config.from_address)
        self._recipients = [bare_address(address) for address in config.to]

    def deliver(self, message: EmailMessage) -> SmtpResult:
        refused: tuple[str, ...] = ()

        def attempt() -> Attempt:
            nonlocal refused
            outcome, code, reason, refused = self._send(message)
            return Attempt(outcome, code, reason)

        last, attempts, reason = with_retries(attempt, self._config.retry, self._clock, self._sleep, self._rng)
        delivered = last.outcome is Outcome.DELIVERED
        return SmtpResult(delivered, attempts, last.status, reason, attempts - 1, refused=refused if delivered else ())

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self._config.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        config = self._config
        if config.ssl:
            return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_s, context=self._tls_context())
        return smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)

    def _send(self, message: EmailMessage) -> tuple[Outcome, int | None, str, tuple[str, ...]]:
        config = self._config
        smtp: smtplib.SMTP | None = None
        try:
            smtp = self._connect()
            if config.uses_starttls:
                smtp.starttls(context=self._tls_context())
            if config.username is not None and config.password is not None:
                smtp.login(config.username, config.password.get_secret_value())
            refused = smtp.send_message(message, from_addr=self._sender, to_addrs=self._recipients)
        except Exception as error:  # never raise for a delivery outcome: a raised error retries the bundle forever
            if smtp is not None:
                smtp.close()  # no QUIT: the session may be broken or stalled
            outcome, code, reason = classify_error(error, config.timeout_s)
            return outcome, code, self._scrub(reason), ()
        _quit(smtp)
        if refused:
            _LOG.warning("sink %s: %d of %d recipients refused the message", config.name, len(refused),
                         len(self._recipients))  # fmt: skip
        return Outcome.DELIVERED, _DELIVERED_CODE, "", tuple(sorted(refused))

    def _scrub(self, reason: str) -> str:
        password = self._config.password.get_secret_value() if self._config.password else ""
        return reason.replace(password, "**********") if password else reason
