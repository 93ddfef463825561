"""Delivery reports read later (bounces, complaints) and incidents of sources (alerts).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bounce_reports",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("report_key", sa.String(80), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("message_id", sa.Text()),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("original_message_id", sa.Text()),
        sa.Column("delivery_id", Id),
        sa.Column("subscriber_id", Id),
        sa.Column("matched_by", sa.String(16)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("raw", sa.LargeBinary()),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name="fk_bounce_reports_delivery_id_deliveries",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_bounce_reports_subscriber_id_subscribers",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bounce_reports"),
        sa.UniqueConstraint("report_key", name="uq_bounce_reports_report_key"),
    )
    op.create_index("ix_bounce_reports_received_at", "bounce_reports", ["received_at"])
    op.create_table(
        "incidents",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("since", When, nullable=False),
        sa.Column("detected_at", When, nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("opened_at", When),
        sa.Column("notified_at", When),
        sa.Column("resolved_at", When),
        sa.Column("recovered", sa.Boolean(), nullable=False),
        sa.Column("recovery_notified_at", When),
        sa.Column("notice_owner", sa.String(64)),
        sa.Column("notice_until", When),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_incidents_source_id_sources",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index(
        "uq_incidents_source_unresolved",
        "incidents",
        ["source_id"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_incidents_source_unresolved", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("ix_bounce_reports_received_at", table_name="bounce_reports")
    op.drop_table("bounce_reports")
