"""All of identity's own tables (SQLAlchemy Core), beside its event log. The schema itself is
made by the migrations; these declarations are how the code reads and writes it.

No row here holds contact details or identifying data in plaintext: those live encrypted in
the log. Accounts and staff are found by a keyed hash of the e-mail, tokens by their hash.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
)

from expensura_events.signing import signing_key_table

metadata = MetaData()

# --- accounts ---------------------------------------------------------------------------

# `email_lookup` is a keyed hash used to find the account at sign-in and refuse duplicates.
accounts = Table(
    "accounts",
    metadata,
    Column("account_id", Uuid, primary_key=True),
    Column("email_lookup", LargeBinary, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    # When the holder proved they receive mail at the account's e-mail (None: not yet).
    Column("email_proven_at", DateTime(timezone=True), nullable=True),
)

# The live one-time code of an account's e-mail proof, by keyed hash only (email_proof/).
email_proofs = Table(
    "email_proofs",
    metadata,
    Column("account_id", Uuid, primary_key=True),
    Column("code_hash", LargeBinary, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

# --- auth: signing keys, refresh-token families, sign-in attempts ------------------------

# Ed25519 keys that sign access tokens; private halves wrapped by the master key.
signing_keys = signing_key_table("signing_keys", metadata)

# Refresh tokens are stored only as hashes. A family is one sign-in; presenting a token
# that was already used revokes the whole family (RFC 6819 §5.2.2.3, OAuth 2.1 rotation).
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("family_id", Uuid, nullable=False, index=True),
    Column("principal_kind", Text, nullable=False),
    Column("principal_id", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("amr", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # The family's sign-in and its absolute end (the cap of its principal kind): every
    # rotation copies both, so no chain of refreshes outlives the cap.
    Column("family_started_at", DateTime(timezone=True), nullable=False),
    Column("family_expires_at", DateTime(timezone=True), nullable=False),
    Index("refresh_tokens_principal", "principal_id"),
)

# The sign-in throttle: per key (a keyed hash of the claimed account, or of the client
# address), the failures counted in the window that started at `window_start`. Raised by one
# atomic statement that refuses at the limit (auth/store.py, `count_attempt`).
sign_in_throttle = Table(
    "sign_in_throttle",
    metadata,
    Column("key", LargeBinary, primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("failures", Integer, nullable=False),
)

# A staff sign-in's second step: the challenge, stored by hash, consumed once, and bound to
# the client that proved the password (a keyed hash of its address and user agent).
mfa_challenges = Table(
    "mfa_challenges",
    metadata,
    Column("challenge_hash", LargeBinary, primary_key=True),
    Column("staff_id", Text, nullable=False),
    Column("client_binding", LargeBinary, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

# --- profile: anonymous interactions and the device index ---------------------------------

# Anonymous interactions: no identifier, hour precision (COL-3).
interaction_events = Table(
    "interaction_events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("type", Text, nullable=False),
    Column("screen", Text, nullable=False),
    Column("element", Text, nullable=True),
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("channel", Text, nullable=False),
)

# Ids and channels only: the device details live encrypted in the log.
devices = Table(
    "devices",
    metadata,
    Column("device_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("tracking_allowed", Boolean, nullable=False),
    Column("channel", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

# --- verification: state and retry bookkeeping (the data is in the request's event) ------

verification_requests = Table(
    "verification_requests",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# --- staff: the TOTP secret wrapped by the master key; recovery codes as hashes -----------

staff_members = Table(
    "staff_members",
    metadata,
    Column("staff_id", Text, primary_key=True),
    Column("email_lookup", LargeBinary, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("roles", JSON, nullable=False),
    Column("totp_secret_wrapped", LargeBinary, nullable=True),
    Column("totp_enrolled", Boolean, nullable=False),
    Column("recovery_codes", JSON, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # An administrator disabled the account: no sign-in, no refresh, until re-enabled.
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    # The last TOTP time step accepted (unix time // 30): a code of this step or an earlier
    # one is refused, so a code works once.
    Column("last_totp_step", BigInteger, nullable=True),
)

# An incident's request to end a staff member's sessions, once carried out (SEC-4): keyed by
# the request's event id, so that a projection rebuild replaying incident's log never ends
# the sessions the staff member opened since.
staff_containments = Table(
    "staff_containments",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("incident_id", Uuid, nullable=False),
    Column("staff_id", Text, nullable=False),
    Column("carried_out_at", DateTime(timezone=True), nullable=False),
)

# --- rights: cancellation requests, erasure confirmations, certificates --------------------
# Subject ids, dates and states only.

cancellation_requests = Table(
    "cancellation_requests",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("state", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("cooling_off_until", DateTime(timezone=True), nullable=False),
    Column("erasure_requested_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
)

erasure_confirmations = Table(
    "erasure_confirmations",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("service", Text, primary_key=True),
    Column("confirmed_at", DateTime(timezone=True), nullable=False),
    Column("purged", JSON, nullable=False),
    Column("retained", JSON, nullable=False),
    Column("event_id", Uuid, nullable=False),
)

erasure_certificates = Table(
    "erasure_certificates",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("services", JSON, nullable=False),
    Column("event_id", Uuid, nullable=False),
)

# The legal retention holds other services ended (`platform.RetentionHoldEnded` in their
# logs): the certificate shows each held class "held until" its end, then "erased".
retention_holds_ended = Table(
    "retention_holds_ended",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("service", Text, primary_key=True),
    Column("hold", Text, primary_key=True),
    Column("ended_at", DateTime(timezone=True), nullable=False),
    Column("event_id", Uuid, nullable=False),
)

# --- personalisation: a profile that exists only while the user consents (USE-5) ----------

personalisation_profiles = Table(
    "personalisation_profiles",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("consent_id", Uuid, nullable=False),
    Column("sign_ins", Integer, nullable=False),
    Column("usual_hour_utc", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
