"""Alembic's environment for INK's own tables (``ink_*``) in the hub's database: run on the
connection ``history.upgrade`` hands over, with a version table of INK's own beside JupyterHub's
``alembic_version``."""

from alembic import context

from ink_spawner.history import VERSION_TABLE, metadata

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
