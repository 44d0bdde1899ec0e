"""Encrypted columns: AES-256-GCM envelopes under the keyring's primary data key.

Values are sealed with a fresh random nonce each (no deterministic mode: equal values give
different ciphertexts) and bound to their ``table.column``. Reads accept every data key the
keyring holds, so values sealed before ``govern keys rotate`` stay readable::

    class Subject(Base):
        email: Mapped[str | None] = mapped_column(EncryptedString(), info=personal(...))
        address: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON())

The engine must carry a keyring: ``govern.keys.attach(engine, settings)``.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy.engine import Dialect

from govern.crypto.aead import HEADER_LEN, NONCE_LEN, OVERHEAD
from govern.crypto.keyring import holder
from govern.types._protected import Protected, SealedComparator, T, as_bytes, binary_binder

BODY = HEADER_LEN + NONCE_LEN


class _Encrypted(Protected[T]):
    comparator_factory = SealedComparator

    def encode(self, value: T) -> bytes:
        raise NotImplementedError

    def decode(self, raw: bytes) -> T:
        raise NotImplementedError

    def process_bind_param(self, value: T | None, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        ctx = self.context_bytes()
        return self.keyring(dialect).primary().seal(self.encode(value), ctx)

    def process_result_value(self, value: Any, dialect: Dialect) -> T | None:
        if value is None:
            return None
        ctx = self.context_bytes()
        return self.decode(self.open_data(self.keyring(dialect), as_bytes(value), ctx))

    def bind_processor(self, dialect: Dialect) -> Any:
        """A tight per-value path: the primary key's sealer for this column, built once per key.

        Same envelopes as ``process_bind_param`` (a fresh random nonce per value, the header
        and ``table.column`` as associated data); a missing keyring or primary key takes the
        slow path, which raises the typed error. UTF-8 text is encoded inline (no method call
        per value) unless a subclass overrides ``encode``.
        """
        slot = holder(dialect)
        encode = self.encode
        text = _is_text_codec(type(self))
        slow = self.process_bind_param
        impl = binary_binder(self, dialect)
        state: list[Any] = [None]  # (primary cipher, its sealer for this column), swapped whole

        def process(value: T | None) -> Any:
            if value is None:
                return None
            keyring = slot.keyring
            cipher = None if keyring is None else keyring.sealer
            if cipher is None:
                sealed = slow(value, dialect)
            else:
                current = state[0]
                if current is None or current[0] is not cipher:
                    current = state[0] = (cipher, cipher.sealer(self.context_bytes()))
                if text and type(value) is str:
                    sealed = current[1](value.encode("utf-8", "surrogatepass"))  # type: ignore[attr-defined]
                else:
                    sealed = current[1](encode(value))
            return sealed if impl is None else impl(sealed)

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """A tight per-row path: header -> cached AESGCM -> decrypt; errors take the slow path.

        Reading is the hot path of every ORM query, so this avoids the per-value method calls
        of ``process_result_value`` (UTF-8 text is decoded inline, bytes returned as they
        are) while giving the same results and the same typed errors.
        """
        slot = holder(dialect)
        ctx = self.context_bytes()
        decode = self.decode
        text = _is_text_codec(type(self))
        raw = _is_raw_codec(type(self))
        slow = self.process_result_value

        def process(value: Any) -> T | None:
            if value is None:
                return None
            keyring = slot.keyring
            if keyring is not None and type(value) is bytes and len(value) >= OVERHEAD:
                head = value[:HEADER_LEN]
                decrypt = keyring.by_header.get(head)
                if decrypt is not None:
                    try:
                        plain = decrypt(value[HEADER_LEN:BODY], value[BODY:], head + ctx)
                    except InvalidTag:
                        return slow(value, dialect)  # raises the typed, named error
                    if text:
                        return plain.decode("utf-8", "surrogatepass")  # type: ignore[no-any-return]
                    return plain if raw else decode(plain)
            return slow(value, dialect)

        return process


class EncryptedString(_Encrypted[str]):
    """A ``str`` stored encrypted. Every Python string round-trips, lone surrogates included.

    ``email: Mapped[str] = mapped_column(EncryptedString())``
    """

    cache_ok = True

    @property
    def python_type(self) -> type[str]:
        return str

    def encode(self, value: str) -> bytes:
        return value.encode("utf-8", "surrogatepass")

    def decode(self, raw: bytes) -> str:
        return raw.decode("utf-8", "surrogatepass")


class EncryptedBytes(_Encrypted[bytes]):
    """``bytes`` stored encrypted.

    ``document: Mapped[bytes] = mapped_column(EncryptedBytes())``
    """

    cache_ok = True

    @property
    def python_type(self) -> type[bytes]:
        return bytes

    def encode(self, value: bytes) -> bytes:
        return bytes(value)

    def decode(self, raw: bytes) -> bytes:
        return raw


class EncryptedJSON(_Encrypted[Any]):
    """A JSON document (dict, list, str, number, bool) stored encrypted as one value.

    ``address: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON())``
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


class EncryptedDate(_Encrypted[dt.date]):
    """A ``datetime.date`` stored encrypted (ISO text inside the envelope).

    ``birth_date: Mapped[dt.date | None] = mapped_column(EncryptedDate())``
    """

    cache_ok = True

    @property
    def python_type(self) -> type[dt.date]:
        return dt.date

    def encode(self, value: dt.date) -> bytes:
        return value.isoformat().encode()

    def decode(self, raw: bytes) -> dt.date:
        return dt.date.fromisoformat(raw.decode())


class EncryptedDecimal(_Encrypted[Decimal]):
    """A ``Decimal`` amount stored encrypted (exact text inside the envelope).

    ``balance: Mapped[Decimal] = mapped_column(EncryptedDecimal())``
    """

    cache_ok = True

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal

    def encode(self, value: Decimal) -> bytes:
        return str(Decimal(value)).encode()

    def decode(self, raw: bytes) -> Decimal:
        return Decimal(raw.decode())


def _is_text_codec(cls: type[Any]) -> bool:
    """Whether ``cls`` stores UTF-8 text as ``EncryptedString`` does (inlined on hot paths)."""
    return cls.encode is EncryptedString.encode and cls.decode is EncryptedString.decode


def _is_raw_codec(cls: type[Any]) -> bool:
    """Whether ``cls`` stores bytes as they are, as ``EncryptedBytes`` does."""
    return cls.decode is EncryptedBytes.decode
