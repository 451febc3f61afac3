"""E-mail notifications over SMTP (stdlib ``smtplib``): one message, one attempt; the outbox retries.

Configured by ``VIDMILL_SMTP_HOST``/``PORT``/``FROM``/``USERNAME``/``PASSWORD`` and ``SMTP_SECURITY``
(``none``, ``starttls``, ``ssl``). smtplib's errors are translated here, once, into ``MailNotSent``
with no credential in the message.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from vidmill.errors import MailNotSent
from vidmill.notify.outbox import Outgoing, SendResult


def build_message(settings, to: str, subject: str, text: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or "vidmill")
    msg.set_content(text)
    return msg


def send_mail(settings, to: str, subject: str, text: str) -> None:
    """Send one message; ``MailNotSent`` when the server cannot be reached or refuses it."""
    if not settings.smtp_host:
        raise MailNotSent("e-mail not sent: no SMTP server configured (VIDMILL_SMTP_HOST)")
    msg = build_message(settings, to, subject, text)
    timeout = settings.callback_timeout
    try:
        if settings.smtp_security == "ssl":
            client = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                client.login(settings.smtp_username, settings.smtp_password)
            client.send_message(msg)
    except smtplib.SMTPResponseException as exc:
        raise MailNotSent(f"e-mail to {to} refused: SMTP {exc.smtp_code}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailNotSent(f"e-mail to {to} refused by the SMTP server") from exc
    except (smtplib.SMTPException, OSError, socket.timeout, ssl.SSLError) as exc:
        raise MailNotSent(f"e-mail to {to} not sent: {type(exc).__name__}") from exc


class SmtpSender:
    """The outbox sender of the ``email`` channel: ``outgoing.target`` is the address, the body its text."""

    def __init__(self, settings):
        self.settings = settings

    def send(self, outgoing: Outgoing, *, secret: str) -> SendResult:
        subject = outgoing.headers.get("Subject", "vidmill notification")
        try:
            send_mail(self.settings, outgoing.target, subject, outgoing.body.decode("utf-8", "replace"))
        except MailNotSent as exc:
            return SendResult(False, error=exc.message, final=not self.settings.smtp_host)
        return SendResult(True)
