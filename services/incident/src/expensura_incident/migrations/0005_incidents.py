"""Incident: the response workflow (SEC-4) and regulators' reports (SEC-5). An incident's
row (its state, grade, attached exposure summary and stream version), its actions in order
(with their free text, which stays out of the log), and the reports filed per regime.

Revision ID: incident_0005
Revises: incident_0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "incident_0005"
down_revision = "incident_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.Uuid, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("reported_by", sa.Text, nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("category", sa.Text, nullable=True),
        sa.Column("severity", sa.Text, nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("exposure", JSONB, nullable=True),
        sa.Column("exposure_attached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # The open incidents, oldest first.
    op.create_index(
        "ix_incidents_open",
        "incidents",
        ["reported_at"],
        postgresql_where=sa.text("state <> 'closed'"),
    )
    op.create_table(
        "incident_actions",
        sa.Column(
            "incident_id",
            sa.Uuid,
            sa.ForeignKey("incidents.incident_id"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
    )
    op.create_table(
        "incident_regulator_reports",
        sa.Column(
            "incident_id",
            sa.Uuid,
            sa.ForeignKey("incidents.incident_id"),
            primary_key=True,
        ),
        sa.Column("regime", sa.Text, primary_key=True),
        sa.Column("filed_by", sa.Text, nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reference", sa.Text, nullable=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("incident_regulator_reports")
    op.drop_table("incident_actions")
    op.drop_index("ix_incidents_open", table_name="incidents")
    op.drop_table("incidents")
