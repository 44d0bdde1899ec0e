"""Reading seed fixtures: TOML files per domain, environment overlays, deterministic ids.

Layout: ``seeds/<domain>/base.toml`` holds the rows every environment gets, and
``seeds/<domain>/<env>.toml`` (``demo``, ``sandbox``, ``staging``) overlays them. A file is
a set of arrays of tables, one per database table::

    [[subjects]]
    key = "ada"                        # natural key, unique per table
    external_ref = "demo-ada"
    email = "ada@example.org"

    [[accounts]]
    key = "ada"
    subject_id = { ref = "ada" }       # the subject whose natural key is "ada"
    username = "ada"

An overlay row with the key of a base row replaces the fields it names (``_drop = true``
removes the row from that environment); a new key adds a row. A reference names the target
row's natural key (the table comes from the column's foreign key) or ``"table:key"`` for a
column without one. Every row's primary key is ``uuid5(namespace of its domain,
"table:key")``, so a row has the same id on every machine and in every run.

Nothing here touches a database: :func:`load_plan` turns files into a :class:`Plan` of
fully resolved rows, or raises a :class:`~govern.errors.SeedError` naming file, table and
key, before anything is written.
"""

from __future__ import annotations

import datetime as dt
import tomllib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, MetaData, Table, Uuid

from govern.db import DOMAIN_DEPENDS_ON, DOMAINS
from govern.errors import (
    BrokenSeedReferenceError,
    DuplicateSeedKeyError,
    SeedError,
    UnknownDomainError,
)

ENVIRONMENTS: tuple[str, ...] = ("demo", "sandbox", "staging")
"""The environment overlays govern ships fixtures for."""

SEED_NAMESPACE = uuid.UUID("6f1c2f8e-3b7a-5d0e-9a41-0c2b7e5d9f10")
"""Root namespace of seed ids; each domain's namespace is derived from it."""

FORBIDDEN_COLUMNS = frozenset({"password", "password_hash", "password_scheme"})
"""Seeds never carry passwords or hashes: the loader hashes a random or configured password."""

RESERVED = frozenset({"key", "_drop"})


def domain_namespace(domain: str) -> uuid.UUID:
    """The UUIDv5 namespace of one domain's seed ids."""
    return uuid.uuid5(SEED_NAMESPACE, domain)


def seed_id(domain: str, table: str, key: str) -> uuid.UUID:
    """The deterministic id of the seed row ``key`` of ``table`` in ``domain``."""
    return uuid.uuid5(domain_namespace(domain), f"{table}:{key}")


@dataclass
class SeedRow:
    """One fixture row after overlays: raw values, and the file that set each field."""

    table: str
    key: str
    values: dict[str, Any]
    sources: dict[str, str]
    first_file: str

    def source(self, column: str) -> str:
        return self.sources.get(column, self.first_file)


@dataclass
class PlannedTable:
    """The resolved rows of one table: ``{column: python value}`` with ``id`` set."""

    table: Table
    domain: str
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Plan:
    """Every row to load, tables in foreign-key dependency order."""

    env: str
    domains: tuple[str, ...]
    files: list[str]
    tables: list[PlannedTable]
    root: Path | None = None

    @property
    def row_count(self) -> int:
        return sum(len(t.rows) for t in self.tables)


def resolve_domains(domains: Sequence[str] | None) -> tuple[str, ...]:
    """The requested domains plus the domains they depend on, in dependency order."""
    wanted = set(domains or DOMAINS)
    unknown = sorted(wanted - set(DOMAINS))
    if unknown:
        raise UnknownDomainError(f"unknown domain {unknown[0]!r}; domains: {', '.join(DOMAINS)}")
    for d in list(wanted):
        wanted.update(DOMAIN_DEPENDS_ON[d])
    return tuple(d for d in DOMAINS if d in wanted)


