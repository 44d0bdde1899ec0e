"""Blind indexes: keyed, truncated HMACs that make encrypted columns searchable by equality.

Each column gets its own HMAC-SHA256 key, derived with HKDF from the keyring's blind-index
root key and ``"table.column"``, so equal values in two columns do not match each other.
Digests are truncated to ``bits`` (a multiple of 8). Truncation is deliberate: with ``N``
distinct values in a column, a lookup returns on average ``N / 2**bits`` unrelated rows
besides the real match (the false-positive rate), for example 0.00023 rows at 32 bits and
one million values, 5e-14 at 64 bits. Fewer bits leak less about which rows are equal;
:func:`govern.keys.lookup` decrypts the candidates and drops the false positives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_BITS = 16
MAX_BITS = 256


def check_bits(bits: int) -> int:
    """Validate a digest width: a multiple of 8 between 16 and 256."""
    if bits % 8 or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"blind index bits must be a multiple of 8 in [16, 256], got {bits}")
    return bits


def false_positive_rate(distinct_values: int, bits: int) -> float:
    """Expected unrelated rows returned by one lookup in a column of ``distinct_values``."""
    return float(distinct_values) / float(2**bits)


_BLOCK = 64  # SHA-256 block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_sha256(key: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 under ``key`` as a function of the message (RFC 2104, full 32 bytes).

    The padded-key states are hashed once; each message then costs two copies of those
    states and two short hashes, about half of ``hmac.new(...).copy()`` and a third of
    ``hmac.digest``. Same output as :func:`hmac.digest` (a test checks it for all inputs).
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    block = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(block.translate(_IPAD)).copy
    outer = hashlib.sha256(block.translate(_OPAD)).copy

    def mac(message: bytes) -> bytes:
        h = inner()
        h.update(message)
        o = outer()
        o.update(h.digest())
        return o.digest()

    return mac


class BlindIndexer:
    """Per-column HMAC keys derived once from the root key, then reused."""

    __slots__ = ("_keys", "_macs", "_root")

    def __init__(self, root: bytes) -> None:
        self._root = root
        self._keys: dict[bytes, bytes] = {}
        self._macs: dict[bytes, Callable[[bytes], bytes]] = {}

    def key_for(self, context: bytes) -> bytes:
        key = self._keys.get(context)
        if key is None:
            hkdf = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=b"govern blind index v1 " + context,
            )
            key = self._keys[context] = hkdf.derive(self._root)
        return key

    def mac_for(self, context: bytes) -> Callable[[bytes], bytes]:
        """The full HMAC-SHA256 of column ``context``, keyed once (see :func:`hmac_sha256`)."""
        mac = self._macs.get(context)
        if mac is None:
            mac = self._macs[context] = hmac_sha256(self.key_for(context))
        return mac

    def digest(self, context: bytes, value: bytes, bits: int) -> bytes:
        """The truncated HMAC of ``value`` for column ``context``."""
        return self.mac_for(context)(value)[: bits // 8]
