"""The gateway's state: partners, agreements, credentials, nonces, disclosures, releases;
and the one read model of another service's events, loans' open dispute cases."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

from expensura_events.signing import signing_key_table

metadata = MetaData()

partners = Table(
    "partners",
    metadata,
    Column("partner_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # four eyes: not-required (from before) | pending | approved | rejected; "kind:id"
    Column("approval", Text, nullable=False, server_default="not-required"),
    Column("requested_by", Text, nullable=True),
    Column("decided_by", Text, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)

agreements = Table(
    "agreements",
    metadata,
    Column("agreement_id", Uuid, primary_key=True),
    Column("partner_id", Text, nullable=False, index=True),
    Column("reference", Text, nullable=False),
    Column("purposes", JSON, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("inbound", Boolean, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    # four eyes: not-required (from before) | pending | approved | rejected; "kind:id"
    Column("approval", Text, nullable=False, server_default="not-required"),
    Column("requested_by", Text, nullable=True),
    Column("decided_by", Text, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)

partner_credentials = Table(
    "partner_credentials",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("partner_id", Text, nullable=False, index=True),
    Column("secret_hash", Text, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # four eyes: not-required (from before) | pending | approved | rejected; "kind:id"
    Column("approval", Text, nullable=False, server_default="not-required"),
    Column("requested_by", Text, nullable=True),
    Column("decided_by", Text, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)

request_nonces = Table(
    "request_nonces",
    metadata,
    Column("partner_id", Text, primary_key=True),
    Column("nonce", Text, primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)

disclosures = Table(
    "disclosures",
    metadata,
    Column("disclosure_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("partner_id", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("ground", Text, nullable=True),
    Column("decision_id", Uuid, nullable=True),
    # Sealed with the subject's key (SEC-1); `case_reference` holds only rows from before
    # sealing until `seal_legacy_case_references` has sealed them.
    Column("case_reference", Text, nullable=True),
    Column("case_reference_sealed", JSONB, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Read model (`dispute-cases`, from `loans.BalanceDisputeOpened`): the balance disputes the
# borrowers opened, each naming its subject, keyed by the SHA-256 of loans' reference: the
# reference itself is sealed in loans' log (as a partner's is in `disclosures`), never here.
dispute_cases = Table(
    "dispute_cases",
    metadata,
    Column("case_digest", Text, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("loan_id", Uuid, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
)

statistics_releases = Table(
    "statistics_releases",
    metadata,
    Column("release_id", Uuid, primary_key=True),
    Column("query", Text, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("k", Integer, nullable=False),
    Column("cells", Integer, nullable=False),
    Column("suppressed", Integer, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=False),
)

partner_signing_keys = signing_key_table("partner_signing_keys", metadata)
