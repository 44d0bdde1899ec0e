"""Blind-index digests: the precomputed HMAC is HMAC-SHA256, so stored digests never change."""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from govern.crypto.blind import BlindIndexer, hmac_sha256


@given(st.binary(max_size=200), st.binary(max_size=300))
def test_precomputed_hmac_is_hmac_sha256_for_every_key_and_message(key: bytes, msg: bytes) -> None:
    assert hmac.digest(key, msg, "sha256") == hmac_sha256(key)(msg)


@given(st.binary(max_size=100), st.sampled_from([16, 32, 64, 128, 256]))
def test_digest_is_the_truncated_hmac_under_the_hkdf_column_key(msg: bytes, bits: int) -> None:
    root = bytes(range(32))
    column_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"govern blind index v1 t.email"
    ).derive(root)
    expected = hmac.digest(column_key, msg, "sha256")[: bits // 8]
    assert expected == BlindIndexer(root).digest(b"t.email", msg, bits)
