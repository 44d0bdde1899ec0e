"""govern's migrations: one Alembic branch per domain, run through typed functions.

Host services call these directly, or hand :func:`alembic_config` to Alembic and pytest-alembic.
"""

from govern.migrations.api import (
    alembic_config,
    check,
    downgrade,
    history,
    offline_sql,
    status,
    upgrade,
)

__all__ = ["alembic_config", "check", "downgrade", "history", "offline_sql", "status", "upgrade"]