def _read(path: Path, shown: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SeedError(f"{shown}: not valid TOML ({exc})") from None


def _collect(
    root: Path, domain: str, env: str, metadata: MetaData
) -> tuple[dict[str, dict[str, SeedRow]], list[str]]:
    rows: dict[str, dict[str, SeedRow]] = {}
    files = []
    for name in ("base", env):
        path = root / domain / f"{name}.toml"
        if not path.is_file():
            continue
        shown = f"seeds/{domain}/{name}.toml"
        files.append(shown)
        doc = _read(path, shown)
        for table_name, entries in doc.items():
            table = metadata.tables.get(table_name)
            if table is None:
                raise SeedError(f"{shown}: unknown table {table_name!r}")
            if table.info.get("domain") != domain:
                raise SeedError(
                    f"{shown}: table {table_name!r} belongs to domain "
                    f"{table.info.get('domain')!r}; put its rows under seeds/"
                    f"{table.info.get('domain')}/"
                )
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise SeedError(f"{shown}: {table_name} must be an array of tables ([[...]])")
            _check_table(table, shown)
            seen: set[str] = set()
            bucket = rows.setdefault(table_name, {})
            for entry in entries:
                key = entry.get("key")
                if not isinstance(key, str) or not key:
                    raise SeedError(f"{shown}: a row of {table_name} has no string 'key'")
                if key in seen:
                    raise DuplicateSeedKeyError(
                        f"{shown}: table {table_name} has natural key {key!r} twice"
                    )
                seen.add(key)
                _check_columns(table, entry, shown, key)
                values = {k: v for k, v in entry.items() if k not in RESERVED}
                if entry.get("_drop") is True:
                    bucket.pop(key, None)
                    continue
                existing = bucket.get(key)
                if existing is None:
                    bucket[key] = SeedRow(
                        table_name, key, values, dict.fromkeys(values, shown), shown
                    )
                else:
                    existing.values.update(values)
                    existing.sources.update(dict.fromkeys(values, shown))
    return rows, files


def _check_table(table: Table, shown: str) -> None:
    pk = list(table.primary_key.columns)
    if len(pk) != 1 or not isinstance(pk[0].type, Uuid):
        raise SeedError(
            f"{shown}: table {table.name} has no UUID primary key, so its rows cannot get "
            "deterministic ids (generate analytics events with `govern seed generate-events`)"
        )


def _check_columns(table: Table, entry: dict[str, Any], shown: str, key: str) -> None:
    for name in entry:
        if name in RESERVED:
            continue
        if name in FORBIDDEN_COLUMNS:
            raise SeedError(
                f"{shown}: {table.name} {key!r} sets {name}; seeds never hold passwords "
                "or hashes (accounts get Argon2id hashes when loaded)"
            )
        if name == table.primary_key.columns.values()[0].name:
            raise SeedError(
                f"{shown}: {table.name} {key!r} sets {name}; ids are derived from the key"
            )
        if name not in table.c:
            raise SeedError(f"{shown}: {table.name} {key!r} has unknown column {name!r}")
        from govern.types import BlindIndex

        if isinstance(table.c[name].type, BlindIndex):
            raise SeedError(
                f"{shown}: {table.name} {key!r} sets {name}, a blind index computed from "
                "its source column"
            )


def load_plan(
    env: str = "demo",
    domains: Sequence[str] | None = None,
    *,
    root: Path | None = None,
    metadata: MetaData | None = None,
) -> Plan:
    """Read, overlay, validate and resolve the fixtures of ``domains`` for ``env``.

    Raises a :class:`SeedError` (naming file, table and key) for any problem, so that a
    caller never loads half a fixture set.
    """
    from govern.db import load_models
    from govern.migrations.paths import seeds_root

    if env not in ENVIRONMENTS:
        raise SeedError(f"unknown environment {env!r}; environments: {', '.join(ENVIRONMENTS)}")
    chosen = resolve_domains(domains)
    md = metadata if metadata is not None else load_models()
    base = root if root is not None else seeds_root()
    collected: dict[str, dict[str, SeedRow]] = {}
    files: list[str] = []
    for d in chosen:
        rows, read = _collect(base, d, env, md)
        files += read
        for table_name, bucket in rows.items():
            collected.setdefault(table_name, {}).update(bucket)
    ids = {
        (t, k): seed_id(str(md.tables[t].info["domain"]), t, k)
        for t, bucket in collected.items()
        for k in bucket
    }
    planned = []
    for table in md.sorted_tables:
        found = collected.get(table.name)
        if not found:
            continue
        domain = str(table.info["domain"])
        pt = PlannedTable(table=table, domain=domain)
        for key, row in found.items():
            pt.rows.append((key, _resolve(table, row, ids)))
        planned.append(pt)
    return Plan(env=env, domains=chosen, files=files, tables=planned, root=base)


def _resolve(table: Table, row: SeedRow, ids: dict[tuple[str, str], uuid.UUID]) -> dict[str, Any]:
    pk = table.primary_key.columns.values()[0]
    out: dict[str, Any] = {pk.name: ids[(table.name, row.key)]}
    for name, raw in row.values.items():
        col = table.c[name]
        shown = row.source(name)
        if isinstance(raw, dict) and set(raw) == {"ref"} and not isinstance(col.type, JSON):
            out[name] = _reference(table, col, row, raw["ref"], ids, shown)
        else:
            out[name] = _convert(col, raw, shown, table.name, row.key)
    from govern.types import BlindIndex

    for col in table.columns:
        missing = (
            col.name not in out
            and not isinstance(col.type, BlindIndex)  # derived from its source at flush
            and not col.nullable
            and col.default is None
            and col.server_default is None
            and col.name not in FORBIDDEN_COLUMNS
        )
        if missing:
            raise SeedError(
                f"{row.first_file}: {table.name} {row.key!r} lacks required column {col.name!r}"
            )
    return out


def _reference(
    table: Table,
    col: Column[Any],
    row: SeedRow,
    ref: object,
    ids: dict[tuple[str, str], uuid.UUID],
    shown: str,
) -> uuid.UUID:
    if not isinstance(ref, str) or not ref:
        raise SeedError(f"{shown}: {table.name} {row.key!r}: {col.name}.ref must be a string")
    if ":" in ref:
        target, key = ref.split(":", 1)
    else:
        fks = list(col.foreign_keys)
        if not fks:
            raise SeedError(
                f"{shown}: {table.name} {row.key!r}: column {col.name} has no foreign key; "
                'write the reference as "table:key"'
            )
        target, key = fks[0].column.table.name, ref
    found = ids.get((target, key))
    if found is None:
        raise BrokenSeedReferenceError(
            f"{shown}: {table.name} {row.key!r}: {col.name} refers to {target} {key!r}, "
            "which no loaded fixture defines"
        )
    return found


def _python_type(col: Column[Any]) -> type | None:
    try:
        return col.type.python_type
    except NotImplementedError:
        return None


def _convert(col: Column[Any], raw: Any, shown: str, table: str, key: str) -> Any:
    """A TOML value as the column's Python type (encrypted types declare theirs too)."""
    where = f"{shown}: {table} {key!r}: {col.name}"
    kind = _python_type(col)
    if kind is uuid.UUID:
        try:
            return uuid.UUID(str(raw))
        except ValueError:
            raise SeedError(f"{where} must be a UUID or {{ ref = ... }}") from None
    if kind is dt.datetime:
        if not isinstance(raw, dt.datetime):
            raise SeedError(f"{where} must be a TOML date-time")
        if raw.tzinfo is None:
            raise SeedError(f"{where} needs a UTC offset (write 2025-01-31T09:00:00Z)")
        return raw.astimezone(dt.UTC)
    if kind is dt.date:
        if isinstance(raw, dt.datetime) or not isinstance(raw, dt.date):
            raise SeedError(f"{where} must be a TOML date (2025-01-31)")
        return raw
    if kind is Decimal:
        try:
            return Decimal(str(raw))
        except InvalidOperation:
            raise SeedError(f"{where} must be a number") from None
    if kind is str and not isinstance(raw, str):
        raise SeedError(f"{where} must be a string")
    return raw


def list_fixture_files(root: Path | None = None) -> Iterable[Path]:
    """Every fixture file shipped, for docs and tests."""
    from govern.migrations.paths import seeds_root

    base = root if root is not None else seeds_root()
    return sorted(base.glob("*/*.toml"))
