"""The one selection of due rows, used by the plan and by every batch of a run.

A row is due when its timestamp is before the cutoff, it matches the policy's filter, it
is not yet anonymised (for ``anonymise``) or still has a value sealed under its subject's
current key (for ``crypto_shred``), no active legal hold covers its subject (or the
subject of a row that would be deleted with it), and, for deletions, no row of another
table still references it through a key that does not cascade.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Table,
    and_,
    exists,
    false,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnClause

from govern.retention.policy import Bound

_OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
    "in": lambda c, v: c.in_(list(v)),
    "not_in": lambda c, v: c.not_in(list(v)),
    "is_null": lambda c, v: c.is_(None),
    "is_not_null": lambda c, v: c.is_not(None),
}


IN_PLACE = ("anonymise", "crypto_shred")
"""Actions that leave the rows in place (no cascade, no blocking references)."""


@dataclass(frozen=True)
class Child:
    """A table whose rows go with a deleted parent row (``ON DELETE CASCADE``)."""

    table: Table
    fk: ColumnClause[Any]
    parent_key: ColumnClause[Any]


def cascade_children(table: Table) -> list[Child]:
    """Tables that reference ``table`` with ``ON DELETE CASCADE`` (one level)."""
    out = []
    for other in table.metadata.sorted_tables:
        for fk in other.foreign_keys:
            if fk.column.table is table and (fk.ondelete or "").upper() == "CASCADE":
                out.append(Child(table=other, fk=fk.parent, parent_key=fk.column))
    return out


def blocking_references(table: Table) -> list[tuple[Any, Any]]:
    """``(child column, parent column)`` pairs of keys that would block or alter a delete."""
    out: list[tuple[Any, Any]] = []
    for other in table.metadata.sorted_tables:
        for fk in other.foreign_keys:
            if fk.column.table is table and (fk.ondelete or "").upper() != "CASCADE":
                out.append((fk.parent, fk.column))
    return out


def subject_column(table: Table) -> ColumnClause[Any] | None:
    """The column linking ``table``'s rows to a subject directly, if there is one."""
    link = table.info.get("subject_link")
    if not link or "->" in link or link == "id":
        return None
    return table.columns.get(link)


def _held_by(table: Table, held: bool) -> ColumnElement[bool] | None:
    """Rows of ``table`` whose subject is under an active legal hold."""
    from govern.holds import held_subject_ids

    link = table.info.get("subject_link")
    if not link or not held:
        return None
    if "->" in link:
        local, remote = (p.strip() for p in link.split("->"))
        rtable_name, rcol_name = remote.split(".")
        rtable = table.metadata.tables[rtable_name]
        rpk = next(iter(rtable.primary_key.columns))
        lcol = table.columns[local]
        return and_(
            lcol.is_not(None),
            lcol.in_(select(rpk).where(rtable.columns[rcol_name].in_(held_subject_ids()))),
        )
    col = table.columns["id" if link == "id" else link]
    # NOT (NULL IN (...)) is NULL, which would drop rows without a subject: test NULL first.
    return and_(col.is_not(None), col.in_(held_subject_ids()))


def cutoff_value(bound: Bound, cutoff: dt.datetime) -> Any:
    stype = bound.stamp.type
    is_date = isinstance(stype, Date) or isinstance(getattr(stype, "impl_instance", None), Date)
    return cutoff.date() if is_date else cutoff


def base_conditions(bound: Bound, cutoff: dt.datetime) -> list[ColumnElement[bool]]:
    """Age, filter and not-yet-anonymised: due before holds and references are considered."""
    p = bound.policy
    t = bound.table
    conds: list[ColumnElement[bool]] = [bound.stamp < cutoff_value(bound, cutoff)]
    for cond, value in zip(p.filter, bound.values, strict=True):
        conds.append(_OPS[cond.op](t.columns[cond.column], value))
    if p.action == "anonymise":
        conds.append(or_(*(t.columns[c].is_not(None) for c in p.columns)))
    if p.action == "crypto_shred":
        from govern.keys.service import sealed_under_live_key
        from govern.retention.policy import shred_subject_column

        subject = shred_subject_column(t)
        assert subject is not None  # checked by bind()
        conds += [t.columns[subject].is_not(None), sealed_under_live_key(t, subject)]
    return conds


@dataclass(frozen=True)
class Clauses:
    base: ColumnElement[bool]
    held: ColumnElement[bool]
    referenced: ColumnElement[bool]

    @property
    def due(self) -> ColumnElement[bool]:
        return and_(self.base, not_(self.held), not_(self.referenced))


def clauses(bound: Bound, cutoff: dt.datetime, *, holds_exist: bool = True) -> Clauses:
    """The selection, split so the plan can count what holds and references exclude.

    ``holds_exist=False`` (no active hold at all, checked in the same transaction) drops
    the hold sub-selects, which are the costliest part on SQLite.
    """
    t = bound.table
    held: list[ColumnElement[bool]] = []
    own = _held_by(t, holds_exist)
    if own is not None:
        held.append(own)
    referenced: list[ColumnElement[bool]] = []
    if bound.policy.action not in IN_PLACE:
        for child in cascade_children(t):
            child_held = _held_by(child.table, holds_exist)
            if child_held is not None:
                held.append(exists(select(1).where(child.fk == child.parent_key, child_held)))
        for col, parent in blocking_references(t):
            referenced.append(exists(select(1).where(col == parent)))
    return Clauses(
        base=and_(true(), *base_conditions(bound, cutoff)),
        held=or_(false(), *held),
        referenced=or_(false(), *referenced),
    )
