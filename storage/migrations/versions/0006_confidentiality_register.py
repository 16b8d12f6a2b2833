"""Law 25 confidentiality incident register

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "confidentiality_incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("personal_information", sa.Text(), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("occurred_until", sa.Date(), nullable=True),
        sa.Column("discovered_on", sa.Date(), nullable=False),
        sa.Column("people_count", sa.Integer(), nullable=False),
        sa.Column("people_count_estimated", sa.Boolean(), nullable=False),
        sa.Column("risk_assessment", sa.Text(), nullable=False),
        sa.Column("serious_injury_risk", sa.Boolean(), nullable=False),
        sa.Column("commission_notified_on", sa.Date(), nullable=True),
        sa.Column("people_notified_on", sa.Date(), nullable=True),
        sa.Column("notification_details", sa.Text(), nullable=True),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["members.id"],
            name=op.f("fk_confidentiality_incidents_recorded_by_members"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["members.id"],
            name=op.f("fk_confidentiality_incidents_updated_by_members"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_confidentiality_incidents")),
    )
    op.create_index(
        "ix_confidentiality_incidents_discovered",
        "confidentiality_incidents",
        ["discovered_on", "id"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(
        "ix_confidentiality_incidents_discovered", table_name="confidentiality_incidents"
    )
    op.drop_table("confidentiality_incidents")
