"""All of loans' tables (SQLAlchemy Core). Migrations in `migrations/` create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    text,
)
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

# Service state: the loans offered on approved applications (USE-3). The terms (principal,
# rate, term, first due date) and the balance are credit data: sealed with the borrower's
# key. `state` is the servicing domain's `LoanState`.
loans = Table(
    "loans",
    metadata,
    Column("loan_id", Uuid, primary_key=True),
    Column("application_id", Uuid, nullable=False, unique=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("state", Text, nullable=False),
    Column("terms_sealed", JSONB, nullable=False),
    Column("balance_sealed", JSONB, nullable=True),
    Column("offered_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Service state: each payment applied, once per (loan, Idempotency-Key); how it was applied
# (sealed) is what a retry with the same key is answered with.
loan_payments = Table(
    "loan_payments",
    metadata,
    Column("loan_id", Uuid, ForeignKey("loans.loan_id"), primary_key=True),
    Column("idempotency_key", Text, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("applied_sealed", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# Service state of credit reporting (SHR-4). A month's run, once per period: the file's
# header (it names only us), its digest and counts, and its delivery to the bureau.
furnishing_runs = Table(
    "furnishing_runs",
    metadata,
    Column("period", Text, primary_key=True),  # YYYY-MM
    Column("header", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("record_count", Integer, nullable=False),
    Column("status_counts", JSONB, nullable=False),
    Column("produced_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("bureau_file_id", Text, nullable=True),
    Column("delivery_attempts", Integer, nullable=False),
    Column("last_delivery_error", Text, nullable=True),
)

# Each account's line of a month's file, sealed with its borrower's key: the file is
# re-assembled from them to retry a delivery, and a dispute's investigation compares the
# line furnished with what the records say.
furnished_accounts = Table(
    "furnished_accounts",
    metadata,
    Column("period", Text, ForeignKey("furnishing_runs.period"), primary_key=True),
    Column("account_number", Text, primary_key=True),
    Column("loan_id", Uuid, nullable=False, index=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("record_sealed", JSONB, nullable=False),
)

# Bureau disputes (FCRA §611, §623(b)): received from the bureau, investigated by the
# deadline, answered once. `reported_in` is the first file after the answer (which carries
# the correction, if any, and the compliance code XH); `answer_sent_at` is when the bureau
# acknowledged the answer. The consumer's reason and a correction are sealed.
bureau_disputes = Table(
    "bureau_disputes",
    metadata,
    Column("dispute_id", Text, primary_key=True),
    Column("account_number", Text, nullable=False, index=True),
    Column("loan_id", Uuid, nullable=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("reason_sealed", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("records_agree", Boolean, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("correction_sealed", JSONB, nullable=True),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Column("answered_by", Text, nullable=True),
    Column("answer_sent_at", DateTime(timezone=True), nullable=True),
    Column("reported_in", Text, nullable=True),
)

# Legal retention holds placed on an erased subject's records (RUL-2, USE-3): one row per
# subject and hold, placed in the erasure's transaction, released (the hold's key destroyed)
# by the retention worker once `ends_at` has come. Kept after release: it is the record of
# when the held records were erased, and it names no one but by the subject's id.
retention_holds = Table(
    "retention_holds",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("hold", Text, primary_key=True),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=True),
    Index(
        "retention_holds_pending",
        "ends_at",
        postgresql_where=text("released_at IS NULL"),
    ),
)

# Fraud and risk signals (USE-6). What the signals see of each loan application attempt,
# received or refused: the device and bank card it came with, as loans' keyed hashes
# (HMAC-SHA256 under its `pseudonym` secret, computed on arrival: the raw values are never
# stored), compared only for equality. `application_id` is None for an attempt refused for
# want of verification: it still says who presented the device, and whether they were
# verified is read from `verified_subjects` when a signal needs it.
risk_observations = Table(
    "risk_observations",
    metadata,
    Column("observation_id", Uuid, primary_key=True),
    Column("application_id", Uuid, nullable=True, unique=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("device_hash", Text, nullable=False, index=True),
    Column("card_hash", Text, nullable=False, index=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)

# Changes of the account a loan is to be paid out to, checked before each payout.
risk_payout_account_changes = Table(
    "risk_payout_account_changes",
    metadata,
    Column("change_id", Uuid, primary_key=True),
    Column("loan_id", Uuid, nullable=False, index=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

# Holds for a risk analyst's review: one per signalled step (`stage`: the application as
# received, or its loan's disbursement). `signals`: each signal's kind and evidence (counts,
# windows, a loan id: nothing that names anyone). At most one open review per application.
risk_reviews = Table(
    "risk_reviews",
    metadata,
    Column("review_id", Uuid, primary_key=True),
    Column("application_id", Uuid, nullable=False, index=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("stage", Text, nullable=False),
    Column("loan_id", Uuid, nullable=True),
    Column("signals", JSONB, nullable=False),
    Column("state", Text, nullable=False),
    Column("held_at", DateTime(timezone=True), nullable=False),
    Column("concluded_at", DateTime(timezone=True), nullable=True),
    Column("concluded_by", Text, nullable=True),
    Index(
        "risk_reviews_one_open",
        "application_id",
        unique=True,
        postgresql_where=text("state = 'open'"),
    ),
)
