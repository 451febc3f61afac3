"""i8 dialects: tasks.external_id (a dialect's own id for a task) and tasks.dialect_data

Revision ID: 0004_i8_dialects
Revises: 0003_i7tus
Create Date: 2026-12-03 07:45:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004_i8_dialects'
down_revision: Union[str, Sequence[str], None] = '0003_i7tus'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('dialect_data', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_tasks_external_id'), ['external_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_external_id'))
        batch_op.drop_column('dialect_data')
        batch_op.drop_column('external_id')
