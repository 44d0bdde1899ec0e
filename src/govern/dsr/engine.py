"""Plans and their execution: which rows of which tables a request reads or changes.

A plan is a list of steps, one per table (plus a final ``package`` step for access and
portability, and one ``manual`` step per registered manual location the request covers).
:func:`build_plan` computes it without changing anything; the worker stores it and runs it
in plan order, each step with its own checkpoint (see :mod:`govern.dsr.workers` for how
steps are cut into transactions).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import functools
import hashlib
import hmac
import io
import json
import re
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from sqlalchemy import (
    ColumnElement,
    Delete,
    MetaData,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from govern import events
from govern.datamap.actions import (
    PSEUDONYM,
    TableActions,
    actions_for,
    actions_version,
    manual_locations,
)
from govern.errors import RectificationError

STAGING = ".staging"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class PlannedStep:
    table: str | None
    action: str
    columns: list[str]
    rows: int
    exception: str | None = None


@dataclass
class Plan:
    steps: list[PlannedStep] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    subject_ref: str | None = None
    """The subject's pseudonymous reference the plan counted with (see subject_ref)."""


def linked_tables(metadata: MetaData) -> list[tuple[Table, TableActions]]:
    """Tables that link to subjects and have DSR actions, parents before children."""
    return list(_linked(metadata, tuple(metadata.tables), actions_version()))


@functools.lru_cache(maxsize=8)
def _linked(
    metadata: MetaData, names: tuple[str, ...], version: int
) -> tuple[tuple[Table, TableActions], ...]:
    # MetaData.sorted_tables sorts the whole graph on every access; keyed by the table names
    # (a table added later gives a new order) and the registry's version (new actions)
    out = []
    for t in metadata.sorted_tables:
        a = actions_for(t.name)
        if a is not None and t.info.get("subject_link"):
            out.append((t, a))
    return tuple(out)


def _is_reference(col: Any) -> bool:
    """A pseudonymous text reference (the consent ledger's ``subject_ref``), not a subject id."""
    try:
        return bool(col.type.python_type is str)
    except NotImplementedError:
        return False


def subject_filter(table: Table, subject_id: Any, ref: Any = None) -> ColumnElement[bool]:
    """The WHERE clause selecting ``table``'s rows of one subject, following its subject_link.

    Tables keyed by a pseudonymous reference match ``ref``: the subject's ``external_ref``.
    """
    link = str(table.info["subject_link"])
    if "->" not in link:
        if _is_reference(table.c[link]):
            return table.c[link] == ref if ref is not None else false()
        return table.c[link] == subject_id  # type: ignore[no-any-return]
    local, target = (p.strip() for p in link.split("->", 1))
    target_table, target_col = target.split(".", 1)
    parent = table.metadata.tables[target_table]
    fk = next(f for f in table.c[local].foreign_keys if f.column.table is parent)
    return table.c[local].in_(
        select(fk.column).where(subject_filter_column(parent, target_col, subject_id, ref))
    )


def subject_filter_column(
    table: Table, column: str, subject_id: Any, ref: Any = None
) -> ColumnElement[bool]:
    if column == str(table.info.get("subject_link")):
        return subject_filter(table, subject_id, ref)
    return table.c[column] == subject_id  # type: ignore[no-any-return]


def subject_ref(session: Session, subject_id: uuid.UUID) -> str | None:
    """The subject's pseudonymous reference in other ledgers: its (decrypted) external_ref."""
    from govern.domains.core import Subject

    return session.execute(_ref_stmt(Subject), {"sid": subject_id}).scalar()


@functools.cache
def _ref_stmt(subject: Any) -> Select[tuple[str | None]]:
    # only the one column: loading the whole row would decrypt every sealed column
    return select(subject.external_ref).where(subject.id == bindparam("sid"))


SID = "dsr_sid"
"""Name of the bind parameter carrying the subject id in the cached statements below."""
REF = "dsr_ref"
"""... and the one carrying the subject's pseudonymous reference."""


@functools.cache
def _count_stmt(tables: tuple[Table, ...]) -> Select[Any]:
    # built once per table set: reusing the statement object skips SQLAlchemy's cache-key
    # generation, which dominates the cost of small per-subject statements
    return select(
        *(
            select(func.count())
            .select_from(t)
            .where(subject_filter(t, bindparam(SID), bindparam(REF)))
            .scalar_subquery()
            for t in tables
        )
    )


@functools.cache
def _keys_stmt(table: Table) -> Select[Any]:
    # one object per table, so that events.emit_tombstones reuses its statement too
    return select(*table.primary_key.columns).where(
        subject_filter(table, bindparam(SID), bindparam(REF))
    )


@functools.cache
def _delete_stmt(table: Table) -> Delete:
    return delete(table).where(subject_filter(table, bindparam(SID), bindparam(REF)))


