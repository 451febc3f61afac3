"""tasks.priority (the order workers claim jobs in) and tasks.source_size as a 64-bit integer

A 32-bit ``source_size`` overflows on PostgreSQL for sources above 2 GiB ("integer out of range").

Revision ID: 0005_priority_bigsizes
Revises: 0004_i8_dialects
Create Date: 2026-12-03 11:25:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005_priority_bigsizes'
down_revision: Union[str, Sequence[str], None] = '0004_i8_dialects'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Integer(), server_default='0', nullable=False))
        batch_op.alter_column('source_size', existing_type=sa.Integer(), type_=sa.BigInteger(),
                              existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.alter_column('source_size', existing_type=sa.BigInteger(), type_=sa.Integer(),
                              existing_nullable=True)
        batch_op.drop_column('priority')
