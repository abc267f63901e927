"""Notifications by e-mail: the one way a service sends mail (identity's sign-up codes and
notices today; incident's breach notices and loans' communications later, USE-10).

Real SMTP (RFC 5321) to `EXPENSURA_SMTP_URL`: `smtp://host:port` (plain, for the local sink
`make run` starts), `smtp+starttls://` (upgrade before anything is sent) or `smtps://`
(implicit TLS); `user:password@` when the relay wants a login. The standard library's client
runs in a thread: one short conversation per message, no dependency beyond Python.

What is logged is the kind of message and the outcome, never the address or the body: both
are personal data (the address), and a body may carry a one-time code.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

import structlog

log = structlog.get_logger("expensura.notifications")

_SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailUndelivered(Exception):
    """The relay did not accept the message (unreachable, refused, timed out). The message
    says why without naming the recipient. `permanent`: the relay refused the recipient or
    the message for good (a 5xx reply); sending it again would fail again."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def _permanent(exc: Exception) -> bool:
    """A 5xx reply (RFC 5321 §4.2.1: permanent negative completion): refused recipients,
    or the relay's refusal of the sender or the data."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    kind: str  # what the message is, for logs and metrics: "email-proof-code", …
    # The message's Message-ID (RFC 5322 §3.6.4), angle brackets included; None: a fresh
    # one. A message sent again (a retry after a crash) under the same id is the same
    # message: a receiver that deduplicates on it shows it once.
    message_id: str | None = None


@dataclass(frozen=True)
class SmtpRelay:
    host: str
    port: int
    tls: str  # "none", "starttls" or "implicit"
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SmtpRelay:
        """Raises ValueError for a URL that names no SMTP relay."""
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError("an SMTP URL is smtp://, smtp+starttls:// or smtps://host[:port]")
        tls = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "implicit"}[parts.scheme]
        return cls(
            host=parts.hostname,
            port=parts.port or _SCHEMES[parts.scheme],
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class MailSender:
    """Sends one message per call; safe to share (each call opens its own connection)."""

    def __init__(self, smtp_url: str, sender: str, *, timeout: float = 10.0) -> None:
        self.relay = SmtpRelay.parse(smtp_url)
        self.sender = sender
        self.timeout = timeout

    def message(self, mail: Mail) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Message-ID"] = mail.message_id or make_msgid(domain="expensura.invalid")
        msg.set_content(mail.body)
        return msg

    async def send(self, mail: Mail) -> None:
        """Raises MailUndelivered."""
        try:
            await asyncio.to_thread(self._send, self.message(mail))
        except Exception as exc:  # any failure: its message may name the address
            log.warning("mail undelivered", kind=mail.kind, error=type(exc).__name__)
            raise MailUndelivered(
                f"{mail.kind}: {type(exc).__name__}", permanent=_permanent(exc)
            ) from None
        log.info("mail sent", kind=mail.kind)

    async def send_quietly(self, mail: Mail) -> bool:
        """For a message sent after the answer has gone (a background task): a failure is
        logged (without the address) and reported as False, never raised."""
        try:
            await self.send(mail)
        except MailUndelivered:
            return False
        return True

    def _send(self, msg: EmailMessage) -> None:
        relay = self.relay
        smtp: smtplib.SMTP
        if relay.tls == "implicit":
            context = ssl.create_default_context()
            smtp = smtplib.SMTP_SSL(relay.host, relay.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(relay.host, relay.port, timeout=self.timeout)
        with smtp:
            if relay.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if relay.username is not None:
                smtp.login(relay.username, relay.password or "")
            smtp.send_message(msg)
