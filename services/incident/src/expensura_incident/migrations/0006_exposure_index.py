"""Incident: the blast radius (SEC-5). The index of every service's access and disclosure
events (`exposure_index`, one covering index per scope kind) and the results computed from
it (`blast_radius_results`, the subject list sealed).

After upgrading, fill the index from the logs: `expensura projections rebuild exposure`.

Revision ID: incident_0006
Revises: incident_0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "incident_0006"
down_revision = "incident_0005"
branch_labels = None
depends_on = None

COVERED = ["subject_id", "category", "field", "sealed_by"]


def upgrade() -> None:
    op.create_table(
        "exposure_index",
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("credential", sa.Text, nullable=True),
        sa.Column("subject_id", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("field", sa.Text, nullable=False),
        sa.Column("sealed_by", sa.Text, nullable=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
    )
    op.create_index(
        "ix_exposure_index_actor",
        "exposure_index",
        ["actor_kind", "actor", "at"],
        postgresql_include=COVERED,
    )
    op.create_index(
        "ix_exposure_index_credential",
        "exposure_index",
        ["credential", "at"],
        postgresql_include=COVERED,
        postgresql_where=sa.text("credential IS NOT NULL"),
    )
    op.create_index(
        "ix_exposure_index_subject",
        "exposure_index",
        ["subject_id", "at"],
        postgresql_include=["category", "field", "sealed_by"],
    )
    op.create_index(
        "ix_exposure_index_category",
        "exposure_index",
        ["category", "at"],
        postgresql_include=["subject_id", "field", "sealed_by"],
    )
    op.create_table(
        "blast_radius_results",
        sa.Column("computation_id", sa.Uuid, primary_key=True),
        sa.Column("incident_id", sa.Uuid, nullable=False),
        sa.Column("scope_kind", sa.Text, nullable=False),
        sa.Column("scope_value", sa.Text, nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subjects", sa.Integer, nullable=False),
        sa.Column("notifiable_subjects", sa.Integer, nullable=False),
        sa.Column("summary", JSONB, nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("subjects_digest", sa.Text, nullable=False),
        sa.Column("computed_by", sa.Text, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_blast_radius_results_incident_id", "blast_radius_results", ["incident_id"])


def downgrade() -> None:
    op.drop_table("blast_radius_results")
    op.drop_table("exposure_index")
