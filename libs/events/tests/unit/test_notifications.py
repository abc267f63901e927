"""The shared mail sender: the relay named by EXPENSURA_SMTP_URL, and what a message says."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from expensura_events.notifications import Mail, MailSender, SmtpRelay
from expensura_events.settings import ServiceSettings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:8191", SmtpRelay("127.0.0.1", 8191, "none")),
        ("smtp+starttls://relay.example", SmtpRelay("relay.example", 587, "starttls")),
        (
            "smtps://app%40x:p%3Ass@mail.example:2465",
            SmtpRelay("mail.example", 2465, "implicit", "app@x", "p:ss"),
        ),
    ],
)
def test_the_relay_url_names_host_port_tls_and_login(url: str, expected: SmtpRelay) -> None:
    assert SmtpRelay.parse(url) == expected


@pytest.mark.parametrize("url", ["http://relay.example", "smtp://", "relay.example:25", ""])
def test_anything_but_an_smtp_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        SmtpRelay.parse(url)


def test_a_message_has_its_sender_recipient_subject_and_plain_body() -> None:
    sender = MailSender("smtp://127.0.0.1:1", "Expensura <no-reply@expensura.invalid>")
    msg = sender.message(Mail("ann@example.com", "Hello", "Your code is 123456", "test"))
    assert (msg["From"], msg["To"], msg["Subject"]) == (
        "Expensura <no-reply@expensura.invalid>",
        "ann@example.com",
        "Hello",
    )
    assert msg.get_content().strip() == "Your code is 123456" and msg["Message-ID"]


def test_a_service_with_a_malformed_smtp_url_refuses_to_start() -> None:
    """Refused in the settings, before any sign-up could save an account it cannot mail."""
    common = {
        "database_url": "x",
        "keystore_url": "x",
        "master_key": "x",
        "kafka_bootstrap_servers": "x",
    }
    with pytest.raises(ValidationError, match="smtp_url"):
        ServiceSettings(**common, smtp_url="relay.example:25")
    assert ServiceSettings(**common, smtp_url="smtps://mail.example").smtp_url
