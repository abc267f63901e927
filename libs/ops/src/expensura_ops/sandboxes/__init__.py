"""Sandbox servers for external parties: the real protocol, outcomes a test can choose."""

VERIFICATION_AGENCY_APP = "expensura_ops.sandboxes.verification_agency:app"
SMTP_SINK_MODULE = "expensura_ops.sandboxes.smtp_sink"
CREDIT_BUREAU_APP = "expensura_ops.sandboxes.credit_bureau:app"
