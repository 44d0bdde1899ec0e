"""What each data-subject right does to each table: the actions half of the data map.

Each governed table that links to a subject gets one :class:`TableActions`: how its rows
reach the subject (from ``subject_link``), what erasure does (delete rows, redact or
pseudonymise columns, crypto-shred, or keep under a legal exception and restrict), which
columns a subject may rectify, and whether it belongs in a portability package (data the
subject provided). A host registers its own tables with :func:`register_actions`::

    from govern.datamap.actions import Redact, register_actions

    register_actions("crm_notes", erasure="delete", rectifiable=("note",))
    register_actions("tickets", erasure=Redact({"body": "[erased]", "requester_id": None}))

Personal data a host keeps outside the database (a paper archive, a SaaS tool without an
API) is a *manual location*: a request it applies to gets a ``manual`` step, and the worker
waits at that step until an operator confirms the work was done
(:func:`govern.dsr.confirm_manual_step`)::

    register_manual_location(
        "paper_archive",
        description="signed contracts in the Berlin office archive",
        owner="office@example.com",
        rights=("access", "erasure"),
    )
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import MetaData, Table

from govern.errors import (
    DuplicateManualLocationError,
    ManualLocationError,
    UnknownManualLocationError,
    UsageError,
)

ErasureKind = Literal["delete", "redact", "keep", "shred"]

PSEUDONYM = "<pseudonym>"
"""Redaction value meaning: a keyed, per-subject pseudonym (for NOT NULL unique columns)."""


@dataclass(frozen=True)
class Redact:
    """Erase by overwriting columns: ``None`` nulls a column, a string replaces it."""

    columns: Mapping[str, str | None]

    def __post_init__(self) -> None:
        if not self.columns:
            raise UsageError("Redact needs at least one column")
        object.__setattr__(self, "columns", dict(self.columns))


@dataclass(frozen=True)
class LegalException:
    """Why data is kept despite an erasure request; reported to the subject.

    ``article`` names the legal ground (``"Art. 17(3)(b)"``), ``restrict`` whether the
    kept rows are restricted (Art. 18) so that ordinary processing skips them.
    """

    article: str
    reason: str
    restrict: bool = True


@dataclass(frozen=True)
class TableActions:
    """The actions of each right on one table."""

    table: str
    erasure: ErasureKind
    redact: Mapping[str, str | None] = field(default_factory=dict)
    exception: LegalException | None = None
    rectifiable: tuple[str, ...] = ()
    portable: bool = True
    restrictable: bool = True
    access: bool = True

    def describe_erasure(self) -> str:
        if self.erasure == "delete":
            return "delete rows"
        if self.erasure == "redact":
            parts = [
                f"{c}={'null' if v is None else ('pseudonym' if v == PSEUDONYM else 'constant')}"
                for c, v in self.redact.items()
            ]
            return "redact " + ", ".join(parts)
        if self.exception is not None:
            return (
                f"keep ({self.exception.article}){', restrict' if self.exception.restrict else ''}"
            )
        return "keep"


_LOCK = threading.Lock()
_REGISTRY: dict[str, TableActions] = {}

_STATUTORY = LegalException(
    article="Art. 17(3)(b)",
    reason="invoices are kept for the statutory retention period (tax and commercial law)",
)

_SHIPPED: tuple[TableActions, ...] = (
    TableActions(
        "subjects",
        "redact",
        {
            "external_ref": PSEUDONYM,
            "email": None,
            "phone": None,
            "given_name": None,
            "family_name": None,
            "birth_date": None,
            "country": None,
            "status": "erased",
        },
        rectifiable=("email", "phone", "given_name", "family_name", "birth_date", "country"),
    ),
    TableActions("subject_identities", "delete"),
    TableActions("accounts", "delete", portable=True),
    TableActions("orders", "redact", {"shipping_address": None}, rectifiable=()),
    TableActions("order_lines", "keep"),
    TableActions(
        "payments",
        "redact",
        {"card_number": None, "card_holder": None, "bank_account": None},
    ),
    TableActions("invoices", "keep", exception=_STATUTORY, rectifiable=("billing_address",)),
    TableActions("refunds", "redact", {"reason": None}),
    TableActions("wallets", "delete"),
    # Sessions are anonymised, not deleted: their events and page views (other subjects'
    # rows included) reference them, and without the subject and the device data a
    # session row is no longer personal data.
    TableActions(
        "analytics_sessions",
        "redact",
        {"subject_id": None, "ip_address": None, "user_agent": None, "device_id": None},
        portable=False,
    ),
    TableActions("analytics_events", "delete", portable=False),
    TableActions("page_views", "delete", portable=False),
    TableActions("communities", "redact", {"owner_subject_id": None}),
    TableActions("memberships", "delete"),
    TableActions(
        "posts", "redact", {"title": "[erased]", "body": "[erased]", "author_subject_id": None}
    ),
    TableActions("comments", "redact", {"body": "[erased]", "author_subject_id": None}),
    TableActions(
        "moderation_reports", "redact", {"notes": None, "reporter_subject_id": None}, portable=False
    ),
)
_KEYS = (TableActions("subject_keys", "shred", portable=False, restrictable=False, access=False),)
_CONSENT_PROOF = LegalException(
    article="Art. 7(1)",
    reason=(
        "the consent ledger proves past consent; it is append-only and keyed by a pseudonymous"
        " reference, so withdrawals are appended and erasure removes the link to the person"
    ),
    restrict=False,
)
_CONSENT = (
    TableActions("consent_records", "keep", exception=_CONSENT_PROOF, portable=False),
    TableActions("consent_state", "keep", exception=_CONSENT_PROOF, portable=False),
    *(
        TableActions(
            t, "keep", exception=_CONSENT_PROOF, portable=False, restrictable=False, access=False
        )
        for t in ("consent_chain_heads", "consent_checkpoint_heads")
    ),
)
_ACCOUNTABILITY = LegalException(
    article="Art. 5(2)",
    reason="records of how requests and holds were handled (accountability)",
    restrict=False,
)
_HOLD = LegalException(
    article="Art. 17(3)(e)",
    reason="a legal hold keeps data needed for legal claims",
    restrict=False,
)
_RECORDS: tuple[TableActions, ...] = tuple(
    TableActions(t, "keep", exception=exc, portable=False, restrictable=False, access=False)
    for t, exc in (
        ("dsr_requests", _ACCOUNTABILITY),
        ("dsr_identifiers", _ACCOUNTABILITY),
        ("dsr_exports", _ACCOUNTABILITY),
        ("dsr_restrictions", _ACCOUNTABILITY),
        ("legal_hold_subjects", _HOLD),
    )
)
# Retention's quarantine keeps copies of removed rows for the restore window: an erasure
# must remove the subject's copies too (and a later rollback of that run cannot bring them back).
_RETENTION = (
    TableActions(
        "retention_quarantine", "delete", portable=False, restrictable=False, access=False
    ),
)
for _a in (*_SHIPPED, *_KEYS, *_CONSENT, *_RECORDS, *_RETENTION):
    _REGISTRY[_a.table] = _a
_VERSION = 0


def actions_version() -> int:
    """A number that changes whenever a table's actions are registered or forgotten (for
    callers that cache what they derive from the registry)."""
    return _VERSION


def register_actions(
    table: str | Table,
    *,
    erasure: ErasureKind | Redact = "delete",
    exception: LegalException | None = None,
    rectifiable: Iterable[str] = (),
    portable: bool = True,
    restrictable: bool = True,
    access: bool = True,
) -> TableActions:
    """Register (or replace) the DSR actions of a host's table.

    The table must be governed (``info=governed(..., subject_link=...)``) for requests to
    find its rows; :func:`dsr_map` reports tables that link to subjects without actions.
    """
    name = table if isinstance(table, str) else table.name
    redact: Mapping[str, str | None] = {}
    kind: ErasureKind
    if isinstance(erasure, Redact):
        kind, redact = "redact", erasure.columns
    elif erasure in ("delete", "keep", "shred"):
        kind = erasure
    else:
        raise UsageError(
            f"unknown erasure action {erasure!r}; use 'delete', 'keep', 'shred' or Redact"
        )
    if kind == "keep" and exception is None:
        raise UsageError(f"keeping {name} on erasure needs a LegalException saying why")
    entry = TableActions(
        name,
        kind,
        dict(redact),
        exception,
        tuple(rectifiable),
        portable,
        restrictable,
        access,
    )
    global _VERSION
    with _LOCK:
        _REGISTRY[name] = entry
        _VERSION += 1
    return entry


def unregister_actions(table: str) -> None:
    """Forget a host table's actions (the shipped tables can be replaced, not removed)."""
    global _VERSION
    with _LOCK:
        if table in {a.table for a in (*_SHIPPED, *_KEYS, *_CONSENT, *_RECORDS)}:
            raise UsageError(f"{table} is a shipped table; replace its actions instead")
        _REGISTRY.pop(table, None)
        _VERSION += 1


