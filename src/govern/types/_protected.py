"""What every protected column type shares: its ``table.column`` context and the codecs.

The context is the associated data of every envelope and the derivation input of blind-index
keys. It is taken from the column the type is attached to, unless given explicitly (give it
explicitly to keep old values readable after renaming a table or column).
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from sqlalchemy import Column, LargeBinary, Table, event
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

from govern.crypto import aead
from govern.crypto.keyring import Keyring, bound_keyring
from govern.errors import CryptoError, TamperedValueError, UnsearchableColumnError

T = TypeVar("T")

_VALUE_OPERATORS = frozenset(
    {
        operators.eq,
        operators.ne,
        operators.lt,
        operators.le,
        operators.gt,
        operators.ge,
        operators.in_op,
        operators.not_in_op,
        operators.like_op,
        operators.not_like_op,
        operators.ilike_op,
        operators.not_ilike_op,
        operators.contains_op,
        operators.startswith_op,
        operators.endswith_op,
        operators.between_op,
    }
)


class SealedComparator(TypeDecorator.Comparator[T]):
    """Refuses value comparisons on a sealed column, which could never match.

    Every value is sealed with a fresh random nonce, so ``col == "x"`` would compare two
    different ciphertexts and silently find nothing. ``IS NULL`` still works; equality
    lookups go through the column's blind index.
    """

    def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
        is_null_test = op in (operators.eq, operators.ne) and other and other[0] is None
        if op in _VALUE_OPERATORS and not is_null_test:
            col = self.expr
            table = getattr(getattr(col, "table", None), "name", None)
            name = f"{table}.{col.key}" if table else str(getattr(col, "key", "column"))
            raise UnsearchableColumnError(
                f"{name} is encrypted with random nonces, so comparing its values cannot "
                "match; compare its blind index instead (or decrypt and filter in Python)"
            )
        return super().operate(op, *other, **kwargs)


class Protected(TypeDecorator[T]):
    """Base of the encrypted, shredded and blind-index types (stored as binary)."""

    impl = LargeBinary
    cache_ok = True
    protection: ClassVar[str] = "encrypted"

    def __init__(self, context: str | None = None) -> None:
        super().__init__()
        self.context = context
        self.explicit_context = context is not None

    @property
    def table_column(self) -> tuple[str | None, str | None]:
        if self.context is None:
            return None, None
        table, _, column = self.context.partition(".")
        return table, column

    def context_bytes(self) -> bytes:
        if self.context is None:
            raise CryptoError(
                f"{type(self).__name__} is not attached to a table column; "
                "pass context='table.column'"
            )
        return self.context.encode()

    def keyring(self, dialect: Dialect) -> Keyring:
        table, column = self.table_column
        return bound_keyring(dialect, table, column)

    def open_data(self, keyring: Keyring, value: bytes, ctx: bytes) -> bytes:
        """Open a data-key envelope, naming this column in every error."""
        table, column = self.table_column
        try:
            kind, key_id = aead.parse_header(value)
        except TamperedValueError:
            raise TamperedValueError(
                f"value in {self.context} is not a govern envelope (plaintext or truncated)",
                table=table,
                column=column,
            ) from None
        if kind != aead.DATA:
            raise TamperedValueError(
                f"value in {self.context} is sealed by subject key {key_id}, "
                "not a data key: copied from a shredded column",
                table=table,
                column=column,
                key_id=key_id,
            )
        cipher = keyring.data_cipher(key_id, table, column)
        out: bytes = cipher.open(value, ctx)
        return out


def _attach_context(column: Any, table: Any) -> None:
    typ = column.type
    if getattr(type(typ), "protection", None) is None or not isinstance(table, Table):
        return
    source = getattr(typ, "source", None) or column.name
    context = f"{table.name}.{source}"
    if typ.context is None:
        typ.context = context
    elif typ.context != context and not getattr(typ, "explicit_context", False):
        copy = typ.copy()
        copy.context = context
        column.type = copy


event.listen(Column, "after_parent_attach", _attach_context)


def as_bytes(value: Any) -> bytes:
    """Drivers hand back bytes, memoryview or bytearray for binary columns."""
    return value if isinstance(value, bytes) else bytes(value)


# Drivers that bind ``bytes`` as a binary value themselves (sqlite3: BLOB, psycopg 3: bytea).
_NATIVE_BYTES_DRIVERS = frozenset({"pysqlite", "psycopg"})


def binary_binder(typ: TypeDecorator[Any], dialect: Dialect) -> Any:
    """The impl's ``LargeBinary`` bind processor, or None where the driver takes bytes as is.

    ``LargeBinary`` wraps every value in ``dbapi.Binary`` (a ``memoryview`` on sqlite3, a
    wrapper object on psycopg), one extra allocation per value that these drivers do not
    need: they store the same bytes either way.
    """
    if dialect.driver in _NATIVE_BYTES_DRIVERS:
        return None
    return typ.impl_instance.bind_processor(dialect)
