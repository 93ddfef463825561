"""Alembic environment: runs against the engine feedsvc hands over (never a URL in a file)."""

from alembic import context

from feedsvc.store.engine import writing
from feedsvc.store.schema import include_name, metadata

engine = context.config.attributes["engine"]
with writing(engine) as connection:
    if connection.dialect.name == "postgresql":
        # Several processes may start at once: one migrates, the others wait for it.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7210418)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
