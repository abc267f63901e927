"""Sandbox servers for external parties: the real protocol, outcomes a test can choose."""

VERIFICATION_AGENCY_APP = "expensura_ops.sandboxes.verification_agency:app"
SMTP_SINK_MODULE = "expensura_ops.sandboxes.smtp_sink"
CREDIT_BUREAU_APP = "expensura_ops.sandboxes.credit_bureau:app"
MESSAGING_APP = "expensura_ops.sandboxes.messaging:app"
# The messaging sandbox's published credentials (its module's docstring), as the stacks
# configure the incident service with them.
MESSAGING_ENV = {
    "EXPENSURA_PUSH_KEY": "sandbox-push-key",
    "EXPENSURA_SMS_ACCOUNT_SID": "AC" + "0" * 32,
    "EXPENSURA_SMS_AUTH_TOKEN": "sandbox-sms-token",
    "EXPENSURA_LETTER_API_KEY": "test_sandbox_letter_key",
}


def messaging_env(url: str) -> dict[str, str]:
    """The incident service's provider settings for the sandbox at `url`."""
    urls = {f"EXPENSURA_{c}_URL": url for c in ("PUSH", "SMS", "LETTER")}
    return urls | MESSAGING_ENV
