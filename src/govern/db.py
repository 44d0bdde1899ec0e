"""Engines, sessions, the naming convention and the declarative bases of the four domains.

All govern tables share one :class:`~sqlalchemy.MetaData` (so foreign keys resolve
across domains) and each carries its domain in ``Table.info["domain"]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from govern.errors import DatabaseError

DOMAINS: tuple[str, ...] = ("core", "commerce", "analytics", "community")
"""The shipped domains, in dependency order (core first)."""

DOMAIN_DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "core": (),
    "commerce": ("core",),
    "analytics": ("core",),
    "community": ("core",),
}

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _DomainBase(DeclarativeBase):
    """Common base: one metadata, domain recorded on every table."""

    __abstract__ = True
    metadata = metadata
    domain: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = cls.__dict__.get("__table__")
        if table is not None:
            table.info.setdefault("domain", cls.domain)


class CoreBase(_DomainBase):
    __abstract__ = True
    domain = "core"


class CommerceBase(_DomainBase):
    __abstract__ = True
    domain = "commerce"


class AnalyticsBase(_DomainBase):
    __abstract__ = True
    domain = "analytics"


class CommunityBase(_DomainBase):
    __abstract__ = True
    domain = "community"


MODEL_MODULES: tuple[str, ...] = (
    "govern.domains",
    "govern.holds.models",
    "govern.events.models",
    "govern.keys.models",
    "govern.consent.models",
    "govern.dsr.models",
    "govern.retention.models",
)
"""Modules whose import registers govern's tables: the domains, then each capability's models."""


def load_models() -> MetaData:
    """Import every model module so that :data:`metadata` is complete, and return it."""
    import importlib

    for name in MODEL_MODULES:
        importlib.import_module(name)
    return metadata


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide where transactions begin, so that DDL and
    # PRAGMA-sensitive work are transactional (the SQLAlchemy pysqlite recipe).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # write_transaction asks for IMMEDIATE: the write lock is taken up front, so concurrent
    # writers queue on busy_timeout instead of failing to upgrade a read snapshot.
    immediate = conn.get_execution_options().get("govern_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with govern's connection settings (SQLite pragmas, pool checks)."""
    from sqlalchemy import create_engine as sa_create_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa_create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa_create_engine(parsed, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose sessions do not expire objects on commit."""
    return sessionmaker(engine, expire_on_commit=False)


def describe_db_error(url: str, exc: BaseException) -> DatabaseError:
    """A :class:`DatabaseError` naming the database (password hidden) and the driver's reason.

    ``exc`` is SQLAlchemy's wrapper or the driver's own exception (hot paths that run on the
    raw driver connection raise those unwrapped).
    """
    shown = make_url(url).render_as_string(hide_password=True)
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    reason = str(orig).strip().splitlines()[0] if orig is not None else type(exc).__name__
    if _missing_table(orig):
        reason += " (is it migrated? `govern migrate up`)"
    if isinstance(exc, OperationalError) or type(orig).__name__ == "OperationalError":
        return DatabaseError(f"cannot use database {shown}: {reason}")
    return DatabaseError(f"database {shown} refused the operation: {reason}")


def is_driver_error(engine: Engine, exc: BaseException) -> bool:
    """Whether ``exc`` comes from the database: SQLAlchemy's wrapper or the raw driver's."""
    return isinstance(exc, (DBAPIError, engine.dialect.loaded_dbapi.Error))


def _missing_table(orig: BaseException | None) -> bool:
    """Whether the driver says a table is missing (SQLite's message, PostgreSQL's 42P01)."""
    if getattr(orig, "sqlstate", None) == "42P01":
        return True
    return str(orig).startswith("no such table")


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on any error.

    The CLI and host scripts use this; service functions never commit themselves.
    """
    with session_factory(engine)() as session, session.begin():
        yield session


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Session]:
    """Like :func:`transaction`, for work that reads before it writes (consent appends, the
    commands that change the database).

    On SQLite the transaction starts with ``BEGIN IMMEDIATE`` (the write lock first, so a
    concurrent writer waits rather than failing); PostgreSQL needs nothing more, since the
    writers lock the rows they change.
    """
    with (
        write_bind(engine) as conn,
        Session(bind=conn, expire_on_commit=False) as session,
        session.begin(),  # the session begins and commits, so pending changes are flushed
    ):
        yield session


@contextlib.contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """Like ``engine.begin()``, for Core work that reads before it writes.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE``: a deferred transaction that
    has read fails at its first write, at once and whatever the busy timeout, when another
    connection committed in between (its snapshot is stale). PostgreSQL needs nothing more.
    """
    with write_bind(engine) as conn, conn.begin():
        yield conn


@contextlib.contextmanager
def write_bind(engine: Engine) -> Iterator[Connection]:
    """A connection, not yet in a transaction, whose transactions begin ``BEGIN IMMEDIATE``
    on SQLite (on PostgreSQL it changes nothing): bind a Session to it, or begin on it."""
    with engine.connect() as conn:
        yield conn.execution_options(govern_immediate=True)


def check_connection(engine: Engine) -> None:
    """Raise :class:`DatabaseError` unless a connection can be opened."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        raise describe_db_error(engine.url.render_as_string(hide_password=False), exc) from None
