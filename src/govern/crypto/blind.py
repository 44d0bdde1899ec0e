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

import hmac

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


class BlindIndexer:
    """Per-column HMAC keys derived once from the root key, then reused."""

    __slots__ = ("_keys", "_macs", "_root")

    def __init__(self, root: bytes) -> None:
        self._root = root
        self._keys: dict[bytes, bytes] = {}
        self._macs: dict[bytes, hmac.HMAC] = {}

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

    def mac_for(self, context: bytes) -> hmac.HMAC:
        """The keyed HMAC-SHA256 of column ``context`` before any data: copy it, then update.

        Copying the keyed state is cheaper than keying a new HMAC (or ``hmac.digest``, which
        looks the hash up by name) for every value.
        """
        mac = self._macs.get(context)
        if mac is None:
            mac = self._macs[context] = hmac.new(self.key_for(context), digestmod="sha256")
        return mac

    def digest(self, context: bytes, value: bytes, bits: int) -> bytes:
        """The truncated HMAC of ``value`` for column ``context``."""
        h = self.mac_for(context).copy()
        h.update(value)
        return h.digest()[: bits // 8]
