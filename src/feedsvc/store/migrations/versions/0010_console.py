"""The operator console: paused sources, poll history, folded subscriber search, the counts
of deleted subscribers' deliveries, and the console's sign-ins, sessions and events.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

``subscribers.mailbox`` is filled in for every row already there, with the rule every
later insert uses (``store.subscribers.canonical_mailbox``).
"""

import sqlalchemy as sa
from alembic import op

from feedsvc.store.subscribers import canonical_mailbox

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("sources", sa.Column("paused_at", When))
    op.add_column("sources", sa.Column("paused_by", sa.Text()))
    _create_poll_history()
    _add_mailbox()
    op.create_index(
        "ix_deliveries_schedule_period_state", "deliveries", ["schedule", "period", "state"]
    )
    op.create_table(
        "delivery_tallies",
        sa.Column("schedule", sa.String(64), nullable=False),
        sa.Column("period", When, nullable=False),
        sa.Column("edition", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "schedule", "period", "edition", "state", name="pk_delivery_tallies"
        ),
    )
    _create_console_tables()


def _create_poll_history() -> None:
    op.create_table(
        "poll_history",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_poll_history_source_id_sources",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_poll_history"),
    )
    op.create_index("ix_poll_history_source_id", "poll_history", ["source_id", "id"])


def _add_mailbox() -> None:
    # add_column, not a batch: rebuilding subscribers on SQLite would cascade to deliveries.
    op.add_column("subscribers", sa.Column("mailbox", sa.Text(), nullable=False, server_default=""))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, email FROM subscribers")).all()
    if rows:
        conn.execute(
            sa.text("UPDATE subscribers SET mailbox = :mailbox WHERE id = :id"),
            [{"id": row.id, "mailbox": canonical_mailbox(row.email)} for row in rows],
        )
    op.create_index("ix_subscribers_mailbox", "subscribers", ["mailbox"])
    op.create_index("ix_subscribers_status_id", "subscribers", ["status", "id"])


def _create_console_tables() -> None:
    op.create_table(
        "admin_attempts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_admin_attempts"),
    )
    op.create_index("ix_admin_attempts_at", "admin_attempts", ["at"])
    op.create_index("ix_admin_attempts_client_at", "admin_attempts", ["client", "at"])
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("ended_at", When),
        sa.PrimaryKeyConstraint("id", name="pk_admin_sessions"),
    )
    op.create_table(
        "admin_events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("session", sa.String(16), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_admin_events"),
    )
    op.create_index("ix_admin_events_at", "admin_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_admin_events_at", table_name="admin_events")
    op.drop_table("admin_events")
    op.drop_table("admin_sessions")
    op.drop_index("ix_admin_attempts_client_at", table_name="admin_attempts")
    op.drop_index("ix_admin_attempts_at", table_name="admin_attempts")
    op.drop_table("admin_attempts")
    op.drop_table("delivery_tallies")
    op.drop_index("ix_deliveries_schedule_period_state", table_name="deliveries")
    op.drop_index("ix_subscribers_status_id", table_name="subscribers")
    op.drop_index("ix_subscribers_mailbox", table_name="subscribers")
    op.drop_column("subscribers", "mailbox")  # ALTER TABLE: a rebuild would cascade
    op.drop_index("ix_poll_history_source_id", table_name="poll_history")
    op.drop_table("poll_history")
    op.drop_column("sources", "paused_by")
    op.drop_column("sources", "paused_at")