def actions_for(table: str) -> TableActions | None:
    with _LOCK:
        return _REGISTRY.get(table)


def validate_actions(metadata: MetaData) -> list[str]:
    """Problems in the registry against ``metadata``: unknown tables or columns, bad links."""
    problems = []
    with _LOCK:
        entries = list(_REGISTRY.values())
    for a in entries:
        t = metadata.tables.get(a.table)
        if t is None:
            problems.append(f"{a.table}: registered for DSR but not in the metadata")
            continue
        if not t.info.get("subject_link"):
            problems.append(f"{a.table}: has DSR actions but no subject_link")
        for col in (*a.redact, *a.rectifiable):
            if col not in t.c:
                problems.append(f"{a.table}.{col}: no such column")
        for col, value in a.redact.items():
            if col in t.c and value is None and not t.c[col].nullable:
                problems.append(f"{a.table}.{col}: redacted to null but NOT NULL")
    return problems


RIGHTS: tuple[str, ...] = (
    "access",
    "portability",
    "erasure",
    "rectification",
    "restriction",
    "objection",
)
"""The request types a manual location can apply to (the same as ``govern.dsr.REQUEST_TYPES``)."""

_LOCATION_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class ManualLocation:
    """Personal data outside the database that an operator handles by hand.

    ``name`` is what plans and checkpoints show (a step's table column holds it), ``owner``
    who does the work, ``rights`` the request types it applies to.
    """

    name: str
    description: str
    owner: str
    rights: tuple[str, ...] = RIGHTS


