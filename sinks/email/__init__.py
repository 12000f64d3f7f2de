"""Alert notifications by email over SMTP (plain, STARTTLS or SMTPS), threaded per episode."""

from sinks.email.config import EmailConfig
from sinks.email.message import build_message, message_id, subject, thread_root_id
from sinks.email.smtp import SmtpDeliverer, SmtpResult, classify_error
from sinks.email.transform import WriteToEmail

__all__ = [
    "EmailConfig",
    "SmtpDeliverer",
    "SmtpResult",
    "WriteToEmail",
    "build_message",
    "classify_error",
    "message_id",
    "subject",
    "thread_root_id",
]
