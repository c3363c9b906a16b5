"""Batch jobs in the history beside sessions: what kind a record is, and INK's id of a job;
INK 0.1's own version table gives way to Alembic's.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ink_sessions") as table:
        table.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="session"))
        table.add_column(sa.Column("ink_job", sa.String(32), nullable=False, server_default=""))
    op.create_index("ix_ink_sessions_ink_job", "ink_sessions", ["ink_job"])
    if sa.inspect(op.get_bind()).has_table("ink_schema"):
        op.drop_table("ink_schema")


def downgrade():
    op.drop_index("ix_ink_sessions_ink_job", "ink_sessions")
    with op.batch_alter_table("ink_sessions") as table:
        table.drop_column("ink_job")
        table.drop_column("kind")
    op.create_table("ink_schema", sa.Column("version", sa.Integer, nullable=False))
    op.execute("INSERT INTO ink_schema (version) VALUES (1)")
