"""All of the incident service's own tables (SQLAlchemy Core). The schema is made by the
migrations; these declarations are how the code reads and writes it."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# Where to reach each subject when a breach notice must go out (SEC-5, USE-10): the current
# e-mail and phone, as identity's events say, sealed with the subject's key (SEC-1), and the
# e-mail's keyed digest (HMAC-SHA256) to compare an address by; purged on erasure.
notification_contacts = Table(
    "notification_contacts",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("email_sealed", JSONB, nullable=True),
    Column("phone_sealed", JSONB, nullable=True),
    Column("email_hmac", Text, nullable=True),
    # The push token and mailing address the customer gave for notices (identity's
    # NotificationPreferencesSet), sealed likewise, and their channel order (a list of
    # channel names, not a contact value; NULL: no choice, the default order applies).
    Column("push_token_sealed", JSONB, nullable=True),
    Column("mailing_address_sealed", JSONB, nullable=True),
    Column("notice_channels", JSONB, nullable=True),
    # The language the customer reads notices in (BCP 47; NULL: none given, English), a
    # preference like the channel order (incident_0010).
    Column("notice_language", Text, nullable=True),
    Column("updated_from_event", Uuid, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Customer notices other services asked incident to deliver (USE-10), one row per notice
# (`notice_id`, the requester's). The body is sealed with the subject's key (SEC-1; NULL once
# not needed); the title names the matter, never the person. `next_attempt_at` is when the
# sender next takes the row (NULL: nothing more to do). Purged on erasure.
customer_notices = Table(
    "customer_notices",
    metadata,
    Column("notice_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("kind", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body_sealed", JSONB, nullable=True),
    Column("state", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("requested_by_event", Uuid, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The channel of the current (or next) attempt, attempts made on it, and the channels
    # given up on (a list of channel names, in order).
    Column("channel", Text, nullable=True),
    Column("channel_attempts", Integer, nullable=False, server_default="0"),
    Column("exhausted_channels", JSONB, nullable=False, server_default="[]"),
    Index(
        "ix_customer_notices_due",
        "next_attempt_at",
        postgresql_where=text("next_attempt_at IS NOT NULL"),
    ),
)

# Every attempt at a customer notice: its channel, its DPV state (ongoing, then completed or
# failed) with a fixed-phrase reason, and the provider's id for the message. No address, no
# text. Purged on erasure with the notice.
customer_notice_attempts = Table(
    "customer_notice_attempts",
    metadata,
    Column("notice_id", Uuid, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("channel", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Column("provider_ref", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
)

# --- incidents (response) ---

# One row per incident (SEC-4): its state and grade as its actions made them, for listing
# and locking. `version` is the number of events in the incident's stream (`incident-<id>`):
# an action locks the row and moves it on only from the version it read (compare-and-set).
# The free texts (summary, root cause, in `incident_actions` the notes and remediations)
# may name people: they live only here, never in the log. `exposure` is the attached
# blast-radius summary (counts per residence and protection), NULL until one is attached.
incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("state", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("reported_by", Text, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Column("category", Text, nullable=True),
    Column("severity", Text, nullable=True),
    Column("score", Float, nullable=True),
    Column("exposure", JSONB, nullable=True),
    Column("exposure_attached_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_incidents_open", "reported_at", postgresql_where=text("state <> 'closed'")),
)

# Every action taken on an incident, in order (`seq`, its event's stream version): the
# kind, who (an opaque id and the role acted under), when, and the action's fields as the
# domain declares them (`detail`, free text included), with the event that records it.
incident_actions = Table(
    "incident_actions",
    metadata,
    Column("incident_id", Uuid, ForeignKey("incidents.incident_id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("role", Text, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("detail", JSONB, nullable=False),
    Column("event_id", Uuid, nullable=False),
)

# What the owning services did with the incident's containment requests (SEC-4): one row per
# request carried out, from the owner's signed event (`containment.domain.outcome_of`).
containment_outcomes = Table(
    "containment_outcomes",
    metadata,
    Column("request_event_id", Uuid, primary_key=True),
    Column("incident_id", Uuid, nullable=False, index=True),
    Column("measure", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("carried_out_at", DateTime(timezone=True), nullable=False),
)

# Reports filed with a regime's regulator (SEC-5): one per incident and regime.
incident_regulator_reports = Table(
    "incident_regulator_reports",
    metadata,
    Column("incident_id", Uuid, ForeignKey("incidents.incident_id"), primary_key=True),
    Column("regime", Text, primary_key=True),
    Column("filed_by", Text, nullable=False),
    Column("filed_at", DateTime(timezone=True), nullable=False),
    Column("reference", Text, nullable=True),
    Column("event_id", Uuid, nullable=False),
)

# --- breach notices ---

# Which customer notices (by `notice_id`) are an incident's breach notices (SEC-5): one per
# (incident, subject), its id derived from both, so planning twice plans once. No subject
# here: the notice's row in `customer_notices` has it (and erasure purges that row; a link
# left behind names nobody).
breach_notices = Table(
    "breach_notices",
    metadata,
    Column("notice_id", Uuid, primary_key=True),
    Column("incident_id", Uuid, nullable=False, index=True),
    Column("language", Text, nullable=False),
    Column("planned_at", DateTime(timezone=True), nullable=False),
)

# Each incident's public (substitute) notice, as published at `GET /v1/public-notices`: the
# incident's text in English (about no one person), why it was needed (fixed phrases), the
# counts, and the rule's source. One per incident.
public_notices = Table(
    "public_notices",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("public_notice_id", Uuid, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("subjects", Integer, nullable=False),
    Column("unreachable", Integer, nullable=False),
    Column("substitute", Boolean, nullable=False),
    Column("source", Text, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)


# --- exposure (blast radius) ---

# Every access and disclosure event of every service's log (SEC-5), one narrow row per field
# read: who (`actor_kind`: partner, staff, service, user, public; `actor` their id; the
# partner `credential` when the event names it), the subject, the field and its category,
# `sealed_by` (the key owner the value was sealed under; NULL: it was read in plaintext),
# when, and which log recorded it. No personal value: names of fields, ids and times only.
# One covering index per scope kind, leading with the scope's column and then `at`, and
# INCLUDE-ing what a blast radius reads, so a scope over a window is an index-only range
# scan (the table is insert-only: the visibility map stays set after vacuum). Purged on
# erasure like every read model (the subject's index).
EXPOSURE_COLUMNS = ("subject_id", "category", "field", "sealed_by")
exposure_index = Table(
    "exposure_index",
    metadata,
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor_kind", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("credential", Text, nullable=True),
    Column("subject_id", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("field", Text, nullable=False),
    Column("sealed_by", Text, nullable=True),
    Column("source", Text, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Index(
        "ix_exposure_index_actor",
        "actor_kind",
        "actor",
        "at",
        postgresql_include=list(EXPOSURE_COLUMNS),
    ),
    Index(
        "ix_exposure_index_credential",
        "credential",
        "at",
        postgresql_include=list(EXPOSURE_COLUMNS),
        postgresql_where=text("credential IS NOT NULL"),
    ),
    Index(
        "ix_exposure_index_subject",
        "subject_id",
        "at",
        postgresql_include=["category", "field", "sealed_by"],
    ),
    Index(
        "ix_exposure_index_category",
        "category",
        "at",
        postgresql_include=["subject_id", "field", "sealed_by"],
    ),
)

# Each blast radius computed (SEC-5): its scope (a subject scope's value sealed with the
# rest, never readable), the counts the event carries, and the list of subjects sealed with
# incident's own key (AES-GCM under a key derived from incident's look-up secret, bound to
# the row), with the keyed digest the event carries. Kept as the incident's record.
blast_radius_results = Table(
    "blast_radius_results",
    metadata,
    Column("computation_id", Uuid, primary_key=True),
    Column("incident_id", Uuid, nullable=False, index=True),
    Column("scope_kind", Text, nullable=False),
    Column("scope_value", Text, nullable=True),  # NULL for a subject scope
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("subjects", Integer, nullable=False),
    Column("notifiable_subjects", Integer, nullable=False),
    Column("summary", JSONB, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("subjects_digest", Text, nullable=False),
    Column("computed_by", Text, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)


# --- incidents raised automatically (alerts) ---

# Every occurrence of a cause that raised an incident or was attached to one (SEC-4): its
# occurrence id (unique: a redelivery or a rebuild finds it and does nothing), its dedupe key
# (`alerts.domain`), the source, the incident it went to, whether it raised it, and when.
# Kinds, service names, topic positions and event ids: nothing personal. Not a read model a
# rebuild empties: it is what keeps a replayed log from raising every incident again.
auto_raised_causes = Table(
    "auto_raised_causes",
    metadata,
    Column("occurrence", Text, primary_key=True),
    Column("dedupe_key", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("incident_id", Uuid, ForeignKey("incidents.incident_id"), nullable=False),
    Column("raised", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_auto_raised_causes_key", "dedupe_key", "at"),
)
