"""What Alembic's env.py runs: one transaction, govern's metadata, checksums per applied step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

from govern.migrations import checksums

BOOKKEEPING_TABLES = frozenset({"alembic_version", checksums.TABLE_NAME})


def include_object_for(metadata_tables: frozenset[str], domain: str | None) -> Any:
    """Compare only govern's tables (and, when autogenerating one domain, only that domain's)."""

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ != "table":
            return True
        if name in BOOKKEEPING_TABLES or name not in metadata_tables:
            return False
        return domain is None or obj.info.get("domain", domain) == domain

    return include_object


def _on_version_apply(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
    if step.is_stamp:
        return
    conn = ctx.connection
    script = step.up_revision
    domain = Path(script.path).parent.name
    if step.is_upgrade:
        checksums.record(conn, step.up_revision_id, domain, script.path)
    else:
        checksums.forget(conn, step.up_revision_id)
    steps = ctx.config.attributes.get("steps") if ctx.config is not None else None
    if steps is not None:
        from govern.migrations.schemas import Step

        steps.append(
            Step(
                domain=domain,
                revision=step.up_revision_id,
                direction="up" if step.is_upgrade else "down",
                message=script.doc or "",
            )
        )


def _configure(context: Any, connection: Connection | None, url: str | None) -> None:
    from govern.db import load_models

    metadata = load_models()
    domain = context.config.attributes.get("autogenerate_domain")
    opts: dict[str, Any] = {
        "target_metadata": metadata,
        "include_object": include_object_for(frozenset(metadata.tables), domain),
        "compare_type": True,
        "render_as_batch": True,
    }
    if connection is None:
        context.configure(url=url, literal_binds=True, **opts)
    else:
        context.configure(connection=connection, on_version_apply=_on_version_apply, **opts)


def _set_sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Switch SQLite's foreign keys outside SQLAlchemy's transaction (the PRAGMA is a no-op
    inside one). When the caller already holds a transaction, leave the setting alone."""
    if connection.in_transaction():
        return
    raw: Any = connection.connection
    driver = getattr(raw, "driver_connection", None) or getattr(raw, "dbapi_connection", raw)
    driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _run_online(context: Any, connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    owned = not connection.in_transaction()  # else the caller's transaction, left to it
    immediate = connection.get_execution_options().get("govern_immediate", False)
    if sqlite:
        # Batch table rebuilds drop and rename tables; keys are checked after the run instead.
        _set_sqlite_foreign_keys(connection, on=False)
        # The run reads (alembic_version) before it writes: take the write lock first, so
        # that a process committing meanwhile makes it wait rather than fail.
        connection.execution_options(govern_immediate=True)
    ok = False
    try:
        _configure(context, connection, None)
        with context.begin_transaction():
            checksums.ensure_table(connection)
            context.run_migrations()
            if sqlite:
                bad = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if bad:
                    raise RuntimeError(f"foreign key check failed after migration on {bad[0][0]}")
        ok = True
    finally:
        if sqlite:
            if owned and connection.in_transaction():
                # Alembic may have committed before the closing check, which then began a
                # transaction of its own: end it, so no lock outlives the run.
                (connection.commit if ok else connection.rollback)()
            connection.execution_options(govern_immediate=immediate)
            _set_sqlite_foreign_keys(connection, on=True)


def run(context: Any) -> None:
    """Entry point used by env.py."""
    config = context.config
    if context.is_offline_mode():
        _configure(context, None, config.get_main_option("sqlalchemy.url"))
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if isinstance(connection, Engine):  # pytest-alembic hands over an engine
        with connection.connect() as conn:
            _run_online(context, conn)
            conn.commit()
        return
    if connection is not None:
        _run_online(context, connection)
        return
    from govern.db import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run_online(context, conn)
    finally:
        engine.dispose()
