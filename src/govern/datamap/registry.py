"""The data map, read from the metadata of govern's (and a host's) tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, Table

PERSONAL_ROOTS = ("user.",)
FINANCIAL_MARK = ".financial"


def personal(*categories: str, **extra: Any) -> dict[str, Any]:
    """Column ``info`` for a column holding personal data of the given categories.

    ``mapped_column(String(320), info=personal("user.contact.email"))``
    """
    if not categories:
        raise ValueError("personal() needs at least one data category")
    for cat in categories:
        if not cat.startswith(PERSONAL_ROOTS) or cat.endswith(".") or " " in cat:
            raise ValueError(f"data category {cat!r} is not a dotted user.* taxonomy key")
    return {"categories": list(categories), **extra}


def sealed_copies(*categories: str, source_table: str | None = None) -> dict[str, Any]:
    """Column ``info`` for copies of other tables' rows as stored (quarantine, archives).

    Protected source columns arrive already sealed (envelopes, tokens), so the copy keeps
    its source's protection; the data map reports it as ``"inherited"``. With
    ``source_table`` (the column naming each row's source table) the copy is a JSON object
    of the source's columns, binary values as hex, and ``govern scan encryption`` checks
    that every protected source column in it is still sealed.
    """
    extra = {} if source_table is None else {"source_table": source_table}
    return personal(*categories, protection="inherited", **extra)


def not_personal(reason: str) -> dict[str, Any]:
    """Column ``info`` stating why a column that looks personal is not (checked by the tests).

    ``mapped_column(JSON, info=not_personal("ids and counts only"))``
    """
    if not reason.strip():
        raise ValueError("not_personal() needs a reason")
    return {"not_personal": reason}


def governed(
    *, owner: str, steward: str, subject_link: str | None, description: str
) -> dict[str, Any]:
    """Table ``info``: who owns the table, who stewards its data, how rows reach a subject.

    ``subject_link`` is a column name (``"subject_id"``), a join path
    (``"order_id -> orders.subject_id"``), ``"id"`` for the subject table itself,
    or ``None`` for tables that hold no subject's data.
    """
    return {
        "owner": owner,
        "steward": steward,
        "subject_link": subject_link,
        "description": description,
    }


@dataclass(frozen=True)
class ColumnEntry:
    """A personal-data column; ``protection`` is how it is stored (None: in the clear).

    ``protection`` is ``"encrypted"``, ``"encrypted+blind-index"`` (searchable by equality),
    ``"tokenised"`` or ``"shredded"``, read from the column's type; or ``"pseudonymous"`` for
    a pseudonymous reference kept in the clear on purpose (see :data:`PSEUDONYMOUS`); or
    ``"inherited"`` for copies of rows as stored (see :func:`sealed_copies`).
    """

    name: str
    categories: tuple[str, ...]
    protection: str | None = None

    @property
    def is_financial(self) -> bool:
        return any(FINANCIAL_MARK in c for c in self.categories)


@dataclass(frozen=True)
class TableEntry:
    name: str
    domain: str
    owner: str
    steward: str
    subject_link: str | None
    description: str
    columns: tuple[ColumnEntry, ...]


PSEUDONYMOUS = "user.unique_id.pseudonymous"
"""The category of a pseudonymous reference: a key that links rows to a subject without
identifying them. Such a column is stored in the clear on purpose (it is what lookups and
joins use); erasing the subject removes the mapping, not the pseudonym."""


def _protection(table: Table, column: Any) -> str | None:
    protection = getattr(type(column.type), "protection", None)
    if protection is None and set(column.info.get("categories", ())) == {PSEUDONYMOUS}:
        return "pseudonymous"
    if protection is None and column.info.get("protection") == "inherited":
        return "inherited"
    if protection == "encrypted" and any(
        getattr(c.type, "source", None) == column.name
        and getattr(type(c.type), "protection", None) == "blind-index"
        for c in table.columns
    ):
        return "encrypted+blind-index"
    return protection


def _entry(table: Table) -> TableEntry:
    info = table.info
    cols = tuple(
        ColumnEntry(c.name, tuple(c.info["categories"]), _protection(table, c))
        for c in table.columns
        if c.info.get("categories")
    )
    return TableEntry(
        name=table.name,
        domain=str(info.get("domain", "host")),
        owner=str(info.get("owner", "")),
        steward=str(info.get("steward", "")),
        subject_link=info.get("subject_link"),
        description=str(info.get("description", "")),
        columns=cols,
    )


def data_map(metadata: MetaData | None = None) -> list[TableEntry]:
    """Every governed table, ordered by domain then name."""
    if metadata is None:
        from govern.db import load_models

        metadata = load_models()
    from govern.db import DOMAINS

    order = {d: i for i, d in enumerate(DOMAINS)}
    entries = [_entry(t) for t in metadata.sorted_tables if "owner" in t.info]
    return sorted(entries, key=lambda e: (order.get(e.domain, len(order)), e.name))
