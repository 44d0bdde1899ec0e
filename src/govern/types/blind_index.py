"""Blind-index twin columns: equality search over an encrypted column, backed by an index.

The twin stores a truncated keyed HMAC of the source column's value (see
:mod:`govern.crypto.blind` for the false-positive rate). It is filled when an ORM
``Session`` flushes, and comparing it with a plain value hashes that value, so queries read
naturally and use the database index::

    email: Mapped[str | None] = mapped_column(EncryptedString())
    email_index: Mapped[bytes | None] = mapped_column(BlindIndex("email", bits=32), index=True)

    session.scalars(select(Subject).where(Subject.email_index == "ann@example.com"))
    govern.keys.lookup(session, Subject.email, "ann@example.com")   # drops false positives
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import Select

from govern.crypto.blind import check_bits
from govern.crypto.keyring import Keyring, holder
from govern.errors import PlaintextRefusedError, UsageError
from govern.types._protected import Protected, as_bytes, binary_binder

M = TypeVar("M")


class BlindDigest(bytes):
    """A digest already computed (stored as is, not hashed again)."""

    __slots__ = ()


class BlindIndex(Protected[bytes]):
    """The twin of an encrypted column ``source``; ``bits`` sets the digest width.

    ``casefold=True`` indexes ``value.casefold()`` so that lookups ignore case.
    """

    cache_ok = True

    protection: ClassVar[str] = "blind-index"

    def __init__(
        self, source: str, bits: int = 32, casefold: bool = False, context: str | None = None
    ) -> None:
        super().__init__(context)
        self.source = source
        self.bits = check_bits(bits)
        self.casefold = casefold

    @property
    def python_type(self) -> type[bytes]:
        return bytes

    def digest(self, keyring: Keyring, value: str) -> BlindDigest:
        """The digest of a plain value for this column."""
        text = value.casefold() if self.casefold else value
        raw = keyring.blind.digest(
            self.context_bytes(), text.encode("utf-8", "surrogatepass"), self.bits
        )
        return BlindDigest(raw)

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, BlindDigest):
            return bytes(value)
        if isinstance(value, str):
            return bytes(self.digest(self.keyring(dialect), value))
        table, column = self.table_column
        raise PlaintextRefusedError(
            f"blind index of {self.context} compares with str values",
            table=table,
            column=column,
        )

    def bind_processor(self, dialect: Dialect) -> Any:
        """The per-value path: the column's keyed HMAC, no key derivation, no method calls.

        Gives the same digests as ``process_bind_param``; anything else than a ``str`` or a
        :class:`BlindDigest` (and a missing keyring) takes the slow path for its typed error.
        This is what makes ``select(M).where(M.email_index == bindparam("v"))`` a reusable
        statement: the plain value is hashed when the parameter is bound, on every execution.
        """
        slot = holder(dialect)
        slow = self.process_bind_param
        impl = binary_binder(self, dialect)
        size = self.bits // 8
        casefold = self.casefold
        state: list[Any] = [None]  # (blind indexer, this column's HMAC), swapped whole

        def process(value: Any) -> Any:
            keyring = slot.keyring
            blind = None if keyring is None else keyring.blind_or_none
            if type(value) is str and blind is not None:
                current = state[0]
                if current is None or current[0] is not blind:
                    current = state[0] = (blind, blind.mac_for(self.context_bytes()))
                text = value.casefold() if casefold else value
                digest: bytes | None = current[1](text.encode("utf-8", "surrogatepass"))[:size]
            else:
                digest = slow(value, dialect)
            return digest if impl is None or digest is None else impl(digest)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else BlindDigest(as_bytes(value))

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """Stored digests come back as :class:`BlindDigest`, so writing one back keeps it."""

        def process(value: Any) -> BlindDigest | None:
            return None if value is None else BlindDigest(value)

        return process


_TWINS: dict[Any, InstrumentedAttribute[Any]] = {}


def twin_of(attribute: InstrumentedAttribute[Any]) -> InstrumentedAttribute[Any]:
    """The blind-index attribute of an encrypted attribute, e.g. ``Subject.email_index``."""
    key = (attribute.class_, attribute.key)
    found = _TWINS.get(key)
    if found is None:
        found = _TWINS[key] = _find_twin(attribute)
    return found


def _find_twin(attribute: InstrumentedAttribute[Any]) -> InstrumentedAttribute[Any]:
    mapper: Any = inspect(attribute.class_)
    source = attribute.property.columns[0].name
    for prop in mapper.column_attrs:
        typ = prop.columns[0].type
        if isinstance(typ, BlindIndex) and typ.source == source:
            twin: InstrumentedAttribute[Any] = getattr(attribute.class_, prop.key)
            return twin
    raise UsageError(f"{mapper.local_table.name}.{source} has no blind index")


_LOOKUPS: dict[Any, tuple[Select[Any], BlindIndex]] = {}
_LOOKUP_PARAM = "govern_blind_value"


def _lookup_statement(attribute: InstrumentedAttribute[Any]) -> tuple[Select[Any], BlindIndex]:
    """One statement per attribute, built once: SQLAlchemy then reuses its cache key."""
    key = (attribute.class_, attribute.key)
    found = _LOOKUPS.get(key)
    if found is None:
        twin = twin_of(attribute)
        typ: BlindIndex = twin.property.columns[0].type
        stmt = select(attribute.class_).where(twin == bindparam(_LOOKUP_PARAM, type_=typ))
        found = _LOOKUPS[key] = (stmt, typ)
    return found


def lookup(session: Session, attribute: InstrumentedAttribute[Any], value: str) -> list[Any]:
    """Rows whose encrypted ``attribute`` equals ``value``, via its blind index.

    Candidates come from the indexed twin; false positives of the truncated digest are
    dropped after decryption, so the result is exact.
    """
    stmt, typ = _lookup_statement(attribute)
    want = value.casefold() if typ.casefold else value
    rows = session.scalars(stmt, {_LOOKUP_PARAM: value}).all()
    out = []
    for row in rows:
        got = getattr(row, attribute.key)
        if isinstance(got, str) and (got.casefold() if typ.casefold else got) == want:
            out.append(row)
    return out
