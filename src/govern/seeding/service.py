"""Loading a seed plan through the ORM, in the caller's transaction.

Rows go through the mapped classes (never raw SQL), so column types that encrypt on bind,
change tracking and the other ORM hooks apply exactly as in production. Each row is
compared field by field with what the database holds: only fields a fixture names are
written, and only when they differ, so a second run reports zero changes.

A seed never resurrects a subject that a data-subject request erased: rows of an erased
subject, and rows referencing rows left alone for that reason, are skipped and counted as
``erased`` (not changes), so erasure holds across re-seeding and re-seeding stays a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Mapper, Session

from govern.credentials.hashing import SCHEME
from govern.seeding.fixtures import Plan, PlannedTable, load_plan
from govern.seeding.schemas import SeedResult, TableCounts
from govern.types import TokenString

_CHUNK = 500


def _mapper_for(table: Table) -> Mapper[Any]:
    from govern.db import CoreBase

    for mapper in CoreBase.registry.mappers:
        if mapper.local_table is table:
            return mapper
    raise LookupError(f"no mapped class for table {table.name}")  # pragma: no cover


def _password_source(seed_password: str | None) -> tuple[str, Any]:
    from govern.credentials.hashing import hash_password, random_password

    if seed_password is not None:
        return "from GOVERN_SEED_PASSWORD", lambda: hash_password(seed_password)
    return "random (rotate service accounts to learn theirs)", lambda: hash_password(
        random_password()
    )


def _erased_subjects(session: Session, plan: Plan) -> set[Any]:
    from govern.domains.core import Subject

    planned = [v["id"] for pt in plan.tables if pt.table.name == "subjects" for _, v in pt.rows]
    erased: set[Any] = set()
    for i in range(0, len(planned), _CHUNK):
        erased.update(
            session.scalars(
                select(Subject.id).where(
                    Subject.id.in_(planned[i : i + _CHUNK]), Subject.status == "erased"
                )
            )
        )
    return erased


def _load_table(
    session: Session, pt: PlannedTable, new_password_hash: Any, skipped: dict[str, set[Any]]
) -> TableCounts:
    mapper = _mapper_for(pt.table)
    cls = mapper.class_
    pk_col = pt.table.primary_key.columns.values()[0]
    attr = {c.name: mapper.get_property_by_column(c).key for c in pt.table.columns}
    pk_attr = getattr(cls, attr[pk_col.name])
    ids = [values[pk_col.name] for _, values in pt.rows]
    existing: dict[Any, Any] = {}
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        for obj in session.scalars(select(cls).where(pk_attr.in_(chunk))):
            existing[getattr(obj, attr[pk_col.name])] = obj
    counts = TableCounts(table=pt.table.name, domain=pt.domain)
    # Tokenised columns read back as tokens, never as the value written: they are set
    # when a row is inserted and left alone afterwards (like password hashes).
    write_once = {c.name for c in pt.table.columns if isinstance(c.type, TokenString)}
    refs = [(fk.parent.name, fk.column.table.name) for fk in pt.table.foreign_keys]
    mine = skipped.setdefault(pt.table.name, set())
    for _key, values in pt.rows:
        if values[pk_col.name] in mine or any(
            values.get(col) is not None and values[col] in skipped.get(target, ())
            for col, target in refs
        ):
            mine.add(values[pk_col.name])
            counts.erased += 1
            continue
        obj = existing.get(values[pk_col.name])
        if obj is None:
            obj = cls(**{attr[k]: v for k, v in values.items()})
            if "password_hash" in pt.table.c and "password_hash" not in values:
                obj.password_hash = new_password_hash()
                obj.password_scheme = SCHEME
            session.add(obj)
            counts.inserted += 1
            continue
        changed = False
        for name, want in values.items():
            if name in write_once:
                continue
            if getattr(obj, attr[name]) != want:
                setattr(obj, attr[name], want)
                changed = True
        if changed:
            counts.updated += 1
        else:
            counts.unchanged += 1
    session.flush()
    return counts


def apply_plan(session: Session, plan: Plan, *, seed_password: str | None = None) -> SeedResult:
    """Write a :class:`Plan` in dependency order (flushed, not committed)."""
    from govern.audit import record

    label, new_hash = _password_source(seed_password)
    skipped: dict[str, set[Any]] = {"subjects": _erased_subjects(session, plan)}
    tables = [_load_table(session, pt, new_hash, skipped) for pt in plan.tables]
    if "core" in plan.domains and plan.root is not None:
        from govern.seeding.consents import seed_consents

        tables += seed_consents(session, plan.env, plan.root)
    result = SeedResult(
        env=plan.env,
        domains=list(plan.domains),
        files=plan.files,
        passwords=label,
        tables=tables,
    )
    if result.changes:
        record(
            session,
            actor="govern-seed",
            action="seed.load",
            target_type="environment",
            target_id=plan.env,
            details={
                "domains": list(plan.domains),
                "inserted": sum(t.inserted for t in tables),
                "updated": sum(t.updated for t in tables),
            },
        )
    return result


def seed(
    session: Session,
    env: str = "demo",
    domains: Sequence[str] | None = None,
    *,
    seed_password: str | None = None,
    root: Path | None = None,
) -> SeedResult:
    """Load the fixtures of ``domains`` (and the domains they need) for ``env``.

    Idempotent: ids are deterministic and unchanged rows are left alone. Raises a
    :class:`~govern.errors.SeedError` before writing anything when a fixture is broken.
    """
    plan = load_plan(env, domains, root=root)
    return apply_plan(session, plan, seed_password=seed_password)
