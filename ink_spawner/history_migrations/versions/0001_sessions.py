"""The session history as INK 0.1 made it (its own ``ink_schema`` version 1).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ink_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(255), nullable=False, index=True),
        sa.Column("server", sa.String(255), nullable=False),
        sa.Column("app", sa.String(64), nullable=False, index=True),
        sa.Column("image", sa.String(64), nullable=False),
        sa.Column("experiment", sa.String(64), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("cpus", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("walltime_s", sa.Integer, nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("submitted", sa.DateTime, nullable=False, index=True),
        sa.Column("started", sa.DateTime),
        sa.Column("ended", sa.DateTime),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("wait_s", sa.Float),
        sa.Column("run_s", sa.Float),
        sa.Column("end_reason", sa.String(500), nullable=False),
        sa.Column("peak_memory_mb", sa.Float),
        sa.Column("mean_cpu", sa.Float),
        sa.Column("peak_cpu", sa.Float),
    )
    figures = ["day", "app", "cpus", "run_s", "mean_cpu", "peak_memory_mb", "memory_mb", "wait_s", "started"]
    op.create_index("ix_ink_sessions_figures", "ink_sessions", figures)
    op.create_index("ix_ink_sessions_day_user", "ink_sessions", ["day", "user"])
    op.create_index("ix_ink_sessions_day_wait", "ink_sessions", ["day", "wait_s"])
    groups = ["day", "experiment", "user", "memory_mb", "peak_memory_mb"]
    op.create_index("ix_ink_sessions_day_groups", "ink_sessions", groups)


def downgrade():
    op.drop_table("ink_sessions")
