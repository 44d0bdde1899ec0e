"""data_keys: at most one primary data key and one live blind-index root

Revision ID: core_0015
Revises: core_0014
Create Date: 2026-11-28 04:30:00.000000

Two partial unique indexes make the database itself refuse a second primary data key or a
second blind-index root, whatever the isolation level of the processes creating them
(``govern.keys.lock_keys`` serialises them too, under READ COMMITTED).

Before the indexes are built, extra primaries left by concurrent rotations are demoted to
``active`` (the newest stays primary; every value stays readable). Several live blind-index
roots cannot be repaired here: values were indexed under each, so the upgrade stops and
names them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from govern.errors import MigrationError

revision: str = "core_0015"
down_revision: str | Sequence[str] | None = "core_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONE_PRIMARY = "state = 'primary'"
ONE_BLIND_ROOT = "purpose = 'blind' AND state <> 'retired'"


def upgrade() -> None:
    if not context.is_offline_mode():  # offline SQL cannot read
        conn = op.get_bind()
        roots = list(
            conn.execute(
                sa.text(f"SELECT id FROM data_keys WHERE {ONE_BLIND_ROOT} ORDER BY id")  # noqa: S608
            ).scalars()
        )
        if len(roots) > 1:
            raise MigrationError(
                f"data_keys holds {len(roots)} live blind-index roots (ids "
                f"{', '.join(map(str, roots))}): values were indexed under each, so one "
                "cannot be chosen here; see docs/encryption.md, 'Keys'"
            )
    # The blind-root index first: offline (no check above) it is what refuses several roots,
    # and it fails before anything else has changed.
    op.create_index(
        "uq_data_keys_single_blind_root",
        "data_keys",
        ["purpose"],
        unique=True,
        sqlite_where=sa.text(ONE_BLIND_ROOT),
        postgresql_where=sa.text(ONE_BLIND_ROOT),
    )
    op.execute(
        "UPDATE data_keys SET state = 'active' WHERE purpose = 'data' AND state = 'primary'"
        " AND id <> (SELECT max(id) FROM data_keys WHERE purpose = 'data' AND state = 'primary')"
    )
    op.create_index(
        "uq_data_keys_single_primary",
        "data_keys",
        ["purpose"],
        unique=True,
        sqlite_where=sa.text(ONE_PRIMARY),
        postgresql_where=sa.text(ONE_PRIMARY),
    )


def downgrade() -> None:
    op.drop_index("uq_data_keys_single_blind_root", table_name="data_keys")
    op.drop_index("uq_data_keys_single_primary", table_name="data_keys")
