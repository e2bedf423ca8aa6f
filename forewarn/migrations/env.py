"""Alembic's environment for forewarn: always given a connection by
`forewarn.migrations.upgrade`, never a URL of its own, and the schema as data (the
migrations do not import the store: the store runs them)."""

from alembic import context

connection = context.config.attributes["connection"]
metadata = context.config.attributes.get("metadata")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
