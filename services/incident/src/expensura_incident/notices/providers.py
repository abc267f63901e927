"""The notice channels' providers (USE-10): e-mail through the SMTP relay, push through a
Firebase Cloud Messaging HTTP v1 API, SMS through Twilio's Messages API, letters through
Lob's print-and-mail API. `make run` and the tests point the three HTTP ones at the sandbox
(`expensura_ops.sandboxes.messaging`), which speaks the same protocols.

Each sender takes one message and returns the provider's id for it, or raises
`Undelivered`, whose text is a fixed phrase with the provider's status and error code (never
its message, which may quote the number or address) and which says whether the failure is
permanent: the recipient was refused for good (a 5xx SMTP reply, an unregistered push token,
a number that cannot take SMS, an undeliverable address), so retrying the channel is
pointless. Anything else (down, 5xx, 429, a time-out, a wrong key) is worth a retry.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import httpx

from expensura_events.catalog.identity_notifications import MailingAddress
from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.notifications import Mail, MailSender, MailUndelivered
from expensura_events.outbound import http_client
from expensura_incident.settings import IncidentSettings


class Undelivered(Exception):
    """The provider did not take the message; `permanent`: it never will."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    """One message on one channel: `to` is the channel's address (e-mail, push token, phone
    or mailing address), `text` the notice as the channel carries it."""

    notice_id: UUID
    kind: str
    to: str
    title: str
    text: str


class ChannelSender(Protocol):
    async def send(self, message: Outgoing) -> str | None:
        """The provider's id for the message (None if it gives none); raises Undelivered."""
        ...


def message_id(notice_id: UUID) -> str:
    """The e-mail's Message-ID, derived from the notice: every attempt at one notice sends
    the same message, so a resend after a crash is recognisably the same (the idempotency
    key e-mail has; the letter API's is `Idempotency-Key`)."""
    return f"<notice-{notice_id}@expensura.invalid>"


class EmailSender:
    def __init__(self, mail: MailSender) -> None:
        self.mail = mail

    async def send(self, message: Outgoing) -> str | None:
        try:
            await self.mail.send(
                Mail(
                    to=message.to,
                    subject=message.title,
                    body=message.text,
                    kind=message.kind,
                    message_id=message_id(message.notice_id),
                )
            )
        except MailUndelivered as exc:  # its text names the kind and error class only
            raise Undelivered(f"mail undelivered ({exc})", permanent=exc.permanent) from None
        return None


async def _post(channel: NoticeChannel, timeout: float, url: str, **request: Any) -> httpx.Response:
    try:
        async with http_client(timeout=timeout) as client:
            return await client.post(url, **request)
    except httpx.HTTPError as exc:
        reason = f"{channel} undelivered ({type(exc).__name__})"
        raise Undelivered(reason, permanent=False) from None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class PushSender:
    """FCM HTTP v1: `POST /v1/projects/{project}/messages:send` with a bearer key."""

    # FCM's error codes that mean the token will never take a message.
    PERMANENT = frozenset({"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"})

    def __init__(self, base_url: str, project_id: str, key: str, *, timeout: float) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self.key, self.timeout = key, timeout

    async def send(self, message: Outgoing) -> str | None:
        body = {
            "message": {
                "token": message.to,
                "notification": {"title": message.title, "body": message.text},
                "data": {"notice_id": str(message.notice_id), "kind": message.kind},
            }
        }
        response = await _post(
            NoticeChannel.PUSH,
            self.timeout,
            self.url,
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
        )
        answer = _json(response)
        if response.status_code == 200 and isinstance(answer.get("name"), str):
            return str(answer["name"])
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        assert isinstance(error, dict)
        codes = [d.get("errorCode") for d in error.get("details") or [] if isinstance(d, dict)] or [
            error.get("status")
        ]
        code = next((str(c) for c in codes if isinstance(c, str)), "no error code")
        raise Undelivered(
            f"push undelivered ({response.status_code} {code[:40]})",
            permanent=response.status_code in (400, 404) and code in self.PERMANENT,
        )