_MANUAL: dict[str, ManualLocation] = {}


def register_manual_location(
    name: str,
    *,
    description: str,
    owner: str,
    rights: Iterable[str] = RIGHTS,
) -> ManualLocation:
    """Register a place outside the database that requests of ``rights`` must cover by hand.

    Raises :class:`~govern.errors.DuplicateManualLocationError` when ``name`` is taken
    (unregister it first to change it) and :class:`~govern.errors.ManualLocationError` for a
    name that is not a lowercase identifier, an unknown right, or an empty description or owner.
    """
    if not isinstance(name, str) or not _LOCATION_NAME.fullmatch(name):
        raise ManualLocationError(
            f"manual location name {name!r} must be a lowercase identifier"
            " (a-z, 0-9, _; starting with a letter; at most 63 characters)"
        )
    chosen = tuple(dict.fromkeys(rights))
    if not chosen:
        raise ManualLocationError(f"manual location {name} needs at least one right")
    unknown = [r for r in chosen if r not in RIGHTS]
    if unknown:
        raise ManualLocationError(
            f"manual location {name}: unknown right(s) {', '.join(map(repr, unknown))};"
            f" rights: {', '.join(RIGHTS)}"
        )
    if not description.strip():
        raise ManualLocationError(f"manual location {name} needs a description")
    if not owner.strip():
        raise ManualLocationError(f"manual location {name} needs an owner")
    entry = ManualLocation(
        name, description.strip(), owner.strip(), tuple(r for r in RIGHTS if r in chosen)
    )
    with _LOCK:
        if name in _MANUAL:
            raise DuplicateManualLocationError(f"manual location {name} is already registered")
        _MANUAL[name] = entry
    return entry


def unregister_manual_location(name: str) -> None:
    """Forget a manual location; plans already stored keep their manual steps."""
    with _LOCK:
        if _MANUAL.pop(name, None) is None:
            raise UnknownManualLocationError(f"no manual location named {name!r}")


def manual_locations(right: str | None = None) -> list[ManualLocation]:
    """The registered manual locations (those applying to ``right``), sorted by name."""
    with _LOCK:
        entries = sorted(_MANUAL.values(), key=lambda m: m.name)
    return [m for m in entries if right is None or right in m.rights]
