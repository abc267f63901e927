"""A local SMTP sink (aiosmtpd): it accepts every message and keeps it in a Maildir, where a
developer or a test reads it. Started by `make run` (var/mail) and by the test stack (its
work directory), at EXPENSURA_SMTP_URL. It relays nothing: no mail leaves the machine.

    python -m expensura_ops.sandboxes.smtp_sink --port 8191 --maildir var/mail

One deterministic failure, as a real relay refuses a mailbox that does not exist: a
recipient whose local part starts with `undeliverable` (`undeliverable-1@example.com`) is
refused at RCPT with `550 5.1.1`, a permanent failure (the notices' e-mail → push fall-back
is tested with it).

The Maildir holds what a real mailbox would: the recipients' addresses and what they were
sent (codes included). It is local-development data, like the embedded database; the sink
itself logs nothing of a message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import mailbox
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import default
from pathlib import Path

from aiosmtpd.handlers import Message as MessageHandler
from aiosmtpd.smtp import SMTP, Envelope

UNDELIVERABLE = "undeliverable"  # the local part's prefix the sink refuses


class _MaildirHandler(MessageHandler):
    def __init__(self, maildir: Path) -> None:
        super().__init__()
        self.box = mailbox.Maildir(maildir, create=True)
        for sub in ("tmp", "new", "cur"):  # an existing empty folder gets its parts too
            (maildir / sub).mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: SMTP, session: object, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower().startswith(UNDELIVERABLE):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def handle_message(self, message: Message) -> None:
        self.box.add(message)


async def serve(host: str, port: int, maildir: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = _MaildirHandler(maildir)
    server = await loop.create_server(lambda: SMTP(handler, hostname="smtp-sink"), host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8191)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.maildir))


# --- reading what was delivered (tests, developers) -------------------------------------


@dataclass(frozen=True)
class Delivered:
    to: str
    subject: str
    body: str


def delivered(maildir: Path, to: str | None = None) -> list[Delivered]:
    """Every message in the Maildir, oldest first (by delivery), or those addressed to `to`."""
    if not (maildir / "new").is_dir():
        return []
    box = mailbox.Maildir(maildir, create=False)
    found: list[tuple[float, Delivered]] = []
    for key in box.iterkeys():
        stored = box.get_message(key)  # its date is the delivery time
        msg = message_from_bytes(box.get_bytes(key), policy=default)
        assert isinstance(msg, EmailMessage)
        recipient = str(msg["To"] or "")
        if to is not None and recipient.lower() != to.lower():
            continue
        part = msg.get_body(("plain",))
        body = part.get_content() if isinstance(part, EmailMessage) else ""
        found.append((stored.get_date(), Delivered(recipient, str(msg["Subject"] or ""), body)))
    return [d for _, d in sorted(found, key=lambda pair: pair[0])]


_CODE = re.compile(r"\b([0-9]{6})\b")


def last_code(maildir: Path, to: str) -> str | None:
    """The six-digit code in the last message to `to`, if it carries one."""
    for mail in reversed(delivered(maildir, to)):
        if match := _CODE.search(mail.body):
            return match.group(1)
    return None


if __name__ == "__main__":
    main()
