"""AES-256-GCM envelopes: the bytes that protected columns store.

Layout (33 bytes of overhead)::

    +---------+-------------+-----------+---------------------------+
    | kind 1B | key id 4B BE| nonce 12B | ciphertext + 16B GCM tag  |
    +---------+-------------+-----------+---------------------------+

``kind`` is :data:`DATA` (sealed by a data key, id in ``data_keys``) or :data:`SUBJECT`
(sealed by one subject's shredding key, id in ``subject_keys``). The associated data is
the 5-byte header followed by ``"table.column"``: a value copied into another column, or
re-labelled with another key id, fails to open. Nonces are 96 random bits per value; with
one data key sealing up to 2**32 values the collision risk stays below 2**-32 (NIST
SP 800-38D), which is why ``govern keys rotate`` exists.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from govern.errors import TamperedValueError

DATA = 0x01
SUBJECT = 0x02
KINDS = (DATA, SUBJECT)
HEADER_LEN = 5
NONCE_LEN = 12
TAG_LEN = 16
OVERHEAD = HEADER_LEN + NONCE_LEN + TAG_LEN
KEY_LEN = 32
_HEADER = struct.Struct(">BI")


def header(kind: int, key_id: int) -> bytes:
    """The 5-byte header naming the key kind and id (also used to filter in SQL)."""
    return _HEADER.pack(kind, key_id)


def parse_header(envelope: bytes) -> tuple[int, int]:
    """``(kind, key_id)`` of an envelope; raises :class:`TamperedValueError` when malformed."""
    if len(envelope) < OVERHEAD or envelope[0] not in KINDS:
        raise TamperedValueError("value is not a govern envelope (truncated or plaintext)")
    kind, key_id = _HEADER.unpack_from(envelope)
    return int(kind), int(key_id)


def is_envelope(value: object) -> bool:
    """Whether ``value`` is shaped like an envelope (does not prove it opens)."""
    return isinstance(value, bytes | bytearray | memoryview) and (
        len(value) >= OVERHEAD and value[0] in KINDS
    )


class Cipher:
    """One key's AESGCM object plus its header, reused for every value it seals or opens."""

    __slots__ = ("_header", "aead", "key_id", "kind")

    def __init__(self, kind: int, key_id: int, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise ValueError("AES-256-GCM keys are 32 bytes")
        self.kind = kind
        self.key_id = key_id
        self.aead = AESGCM(key)
        self._header = header(kind, key_id)

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt ``plaintext`` for ``context`` (``b"table.column"``) under a fresh nonce."""
        nonce = os.urandom(NONCE_LEN)
        hdr = self._header
        return hdr + nonce + self.aead.encrypt(nonce, plaintext, hdr + context)

    def sealer(self, context: bytes) -> Callable[[bytes], bytes]:
        """``seal`` for one ``context``, with the associated data built once.

        Each call still draws a fresh random nonce; only the header and associated data,
        which are the same for every value of a column, are precomputed.
        """
        hdr = self._header
        aad = hdr + context
        encrypt = self.aead.encrypt
        urandom = os.urandom

        def seal(plaintext: bytes) -> bytes:
            nonce = urandom(NONCE_LEN)
            return hdr + nonce + encrypt(nonce, plaintext, aad)

        return seal

    def seal_many(self, plaintexts: Sequence[bytes], context: bytes) -> list[bytes]:
        """``seal`` for many values of one ``context``: what bulk loaders write.

        Each value still gets its own fresh random 96-bit nonce; they are drawn from the
        operating system's CSPRNG in one call (one ``os.urandom(12 * n)`` sliced into
        ``n`` nonces) instead of ``n`` calls, and the envelopes are byte-for-byte what
        :meth:`seal` returns for the same nonce.
        """
        hdr = self._header
        aad = hdr + context
        encrypt = self.aead.encrypt
        pool = os.urandom(NONCE_LEN * len(plaintexts))
        return [
            hdr + (nonce := pool[at : at + NONCE_LEN]) + encrypt(nonce, plaintext, aad)
            for at, plaintext in zip(range(0, len(pool), NONCE_LEN), plaintexts, strict=True)
        ]

    def open(self, envelope: bytes, context: bytes) -> bytes:
        """Decrypt an envelope sealed by this key for ``context``."""
        try:
            return self.aead.decrypt(
                envelope[HEADER_LEN : HEADER_LEN + NONCE_LEN],
                envelope[HEADER_LEN + NONCE_LEN :],
                envelope[:HEADER_LEN] + context,
            )
        except InvalidTag:
            where = context.decode()
            table, _, column = where.partition(".")
            raise TamperedValueError(
                f"value in {where} under key {self.key_id} does not authenticate: "
                "tampered, truncated or sealed for another column",
                table=table,
                column=column,
                key_id=self.key_id,
            ) from None


def wrap(kek: bytes, key: bytes, purpose: bytes) -> bytes:
    """Seal a key under the KEK (``nonce || ciphertext+tag``); ``purpose`` is bound as AAD."""
    nonce = os.urandom(NONCE_LEN)
    return nonce + AESGCM(kek).encrypt(nonce, key, b"govern.wrap:" + purpose)


def unwrap(kek: bytes, wrapped: bytes, purpose: bytes) -> bytes:
    """Open a wrapped key; raises ``InvalidTag`` for the wrong KEK (callers name the key)."""
    return AESGCM(kek).decrypt(wrapped[:NONCE_LEN], wrapped[NONCE_LEN:], b"govern.wrap:" + purpose)
