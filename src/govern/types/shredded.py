"""Crypto-shredded columns: sealed under a per-subject key, unreadable once it is destroyed.

For high-volume, append-only personal data (analytics events, IP addresses, user agents)
that cannot be hunted down row by row: :func:`govern.keys.shred_subject` deletes the
subject's key, and every copy of every value sealed under it (replicas, dumps, backups)
becomes noise. Reading such a value gives a :class:`Shredded` marker, not an exception::

    class PageView(Base):
        subject_id: Mapped[uuid.UUID | None]
        url: Mapped[str | Shredded] = mapped_column(ShreddedString(subject="subject_id"))

Values are sealed when an ORM ``Session`` flushes (the subject's key is created on first
use); rows without a subject are sealed under the primary data key instead.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from sqlalchemy.engine import Dialect

from govern.crypto import aead
from govern.errors import PlaintextRefusedError
from govern.types._protected import Protected, SealedComparator, T, as_bytes


class Shredded:
    """Stands in for a value whose subject key was destroyed. Falsy, never equal to data."""

    __slots__ = ("key_id",)

    def __init__(self, key_id: int) -> None:
        self.key_id = key_id

    def __repr__(self) -> str:
        return f"<shredded: subject key {self.key_id} destroyed>"

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Shredded) and other.key_id == self.key_id

    def __hash__(self) -> int:
        return hash(("shredded", self.key_id))


class ForSubject:
    """A value on its way to a shredded column, with the cipher chosen at flush time."""

    __slots__ = ("cipher", "value")

    def __init__(self, cipher: aead.Cipher, value: Any) -> None:
        self.cipher = cipher
        self.value = value


class _Shredded(Protected[T]):
    comparator_factory = SealedComparator

    protection: ClassVar[str] = "shredded"

    def __init__(self, subject: str = "subject_id", context: str | None = None) -> None:
        super().__init__(context)
        self.subject = subject

    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode(self, raw: bytes) -> Any:
        raise NotImplementedError

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, ForSubject):
            return value.cipher.seal(self.encode(value.value), self.context_bytes())
        table, column = self.table_column
        if isinstance(value, Shredded):
            raise PlaintextRefusedError(
                f"a shredded marker cannot be written back to {self.context}",
                table=table,
                column=column,
            )
        raise PlaintextRefusedError(
            f"{self.context} is crypto-shredded: write it through an ORM Session so that "
            "it is sealed under its subject's key",
            table=table,
            column=column,
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        raw = as_bytes(value)
        ctx = self.context_bytes()
        keyring = self.keyring(dialect)
        if raw[:1] == b"\x02" and len(raw) >= aead.OVERHEAD:
            _, key_id = aead.parse_header(raw)
            cipher = keyring.subject_cipher(key_id)
            if cipher is None:
                return Shredded(key_id)
            return self.decode(cipher.open(raw, ctx))
        return self.decode(self.open_data(keyring, raw, ctx))


class ShreddedString(_Shredded[str]):
    """A ``str`` sealed under its subject's key.

    ``ip_address: Mapped[str | Shredded | None] = mapped_column(ShreddedString())``
    """

    cache_ok = True

    @property
    def python_type(self) -> type[str]:
        return str

    def encode(self, value: Any) -> bytes:
        return str(value).encode("utf-8", "surrogatepass")

    def decode(self, raw: bytes) -> str:
        return raw.decode("utf-8", "surrogatepass")


class ShreddedJSON(_Shredded[Any]):
    """A JSON document sealed under its subject's key.

    ``properties: Mapped[dict[str, Any] | Shredded] = mapped_column(ShreddedJSON())``
    """

    cache_ok = True

    @property
    def python_type(self) -> type[dict[str, Any]]:
        return dict

    def encode(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )

    def decode(self, raw: bytes) -> Any:
        return json.loads(raw.decode("utf-8", "surrogatepass"))
