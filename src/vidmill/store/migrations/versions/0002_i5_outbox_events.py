"""The outbox stores neutral events (event, details, task snapshot) rendered at send time; every
delivery attempt is logged in delivery_attempts.

Rows written before this revision keep being delivered: their Qencode form body becomes ``details``
(the error code and message it carried) with no snapshot, and the deliverer renders those from the
task as it is at send time.

Revision ID: 0002_i5_outbox_events
Revises: 0001
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002_i5_outbox_events"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

NEW_NOT_NULL = {"channel": sa.String(length=20), "dialect": sa.String(length=20), "details": sa.JSON(),
                "state": sa.String(length=20), "created_at": sa.DateTime(), "retry_from": sa.DateTime()}


def upgrade() -> None:
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delivery_attempts") as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_attempts_outbox_id"), ["outbox_id"], unique=False)

    with op.batch_alter_table("outbox") as batch_op:
        for name, type_ in NEW_NOT_NULL.items():
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.add_column(sa.Column("snapshot", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("given_up_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_status", sa.Integer(), nullable=True))

    conn = op.get_bind()
    outbox = sa.table("outbox", sa.column("id", sa.Integer), sa.column("task_id", sa.Integer),
                      sa.column("body", sa.JSON), sa.column("next_try", sa.DateTime),
                      sa.column("delivered_at", sa.DateTime), sa.column("failed_at", sa.DateTime),
                      *(sa.column(n, t) for n, t in NEW_NOT_NULL.items()), sa.column("given_up_at", sa.DateTime))
    tasks = sa.table("tasks", sa.column("id", sa.Integer), sa.column("dialect", sa.String))
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.body, outbox.c.next_try, outbox.c.delivered_at,
                                  outbox.c.failed_at, tasks.c.dialect)
                        .select_from(outbox.join(tasks, tasks.c.id == outbox.c.task_id))).all()
    for row in rows:
        body = row.body or {}
        details = {}
        if body.get("error_code") not in (None, ""):
            details["error_code"] = int(body["error_code"])
        if body.get("error_message"):
            details["error_message"] = body["error_message"]
        state = "delivered" if row.delivered_at else ("given_up" if row.failed_at else "pending")
        conn.execute(outbox.update().where(outbox.c.id == row.id).values(
            channel="http", dialect=row.dialect or "qencode", details=details, state=state,
            created_at=row.next_try, retry_from=row.next_try, given_up_at=row.failed_at))

    with op.batch_alter_table("outbox") as batch_op:
        for name, type_ in NEW_NOT_NULL.items():
            batch_op.alter_column(name, existing_type=type_, nullable=False)
        batch_op.create_index("ix_outbox_due", ["state", "next_try"], unique=False)
        batch_op.drop_column("failed_at")
        batch_op.drop_column("body")


def downgrade() -> None:
    """Back to rendered bodies: lossy (a pending row's body is only its details), for emergencies."""
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("body", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("failed_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE outbox SET body = details, failed_at = given_up_at")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.alter_column("body", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_index("ix_outbox_due")
        for name in ("last_status", "given_up_at", "retry_from", "created_at", "state", "snapshot", "details",
                     "dialect", "channel"):
            batch_op.drop_column(name)
    with op.batch_alter_table("delivery_attempts") as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_outbox_id"))
    op.drop_table("delivery_attempts")
