"""Consent: link keys that are never reused, ids that are never reused, the confirmation queue.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Every subscriber gets a random ``key``, which link tokens name from now on.
On SQLite the subscribers table is rebuilt with AUTOINCREMENT, so the highest id
is never handed out again once its row is deleted (PostgreSQL's sequences never
go back). Ids deleted before this upgrade may still come back once; the old
id-signed links in emails already sent are refused when they were signed before
their subscriber's row was created (newsletter.consent), so they name nobody else.

The rebuild drops and recreates the table inside the migration's transaction,
where SQLite cannot turn foreign keys off: dropping it would cascade to
``deliveries``. The deliveries are kept in a temporary table meanwhile.
"""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("key", sa.String(32)))
    conn = op.get_bind()
    for subscriber_id in conn.execute(sa.text("SELECT id FROM subscribers")).scalars():
        conn.execute(
            sa.text("UPDATE subscribers SET key = :key WHERE id = :id"),
            {"key": secrets.token_urlsafe(16), "id": subscriber_id},
        )
    with _rebuilding_subscribers(autoincrement=True) as batch:
        batch.alter_column("key", existing_type=sa.String(32), nullable=False)
        batch.create_unique_constraint("uq_subscribers_key", ["key"])
    _create_confirmations()


def downgrade() -> None:
    op.drop_index("ix_confirmations_state", table_name="confirmations")
    op.drop_index("ix_confirmations_mailbox_created_at", table_name="confirmations")
    op.drop_table("confirmations")
    with _rebuilding_subscribers(autoincrement=False) as batch:
        batch.drop_constraint("uq_subscribers_key", type_="unique")
        batch.drop_column("key")


@contextmanager
def _rebuilding_subscribers(*, autoincrement: bool) -> Iterator[BatchOperations]:
    """Alter subscribers; on SQLite, rebuild it (with or without AUTOINCREMENT)."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMP TABLE _deliveries_0006 AS SELECT * FROM deliveries")
    with op.batch_alter_table(
        "subscribers",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ) as batch:
        yield batch
    if sqlite:
        op.execute("INSERT INTO deliveries SELECT * FROM _deliveries_0006")
        op.execute("DROP TABLE _deliveries_0006")


def _create_confirmations() -> None:
    op.create_table(
        "confirmations",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("subscriber_id", Id, nullable=False),
        sa.Column("mailbox", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("next_attempt_at", When),
        sa.Column("attempted_at", When),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", When),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_confirmations_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_confirmations"),
    )
    op.create_index(
        "ix_confirmations_mailbox_created_at", "confirmations", ["mailbox", "created_at"]
    )
    op.create_index("ix_confirmations_state", "confirmations", ["state", "next_attempt_at"])