class SmsSender:
    """Twilio: `POST /2010-04-01/Accounts/{sid}/Messages.json`, HTTP Basic sid:token."""

    # Twilio's error codes for a number that will never take this message: not a valid
    # number, not a mobile number, unsubscribed (STOP), not reachable by SMS.
    PERMANENT = frozenset({21211, 21214, 21610, 21612, 21614})

    def __init__(
        self, base_url: str, account_sid: str, auth_token: str, sender: str, *, timeout: float
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.auth = (account_sid, auth_token)
        self.sender, self.timeout = sender, timeout

    async def send(self, message: Outgoing) -> str | None:
        response = await _post(
            NoticeChannel.SMS,
            self.timeout,
            self.url,
            data={"To": message.to, "From": self.sender, "Body": message.text},
            auth=self.auth,
        )
        answer = _json(response)
        if response.status_code in (200, 201) and isinstance(answer.get("sid"), str):
            return str(answer["sid"])
        code = answer.get("code")
        raise Undelivered(
            f"sms undelivered ({response.status_code} {code if isinstance(code, int) else '-'})",
            permanent=response.status_code == 400 and code in self.PERMANENT,
        )


def _lob_address(address: MailingAddress) -> dict[str, str | None]:
    return {
        "name": address.name,
        "address_line1": address.line1,
        "address_line2": address.line2,
        "address_city": address.city,
        "address_state": address.state,
        "address_zip": address.zip_code,
        "address_country": "US",
    }


class LetterSender:
    """Lob: `POST /v1/letters`, HTTP Basic with the key as user name. The idempotency key is
    the notice's: a letter resent after a crash or a lost answer is printed once."""

    def __init__(self, base_url: str, api_key: str, sender: str, *, timeout: float) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/letters"
        self.auth = (api_key, "")
        self.sender = MailingAddress.parse(sender)
        self.timeout = timeout

    async def send(self, message: Outgoing) -> str | None:
        try:
            to = MailingAddress.parse(message.to)
        except ValueError:
            raise Undelivered("letter undelivered (unusable address)", permanent=True) from None
        page = (
            f"<html><body><h1>{html.escape(message.title)}</h1>"
            f'<pre style="white-space: pre-wrap">{html.escape(message.text)}</pre></body></html>'
        )
        response = await _post(
            NoticeChannel.LETTER,
            self.timeout,
            self.url,
            json={
                "description": f"{message.kind} notice",
                "to": _lob_address(to),
                "from": _lob_address(self.sender),
                "file": page,
                "color": False,
                "use_type": "operational",
                "metadata": {"notice_id": str(message.notice_id)},
            },
            auth=self.auth,
            headers={"Idempotency-Key": f"notice-{message.notice_id}"},
        )
        answer = _json(response)
        if response.status_code == 200 and isinstance(answer.get("id"), str):
            return str(answer["id"])
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        assert isinstance(error, dict)
        code = error.get("code") if isinstance(error.get("code"), str) else "-"
        raise Undelivered(
            f"letter undelivered ({response.status_code} {str(code)[:40]})",
            permanent=response.status_code == 422,
        )


def senders(settings: IncidentSettings) -> Mapping[NoticeChannel, ChannelSender]:
    """A sender for each channel whose provider is configured (e-mail always is)."""
    timeout = settings.provider_timeout_seconds
    out: dict[NoticeChannel, ChannelSender] = {
        NoticeChannel.EMAIL: EmailSender(MailSender(settings.smtp_url, settings.mail_from))
    }
    if settings.push_key:
        out[NoticeChannel.PUSH] = PushSender(
            settings.push_url, settings.push_project_id, settings.push_key, timeout=timeout
        )
    if settings.sms_account_sid and settings.sms_auth_token:
        out[NoticeChannel.SMS] = SmsSender(
            settings.sms_url,
            settings.sms_account_sid,
            settings.sms_auth_token,
            settings.sms_from,
            timeout=timeout,
        )
    if settings.letter_api_key:
        out[NoticeChannel.LETTER] = LetterSender(
            settings.letter_url, settings.letter_api_key, settings.letter_from, timeout=timeout
        )
    return out