@functools.cache
def _update_stmt(table: Table, columns: tuple[str, ...]) -> Update:
    values = {c: bindparam(f"dsr_v_{c}", type_=table.c[c].type) for c in columns}
    where = subject_filter(table, bindparam(SID), bindparam(REF))
    return update(table).where(where).values(values)


def _core_values(table: Table, values: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The SET values of a Core UPDATE that writes what an ORM flush of ``values`` would,
    and whether only a flush can write them: a token to mint in the vault, or a value to
    seal under the subject's own key.

    Sealed columns are sealed by their type's bind; a blind-index twin whose source column
    changes gets the source's value, which the twin's type turns into the digest (None
    stays None), exactly as the flush hook computes it.
    """
    from govern.types.shredded import _Shredded
    from govern.types.token import TokenString

    out = dict(values)
    for source, twin in _twins(table):
        if source in values:
            out[twin] = values[source]
    flush = any(
        v is not None and isinstance(table.c[c].type, _Shredded | TokenString)
        for c, v in values.items()
    )
    return out, flush


@functools.cache
def _mapper_behaviour(cls: type) -> bool:
    """Whether updates of ``cls`` rely on the ORM: a version counter, ``@validates``, or
    update listeners on its mapper (a host's table may have them; govern's have none)."""
    from sqlalchemy import inspect

    mapper: Any = inspect(cls)
    d = mapper.dispatch
    return bool(
        mapper.version_id_col is not None or mapper.validators or d.before_update or d.after_update
    )


def _update(
    session: Session,
    table: Table,
    subject_id: uuid.UUID,
    values: Mapping[str, Any],
    ref: str | None = None,
) -> int:
    """Redact or rectify the subject's rows of ``table``: one Core UPDATE, or through the
    ORM when a value needs a flush or the mapped class relies on ORM update behaviour."""
    core, flush = _core_values(table, values)
    mapped = _mapped_class(table)
    if mapped is not None and (flush or _mapper_behaviour(mapped)):
        return _orm_update(session, table, subject_id, values, ref)
    cols = tuple(sorted(core))
    params = {SID: subject_id, REF: ref, **{f"dsr_v_{c}": core[c] for c in cols}}
    return int(session.connection().execute(_update_stmt(table, cols), params).rowcount)


def count_many(
    session: Session, tables: list[Table], subject_id: uuid.UUID, ref: str | None = None
) -> dict[str, int]:
    """Row counts of one subject in many tables, in one round trip."""
    if not tables:
        return {}
    params = {SID: subject_id, REF: ref}
    row = session.connection().execute(_count_stmt(tuple(tables)), params).one()
    return {t.name: int(n or 0) for t, n in zip(tables, row, strict=True)}


def count_rows(
    session: Session, table: Table, subject_id: uuid.UUID, ref: str | None = None
) -> int:
    return count_many(session, [table], subject_id, ref)[table.name]


def validate_corrections(metadata: MetaData, corrections: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``{"table.column": value}`` corrections; raise :class:`RectificationError`.

    Messages name the column, never the value.
    """
    if not corrections:
        raise RectificationError("a rectification request needs at least one correction")
    clean: dict[str, Any] = {}
    for key, value in corrections.items():
        table_name, _, col_name = key.partition(".")
        actions = actions_for(table_name)
        table = metadata.tables.get(table_name)
        if table is None or actions is None or col_name not in actions.rectifiable:
            raise RectificationError(f"{key} is not a rectifiable column")
        col = table.c[col_name]
        if value is None:
            if not col.nullable:
                raise RectificationError(f"{key} cannot be empty")
            clean[key] = None
            continue
        kind = _python_type(col)
        if kind is dt.date:
            try:
                clean[key] = dt.date.fromisoformat(str(value)).isoformat()
            except ValueError:
                raise RectificationError(f"{key} must be an ISO date (YYYY-MM-DD)") from None
            continue
        if kind in (dict, list):
            if not isinstance(value, dict | list):
                raise RectificationError(f"{key} must be a JSON object or list")
            clean[key] = value
            continue
        if kind is str:
            if not isinstance(value, str) or not value.strip():
                raise RectificationError(f"{key} must be a non-empty text")
            length = getattr(col.type, "length", None)
            if length is not None and len(value) > length:
                raise RectificationError(f"{key} is longer than {length} characters")
            cats = col.info.get("categories", [])
            if "user.contact.email" in cats and not _EMAIL.match(value):
                raise RectificationError(f"{key} is not an email address")
            if "user.contact.address.country" in cats and not re.fullmatch(r"[A-Z]{2}", value):
                raise RectificationError(f"{key} must be an ISO 3166 alpha-2 code")
            clean[key] = value
            continue
        raise RectificationError(f"{key} has a type that cannot be rectified here")
    return clean


def build_plan(
    session: Session,
    metadata: MetaData,
    *,
    type: str,
    subject_id: uuid.UUID | None,
    corrections: Mapping[str, Any],
    held: bool,
) -> Plan:
    """The steps a request of ``type`` takes for ``subject_id``; reads counts, changes nothing."""
    plan = Plan()
    if subject_id is None:
        return plan
    tables = linked_tables(metadata)
    ref = plan.subject_ref = subject_ref(session, subject_id)
    counted = [t for t, a in tables if _in_plan(type, t, a, corrections)]
    counts = count_many(session, counted, subject_id, ref)
    if type in ("access", "portability"):
        for t, a in tables:
            if not _in_plan(type, t, a, corrections):
                continue
            plan.steps.append(
                PlannedStep(t.name, "read", [c.name for c in exported_columns(t)], counts[t.name])
            )
        plan.steps.extend(_manual_steps(type, held=False))
        plan.steps.append(PlannedStep(None, "package", [], 0))
    elif type == "erasure":
        # first: consents are keyed by the external_ref that a later step pseudonymises
        given = len(_given_purposes(session, ref))
        if "consent_state" in metadata.tables:
            plan.steps.append(
                PlannedStep("consent_state", "keep" if held else "withdraw", [], given)
            )
        shred: list[PlannedStep] = []
        for t, a in reversed(tables):
            n = counts[t.name]
            if a.erasure == "shred":
                # last: no later step may seal a value under a key about to be destroyed
                shred.append(PlannedStep(t.name, "keep" if held else "shred", [], n))
                if held:
                    shred[-1].exception = "Art. 17(3)(e): subject under a legal hold"
                continue
            if held and a.erasure != "keep":
                plan.steps.append(
                    PlannedStep(t.name, "keep", [], n, "Art. 17(3)(e): subject under a legal hold")
                )
            elif a.erasure == "delete":
                plan.steps.append(PlannedStep(t.name, "delete", [], n))
            elif a.erasure == "redact":
                plan.steps.append(PlannedStep(t.name, "redact", list(a.redact), n))
            elif a.exception is not None:
                action = "restrict" if a.exception.restrict else "keep"
                plan.steps.append(
                    PlannedStep(
                        t.name, action, [], n, f"{a.exception.article}: {a.exception.reason}"
                    )
                )
            else:
                plan.steps.append(PlannedStep(t.name, "keep", [], n))
        plan.steps.extend(_manual_steps(type, held=held))
        plan.steps.extend(shred)
        if held:
            plan.exceptions.append("Art. 17(3)(e): subject under a legal hold; nothing erased")
    elif type == "rectification":
        by_table: dict[str, list[str]] = {}
        for key in corrections:
            tname, _, col = key.partition(".")
            by_table.setdefault(tname, []).append(col)
        for t, _a in tables:
            if t.name in by_table:
                plan.steps.append(PlannedStep(t.name, "rectify", by_table[t.name], counts[t.name]))
    elif type in ("restriction", "objection"):
        if type == "objection" and "consent_state" in metadata.tables:
            scope = objected_purposes(corrections)
            objected = _given_purposes(session, ref, scope)
            shown = sorted(scope) if scope is not None else objected
            plan.steps.append(PlannedStep("consent_state", "withdraw", shown, len(objected)))
        for t, a in tables:
            if _in_plan(type, t, a, corrections):
                plan.steps.append(PlannedStep(t.name, "restrict", [], counts[t.name]))
    if type in ("rectification", "restriction", "objection"):
        plan.steps.extend(_manual_steps(type, held=False))
    for s in plan.steps:
        if s.exception and s.rows and s.exception not in plan.exceptions:
            plan.exceptions.append(s.exception)
    return plan


def _in_plan(type: str, table: Table, a: TableActions, corrections: Mapping[str, Any]) -> bool:
    """Whether a plan of ``type`` has a step on ``table`` (whose rows it counts)."""
    if type == "erasure":
        return True
    if type in ("access", "portability"):
        return a.access and (type == "access" or a.portable)
    if type == "rectification":
        return any(key.partition(".")[0] == table.name for key in corrections)
    if type == "objection":
        return a.restrictable and table.info.get("domain") == "analytics"
    return a.restrictable  # restriction


MANUAL = "manual"
"""The action of a step an operator does by hand; its ``table`` is a manual location's name."""

_HELD = "Art. 17(3)(e): subject under a legal hold"


def _manual_steps(type: str, *, held: bool) -> list[PlannedStep]:
    """One step per manual location covering ``type``, after the automated steps.

    Erasure puts them before the final ``shred`` (destroying the subject's key stays the
    last step) and, under a legal hold, keeps them instead (nothing is erased by hand either).
    """
    if held:
        return [PlannedStep(m.name, "keep", [], 0, _HELD) for m in manual_locations(type)]
    return [PlannedStep(m.name, MANUAL, [], 0) for m in manual_locations(type)]


EMPTY_WHEN_NO_ROWS = frozenset({"delete", "redact", "rectify", "withdraw"})
"""Actions that change nothing when the subject has no row (no given consent) to act on.

Not ``restrict`` (it writes a restriction row whatever the count), ``shred`` (it destroys
keys the plan does not count), ``read`` (the package lists every table), ``package`` or
``manual`` (done by an operator outside the database; the worker stops there).
"""


def empty_when_planned(action: str, planned_rows: int) -> bool:
    """Whether the plan proved that a step has nothing to change when it was counted.

    Such a step still runs (a row written since is still acted on); the worker only lets
    consecutive ones share one transaction (see docs/dsr.md, "Execution").
    """
    return planned_rows == 0 and action in EMPTY_WHEN_NO_ROWS


def pseudonym(subject_id: uuid.UUID, request_id: uuid.UUID) -> str:
    """A stable, non-reversible replacement for an identifier of an erased subject."""
    digest = hmac.new(request_id.bytes, subject_id.bytes, hashlib.sha256).hexdigest()
    return f"erased:{digest[:32]}"


@dataclass
class StepContext:
    """What a step needs besides the session: whose data, and where packages go."""

    request_id: uuid.UUID
    type: str
    subject_id: uuid.UUID
    corrections: Mapping[str, Any]
    export_dir: Path
    metadata: MetaData
    subject_ref: str | None = None
    staged: int = 0
    """Where the steps run so far end in the request's staging file (see write_table)."""
    notices: list[dict[str, Any]] | None = None
    """When a list, the steps' Art. 19 events wait here, in step order, for the caller to
    write (the worker's :class:`~govern.dsr.service.RequestLog`)."""
    stage: Stage | None = None
    """The rows staged while the worker runs the request (see :func:`write_table`)."""
    package: tuple[str, str, int] | None = None
    """Path, SHA-256 and rows of the package the ``package`` step wrote in this run."""

    def persist_stage(self) -> None:
        """Put what the steps staged in the staging file and hand it to the OS: before a
        transaction commits whose ``read`` steps a later transaction packages."""
        if self.stage is not None:
            self.stage.persist()

    def close_stage(self) -> None:
        if self.stage is not None:
            self.stage.close()
            self.stage = None


STAGE_IN_MEMORY = 4 << 20
"""A request's staged rows stay in memory up to this size (4 MiB), then go to its file."""


class Stage:
    """The rows a request's ``read`` steps staged: the committed steps' rows (in the staging
    file) followed by this run's.

    This run's rows stay in memory while they are small and only this transaction needs them:
    an access request of an ordinary subject is read, packaged and completed in one
    transaction, so its rows never touch the disk (creating a file is among the slowest
    things a request does). They go to the file when they outgrow :data:`STAGE_IN_MEMORY`
    or when :meth:`persist` is called, before a commit of reads packaged later.
    """

    def __init__(self, path: Path, committed: int) -> None:
        self.path = path
        self.end = committed
        """Where the staged rows end."""
        self._disk = committed  # the committed steps' rows end here in the file
        self._mem = io.BytesIO()  # this run's rows after _disk, until the file is opened
        self._file: BinaryIO | None = None

    def write(self, data: bytes) -> None:
        if self._file is None:
            self._mem.write(data)
            if self._mem.tell() > STAGE_IN_MEMORY:
                self.persist()
        else:
            self._file.write(data)
        self.end += len(data)

    def persist(self) -> None:
        """Write the rows held in memory to the staging file and flush it."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = self.path.open("r+b" if self.path.exists() else "w+b")
            f.truncate(self._disk)  # what a transaction that did not commit appended
            f.seek(self._disk)
            f.write(self._mem.getbuffer())
            self._mem = io.BytesIO()
            self._file = f
        self._file.flush()

    def reader(self) -> BinaryIO:
        """The staged rows, to read: from memory when none are in the file."""
        if self._file is None and self._disk == 0:
            return io.BytesIO(self._mem.getbuffer())
        self.persist()
        return self.path.open("rb")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def run_step(session: Session, ctx: StepContext, table_name: str | None, action: str) -> int:
    """Execute one step in the caller's transaction; returns the rows read or changed."""
    from govern.dsr.models import DsrExport

    if action == MANUAL:
        # done by an operator and confirmed (govern.dsr.confirm_manual_step), never run here
        raise ValueError(f"step on {table_name!r} is manual: an operator confirms it")
    if action == "package":
        return write_package(session, ctx, cast(Table, DsrExport.__table__))
    table = ctx.metadata.tables[str(table_name)]
    if action == "read":
        return write_table(session, ctx, table)
    if action == "delete":
        # Art. 19: tell recipients (keys only) before the rows go, in the same transaction
        params = {SID: ctx.subject_id, REF: ctx.subject_ref}
        events.emit_tombstones(session, table, _keys_stmt(table), cause="erasure", params=params)
        res = session.connection().execute(_delete_stmt(table), params)
        return int(res.rowcount)
    if action == "redact":
        a = actions_for(table.name)
        assert a is not None
        values = {
            c: (pseudonym(ctx.subject_id, ctx.request_id) if v == PSEUDONYM else v)
            for c, v in a.redact.items()
        }
        n = _update(session, table, ctx.subject_id, values, ctx.subject_ref)
        _notify(session, ctx, "govern.dsr.erased", table.name, action, list(a.redact), n)
        return n
    if action == "rectify":
        values = {
            key.partition(".")[2]: _coerce(table, key.partition(".")[2], v)
            for key, v in ctx.corrections.items()
            if key.partition(".")[0] == table.name
        }
        n = _update(session, table, ctx.subject_id, values, ctx.subject_ref)
        _notify(session, ctx, "govern.dsr.rectified", table.name, action, sorted(values), n)
        return n
    if action == "restrict":
        return restrict_tables(session, ctx, [table.name])[0]
    if action == "withdraw":
        return withdraw_consents(session, ctx)
    if action == "shred":
        from govern import keys

        done = keys.shred_subject(session, ctx.subject_id, actor="dsr", reason="erasure")
        n = 0 if done is None else 1
        if ctx.subject_ref:
            # The consent ledger seals IPs and user agents under its chain's key owner, which
            # is this subject only when the host passed subject_id when recording consent.
            from govern import consent

            if (
                consent.shred_subject(session, str(ctx.subject_ref), actor="dsr", reason="erasure")
                is not None
            ):
                n += 1
        _notify(session, ctx, "govern.dsr.erased", table.name, action, [], n)
        return n
    if action == "keep":
        return 0
    raise ValueError(f"unknown step action {action!r}")


def restrict_tables(session: Session, ctx: StepContext, names: Sequence[str]) -> list[int]:
    """Run the ``restrict`` steps of several tables at once: one INSERT of their restriction
    rows, one count of the subject's rows in them, one Art. 19 event each (as running the
    steps one by one would). Returns the row counts, in the order of ``names``."""
    from govern.dsr.models import Restriction

    bases = []
    for name in names:
        basis = "objection" if ctx.type == "objection" else "restriction"
        if ctx.type == "erasure":
            a = actions_for(name)
            basis = a.exception.article if a is not None and a.exception else "restriction"
        bases.append(basis)
    rows = [
        {"subject_id": ctx.subject_id, "table_name": n, "basis": b, "request_id": ctx.request_id}
        for n, b in zip(names, bases, strict=True)
    ]
    session.connection().execute(_restriction_stmt(Restriction), rows)
    tables = [ctx.metadata.tables[n] for n in names]
    counts = count_many(session, tables, ctx.subject_id, ctx.subject_ref)
    for name, basis in zip(names, bases, strict=True):
        n = counts[name]
        _notify(session, ctx, "govern.dsr.restricted", name, "restrict", [], n, basis=basis)
    return [counts[n] for n in names]


@functools.cache
def _restriction_stmt(model: Any) -> Any:
    # built once; its ``created_at`` default is filled in by the Core INSERT
    return insert(model)


def objected_purposes(params: Mapping[str, Any]) -> frozenset[str] | None:
    """The purposes an objection names, or ``None`` for an objection to every purpose."""
    chosen = params.get("purposes")
    return frozenset(chosen) if chosen else None


def _given_purposes(
    session: Session, ref: str | None, only: frozenset[str] | None = None
) -> list[str]:
    from govern.consent.models import ConsentState, Purpose

    if ref is None:
        return []
    given = session.scalars(_given_stmt(Purpose, ConsentState), {"ref": ref})
    return [key for key in given if only is None or key in only]


@functools.cache
def _given_stmt(purpose: Any, state: Any) -> Select[tuple[str]]:
    return (
        select(purpose.key)
        .join(state, state.purpose_id == purpose.id)
        .where(state.subject_ref == bindparam("ref"), state.status == "given")
        .order_by(purpose.key)
    )


def withdraw_consents(session: Session, ctx: StepContext) -> int:
    """Objection (Art. 21) and erasure: append a withdrawal for every consent still given.

    An objection that names purposes withdraws only those; erasure withdraws every one.
    """
    from govern import consent

    scope = objected_purposes(ctx.corrections) if ctx.type == "objection" else None
    purposes = _given_purposes(session, ctx.subject_ref, scope)
    for key in purposes:
        consent.withdraw(session, str(ctx.subject_ref), key)
    return len(purposes)


def _notify(
    session: Session,
    ctx: StepContext,
    type: str,
    table: str,
    action: str,
    columns: list[str],
    rows: int,
    **extra: str,
) -> None:
    """An Art. 19 event for recipients of the data: keys, table and column names only.

    Emitted at once, or collected in ``ctx.notices`` when the caller (the worker) writes a
    transaction's events together before it commits.
    """
    event: dict[str, Any] = {
        "type": type,
        "aggregate_type": "subject",
        "aggregate_id": ctx.subject_id,
        "subject": str(ctx.subject_id),
        "data": {
            "request_id": str(ctx.request_id),
            "subject_id": str(ctx.subject_id),
            "table": table,
            "action": action,
            "columns": columns,
            "rows": rows,
            **extra,
        },
    }
    if ctx.notices is not None:
        ctx.notices.append(event)
    else:
        events.emit(session, **event)


def _python_type(col: Any) -> type | None:
    try:
        return col.type.python_type  # type: ignore[no-any-return]
    except NotImplementedError:
        return None


def _coerce(table: Table, col: str, value: Any) -> Any:
    if value is not None and _python_type(table.c[col]) is dt.date:
        return dt.date.fromisoformat(str(value))
    return value


_MAPPED: dict[Table, Any] = {}


def _mapped_class(table: Table) -> Any:
    """The ORM class mapped to ``table``, if any (needed where flush fills derived columns)."""
    from govern.db import CoreBase

    found = _MAPPED.get(table)
    if found is None:
        for mapper in CoreBase.registry.mappers:
            if mapper.local_table is table:
                found = _MAPPED[table] = mapper.class_  # a mapping never changes; remembered
                break
    return found


@functools.cache
def _twins(table: Table) -> tuple[tuple[str, str], ...]:
    """(source column, blind-index twin column) pairs of ``table``."""
    from govern.types.blind_index import BlindIndex

    return tuple((c.type.source, c.name) for c in table.columns if isinstance(c.type, BlindIndex))


@functools.cache
def _orm_select(table: Table) -> Select[Any]:
    where = subject_filter(table, bindparam(SID), bindparam(REF))
    return select(_mapped_class(table)).where(where)


def _orm_update(
    session: Session,
    table: Table,
    subject_id: uuid.UUID,
    values: Mapping[str, Any],
    ref: str | None = None,
) -> int:
    """Update through the ORM, so that blind-index twins are recomputed (or cleared) at flush."""
    rows = session.scalars(_orm_select(table), {SID: subject_id, REF: ref}).all()
    for row in rows:
        for col, value in values.items():
            setattr(row, col, value)
    session.flush()
    return len(rows)


def exported_columns(table: Table) -> list[Any]:
    """The columns a package carries: all but blind-index twins (keyed hashes, not data)."""
    return list(_exported(table))


@functools.cache
def _exported(table: Table) -> tuple[Any, ...]:
    from govern.types.blind_index import BlindIndex

    return tuple(c for c in table.columns if not isinstance(c.type, BlindIndex))


def _json_default(value: Any) -> Any:
    """A column value JSON has no type for, as the package shows it; the C encoder writes
    text, numbers, booleans, null, objects and arrays itself (no Python call per value)."""
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # e.g. a Shredded marker: its key was destroyed


_ROW_JSON = json.JSONEncoder(default=_json_default)


def staging_file(export_dir: Path, request_id: uuid.UUID) -> Path:
    """The request's staging file: every ``read`` step appends its table's rows to it."""
    return export_dir / STAGING / f"{request_id}.jsonl"


@functools.cache
def _read_stmt(table: Table) -> Select[Any]:
    pk = list(table.primary_key.columns)
    where = subject_filter(table, bindparam(SID), bindparam(REF))
    stmt = select(*exported_columns(table)).where(where).order_by(*pk)
    return stmt.execution_options(yield_per=2000)


def _stage(ctx: StepContext) -> Stage:
    """The request's staged rows in this run (the committed steps' ones are in the file)."""
    if ctx.stage is None:
        ctx.stage = Stage(staging_file(ctx.export_dir, ctx.request_id), ctx.staged)
    return ctx.stage


def write_table(session: Session, ctx: StepContext, table: Table) -> int:
    """Append one table's rows of the subject to the request's staged rows.

    The step starts at ``ctx.staged``, where the steps already run end, and leaves
    ``ctx.staged`` at its own end, which its checkpoint records. The block is a header line
    (table and columns) and one line per row: the row as the package's JSON file carries
    it. Rows come through a server-side cursor in batches and the staged rows go to a file
    once they are large (:class:`Stage`), so memory stays flat however many rows the
    subject has. The file is one per request, kept open while the worker runs it: file
    creation (slow on many file systems) is not a per-table cost.
    """
    names = [c.name for c in exported_columns(table)]
    conn = session.connection()
    result = conn.execute(_read_stmt(table), {SID: ctx.subject_id, REF: ctx.subject_ref})
    n = 0
    encode = _ROW_JSON.encode
    stage = _stage(ctx)
    lines = [encode({"table": table.name, "columns": names})]
    for row in result:
        lines.append(encode(dict(zip(names, row, strict=True))))
        n += 1
        if len(lines) >= 1000:
            stage.write(("\n".join(lines) + "\n").encode())
            lines.clear()
    if lines:
        stage.write(("\n".join(lines) + "\n").encode())
    ctx.staged = stage.end
    return n  # the step's checkpoint keeps the count (and ctx.staged) for the package


def staged_offset(session: Session, export_dir: Path, request_id: uuid.UUID) -> int | None:
    """Where the committed ``read`` steps of a request end in its staging file.

    When their rows are not all there (the file is gone or shorter: another worker with its
    own export folder, a cleaned folder, or steps staged before ``dsr_steps.staged_to``
    existed), those steps are set back to ``pending``, in the caller's transaction, to read
    again (they change nothing but the staging file), and None is returned.
    """
    from govern.dsr.models import DsrStep

    conn = session.connection()
    done, with_end, end = conn.execute(_staged_stmt(DsrStep), {"rid": request_id}).one()
    if not done:
        return 0
    path = staging_file(export_dir, request_id)
    size = path.stat().st_size if path.exists() else -1
    if with_end == done and size >= int(end):
        return int(end)
    conn.execute(_restage_stmt(DsrStep), {"rid": request_id})
    return None


@functools.cache
def _staged_stmt(step: Any) -> Select[tuple[int, int, int | None]]:
    return select(func.count(), func.count(step.staged_to), func.max(step.staged_to)).where(
        step.request_id == bindparam("rid"), step.action == "read", step.status == "done"
    )


@functools.cache
def _restage_stmt(step: Any) -> Any:
    return (
        update(step)
        .where(step.request_id == bindparam("rid"), step.action == "read", step.status == "done")
        .values(status="pending", rows_affected=None, done_at=None, done_by=None, staged_to=None)
    )


@functools.cache
def _blocks_stmt(step: Any) -> Select[tuple[str | None, int | None, int | None]]:
    return (
        select(step.table_name, step.rows_affected, step.staged_to)
        .where(step.request_id == bindparam("rid"), step.action == "read")
        .order_by(step.seq)
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


STORE_BELOW = 4096
"""Package files smaller than this (4 KiB) are stored, larger ones deflated."""
ZIP_DEFLATED = zipfile.ZIP_DEFLATED
SMALL_BLOCK = 1 << 18
"""A table's staged rows up to this size (256 KiB) are zipped from memory, larger ones
streamed (memory stays bounded either way)."""


class _Member:
    """A zip member being written: hashes and counts the bytes it is given.

    ``whole``: the bytes are collected and zipped in one piece on close (small members:
    no streaming header to rewrite); otherwise they stream into the archive as they come.
    """

    def __init__(self, zf: zipfile.ZipFile, name: str, *, whole: bool = False) -> None:
        self.name = name
        self._zf = zf
        self._parts: list[bytes] | None = [] if whole else None
        self._dst = None if whole else zf.open(name, "w", force_zip64=True)
        self._h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._h.update(data)
        if self._parts is not None:
            self._parts.append(data)
        else:
            assert self._dst is not None
            self._dst.write(data)
        self.size += len(data)

    def close(self) -> dict[str, Any]:
        if self._parts is not None:
            info = zipfile.ZipInfo(self.name, date_time=time.localtime()[:6])
            # deflating a tiny file costs more (a compressor's set-up) than it saves
            info.compress_type = zipfile.ZIP_STORED if self.size < STORE_BELOW else ZIP_DEFLATED
            self._zf.writestr(info, b"".join(self._parts))
        else:
            assert self._dst is not None
            self._dst.close()
        return {"name": self.name, "sha256": self._h.hexdigest(), "bytes": self.size}


def _block_lines(f: Any, start: int, end: int) -> Iterator[bytes]:
    """The row lines (newline stripped) of the block at [start, end), header skipped."""
    f.seek(start)
    pos = start + len(f.readline())
    while pos < end:
        line = f.readline()
        pos += len(line)
        yield line.rstrip(b"\n")


def _write_json(member: _Member, lines: Iterator[bytes]) -> None:
    member.write(b"[")
    chunk: list[bytes] = []
    first = True
    for line in lines:
        chunk.append(b"\n" + line if first else b",\n" + line)
        first = False
        if len(chunk) >= 1000:
            member.write(b"".join(chunk))
            chunk.clear()
    chunk.append(b"\n]\n")
    member.write(b"".join(chunk))


def _write_csv(member: _Member, names: list[str], lines: Iterator[bytes]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(names)
    loads = json.loads
    for i, line in enumerate(lines, 1):
        obj = loads(line)
        writer.writerow(
            [
                json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else v)
                for v in (obj[k] for k in names)
            ]
        )
        if i % 1000 == 0:
            member.write(buf.getvalue().encode())
            buf.seek(0)
            buf.truncate()
    member.write(buf.getvalue().encode())


ZIP_IN_MEMORY = 1 << 20
"""A package of up to this many staged bytes (1 MiB) is built in memory and written in one
piece; a larger one is written to its file as it is built."""


def write_package(session: Session, ctx: StepContext, export_table: Table) -> int:
    """Zip the staged tables (JSON and CSV each) with a manifest of checksums; record it.

    The checkpoints of the request's ``read`` steps (committed before this step runs, or
    earlier in its transaction) give each table's row count and where its rows end in the
    staged rows; members are hashed while they are zipped, in name order.
    """
    from govern.dsr.models import DsrStep

    blocks: dict[str, tuple[int, int, int]] = {}
    start = 0
    rid = {"rid": ctx.request_id}
    for name, n, end in session.connection().execute(_blocks_stmt(DsrStep), rid):
        blocks[str(name)] = (start, int(end), int(n or 0))
        start = int(end)
    final = ctx.export_dir / f"{ctx.request_id}.zip"
    in_memory = start <= ZIP_IN_MEMORY
    try:
        with _stage(ctx).reader() as src:
            if in_memory:
                buf = io.BytesIO()
                rows = _zip_package(ctx, buf, src, blocks)
                data = buf.getbuffer()
                with final.open("wb") as f:
                    f.write(data)
                sha256, size = hashlib.sha256(data).hexdigest(), len(data)
            else:
                # written in place: until this step commits no export row points at the
                # file, and a rerun of the step (after a crash) writes it again from the start
                rows = _zip_package(ctx, final, src, blocks)
                sha256, size = file_sha256(final), final.stat().st_size
    except BaseException:
        final.unlink(missing_ok=True)  # no half-written package left under its final name
        raise
    session.connection().execute(
        insert(export_table),
        {
            "request_id": ctx.request_id,
            "path": str(final),
            "sha256": sha256,
            "size_bytes": size,
            "tables": len(blocks),
            "rows": rows,
        },
    )
    ctx.package = (str(final), sha256, rows)
    return rows


def _zip_package(
    ctx: StepContext,
    target: Path | BinaryIO,
    src: BinaryIO,
    blocks: Mapping[str, tuple[int, int, int]],
) -> int:
    """Write the package's zip to ``target``; returns the rows it holds."""
    entries: list[dict[str, Any]] = []
    rows = 0
    members = sorted(f"{t}{ext}" for t in blocks for ext in (".json", ".csv"))
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        small: tuple[str, list[bytes]] | None = None  # the last small block read, by table
        for member_name in members:
            table, _, ext = member_name.rpartition(".")
            begin, end, n = blocks[table]
            name = f"data/{member_name}"
            if end - begin <= SMALL_BLOCK:
                # read once for both of its files, each zipped in one piece
                if small is None or small[0] != table:
                    src.seek(begin)
                    small = (table, src.read(end - begin).splitlines())
                header, *lines = small[1]
                member = _Member(zf, name, whole=True)
                if ext == "json":
                    _write_json(member, iter(lines))
                else:
                    _write_csv(member, json.loads(header)["columns"], iter(lines))
                entry = member.close()
            else:
                member = _Member(zf, name)
                try:
                    if ext == "json":
                        _write_json(member, _block_lines(src, begin, end))
                    else:
                        src.seek(begin)
                        names = json.loads(src.readline())["columns"]
                        _write_csv(member, names, _block_lines(src, begin, end))
                finally:
                    entry = member.close()  # an open member would hide the error at exit
            if ext == "json":
                entry["rows"] = n
                rows += n
            entries.append(entry)
        manifest = {
            "request_id": str(ctx.request_id),
            "type": ctx.type,
            "generated_at": dt.datetime.now(dt.UTC).isoformat(),
            "format": "govern-dsr-package/1",
            "tables": len(blocks),
            "rows": rows,
            "files": entries,
        }
        # one file entry per line, each encoded by json's C encoder (``indent`` would switch
        # the whole document to the pure-Python one)
        files = ",\n    ".join(json.dumps(e) for e in entries)
        head = json.dumps({k: v for k, v in manifest.items() if k != "files"})[:-1]
        zf.writestr("manifest.json", f'{head}, "files": [\n    {files}\n]}}\n')
    return rows


def clear_staging(export_dir: Path, request_id: uuid.UUID) -> None:
    staging_file(export_dir, request_id).unlink(missing_ok=True)
    # packages written before staging files (one folder of files per request)
    shutil.rmtree(export_dir / STAGING / str(request_id), ignore_errors=True)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a package (used by tests and by operators checking a package)."""
    with zipfile.ZipFile(path) as zf:
        data: dict[str, Any] = json.loads(zf.read("manifest.json"))
        return data
