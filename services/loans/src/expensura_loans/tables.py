"""All of loans' tables (SQLAlchemy Core). Migrations in `migrations/` create them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# Read model: subjects identity verified (from `identity.RealNameVerified`), USE-1's gate.
verified_subjects = Table(
    "verified_subjects",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("request_id", Uuid, nullable=False),
    Column("verified_at", DateTime(timezone=True), nullable=False),
)

# Read model: subjects whose e-mail identity saw proven (`identity.EmailOwnershipProven`):
# loans serves only an applicant who receives mail at their address.
proven_emails = Table(
    "proven_emails",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("proven_at", DateTime(timezone=True), nullable=False),
)

# Service state: the applications loans received. The amount, the loan's purpose and the
# stated income are credit data about the applicant: kept sealed with their key (SEC-1), so
# crypto-shredding reaches them. `amount_cents` is only where rows from before sealing wait
# for `seal_legacy_amounts`. `decision` is the assessment's (USE-2), set once.
loan_applications = Table(
    "loan_applications",
    metadata,
    Column("application_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("amount_cents", BigInteger, nullable=True),
    Column("amount_sealed", JSONB, nullable=True),
    Column("term_months", Integer, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("facts_sealed", JSONB, nullable=True),
    Column("decision", Text, nullable=True),
    Column("assessed_at", DateTime(timezone=True), nullable=True),
)
