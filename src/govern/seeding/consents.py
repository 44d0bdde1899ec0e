"""Consent seeds: the catalog and the demo users' decisions, through govern.consent.

``seeds/consent/catalog.toml`` is a :class:`govern.consent.Catalog` (notices, purposes)
for every environment; ``seeds/consent/<env>.toml`` lists decisions::

    [[consents]]
    key = "ada-marketing.email-given"    # unique: the record's idempotency key derives from it
    subject = "demo-ada"                 # the pseudonymous reference (a subject's external_ref)
    purpose = "marketing.email"
    event = "given"
    occurred_at = 2025-01-06T10:00:00Z

Records are appended with the ledger's own service (hash chains, projection, events), so
the seeded ledger verifies like a real one. A decision whose idempotency key is already
in the ledger is not appended again, which keeps ``govern seed`` idempotent.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from govern.errors import DuplicateSeedKeyError, SeedError
from govern.seeding.schemas import TableCounts


def _read(path: Path, shown: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SeedError(f"{shown}: not valid TOML ({exc})") from None


def seed_consents(session: Session, env: str, root: Path) -> list[TableCounts]:
    """Load the consent catalog and the environment's decisions; counts per kind."""
    from govern import consent

    out: list[TableCounts] = []
    catalog_path = root / "consent" / "catalog.toml"
    if catalog_path.is_file():
        shown = "seeds/consent/catalog.toml"
        try:
            catalog = consent.Catalog.model_validate(_read(catalog_path, shown))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SeedError(f"{shown}: {where}: {first['msg']}") from None
        result = consent.load_catalog(session, catalog)
        added = len(result.notices_added) + len(result.versions_added) + len(result.purposes_added)
        out.append(
            TableCounts(
                table="consent catalog",
                domain="core",
                inserted=added,
                unchanged=len(result.unchanged),
            )
        )
    env_path = root / "consent" / f"{env}.toml"
    if not env_path.is_file():
        return out
    shown = f"seeds/consent/{env}.toml"
    entries = _read(env_path, shown).get("consents", [])
    items = []
    seen: set[str] = set()
    for entry in entries:
        key = entry.get("key")
        if not isinstance(key, str) or not key:
            raise SeedError(f"{shown}: a row of consents has no string 'key'")
        if key in seen:
            raise DuplicateSeedKeyError(f"{shown}: table consents has natural key {key!r} twice")
        seen.add(key)
        fields = {k: v for k, v in entry.items() if k != "key"}
        try:
            items.append(
                consent.ConsentIn(**fields, method="import", idempotency_key=f"seed:{env}:{key}")
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SeedError(f"{shown}: consents {key!r}: {where}: {first['msg']}") from None
    present: set[str] = set()
    for subject, purpose in sorted({(i.subject, i.purpose) for i in items}):
        present |= {
            r.idempotency_key
            for r in consent.history(session, subject, purpose)
            if r.idempotency_key
        }
    new = [i for i in items if i.idempotency_key not in present]
    new.sort(key=lambda i: (i.occurred_at is None, i.occurred_at))
    if new:
        consent.append_many(session, new)
    out.append(
        TableCounts(
            table="consent records",
            domain="core",
            inserted=len(new),
            unchanged=len(items) - len(new),
        )
    )
    return out
