"""Alembic's environment for forewarn: always given a connection by
`forewarn.migrations.upgrade`, never a URL of its own."""

from alembic import context

from forewarn.store import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
