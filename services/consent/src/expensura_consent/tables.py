"""All of consent's tables (SQLAlchemy Core). Migrations in `migrations/` create them.

Consent records, grounds and decisions hold ids, purposes and categories; the one free text
about a subject (a ground's evidence and reason) is sealed with the subject's key."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

from expensura_events.signing import signing_key_table

metadata = MetaData()

consent_records = Table(
    "consent_records",
    metadata,
    Column("consent_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("purpose", Text, nullable=False),
    Column("purpose_version", Integer, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("policy_version", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("given_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

ground_invocations = Table(
    "ground_invocations",
    metadata,
    Column("invocation_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("purpose", Text, nullable=False),
    Column("ground", Text, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("recipients", JSON, nullable=False),
    # The evidence and reason are free text about the subject's case: sealed with their key
    # (SEC-1). The plaintext columns only hold rows from before sealing (consent_0006) until
    # the `seal-legacy-ground-texts` worker seals them.
    Column("evidence_reference", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("evidence_sealed", JSONB, nullable=True),
    Column("reason_sealed", JSONB, nullable=True),
    Column("invoked_by_kind", Text, nullable=False),
    Column("invoked_by_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # four eyes: not-required | pending | approved | rejected, and who decided, when
    Column("approval", Text, nullable=False, server_default="not-required"),
    Column("decided_by_kind", Text, nullable=True),
    Column("decided_by_id", Text, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)

decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("purpose", Text, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("recipient", Text, nullable=True),
    Column("requester", Text, nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("consent_id", Uuid, nullable=True),
    Column("invocation_id", Uuid, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("fields", JSON, nullable=True),  # a grant for these fields only (disclosures)
    Column("released_at", DateTime(timezone=True), nullable=True),  # redeemed, once
)

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("version", Text, primary_key=True),
    Column("sha256", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("effective_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)

policy_notifications = Table(
    "policy_notifications",
    metadata,
    Column("version", Text, primary_key=True),
    Column("subject_id", Text, primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
)

policy_responses = Table(
    "policy_responses",
    metadata,
    Column("version", Text, primary_key=True),
    Column("subject_id", Text, primary_key=True),
    Column("accepted", Boolean, nullable=False),
    Column("responded_at", DateTime(timezone=True), nullable=False),
)

receipt_signing_keys = signing_key_table("receipt_signing_keys", metadata)

# Read model: every data subject, from identity's events (`subjects/projection.py`).
known_subjects = Table(
    "known_subjects",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("account_opened_at", DateTime(timezone=True), nullable=True),
    Column("channel", Text, nullable=True),
    # How many identity events concern the subject: applying one twice would show here.
    Column("identity_events", Integer, nullable=False),
    Column("last_event_at", DateTime(timezone=True), nullable=False),
)

# Read model: the partners the sharing gateway registered (`recipients/projection.py`).
registered_partners = Table(
    "registered_partners",
    metadata,
    Column("partner_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)
