"""The services' records (job records, share links, terminal preferences) in the hub's
database, for a site with one (``hub.db_url``): one table, a JSON value per (store, key).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ink_records",
        sa.Column("store", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )


def downgrade():
    op.drop_table("ink_records")
