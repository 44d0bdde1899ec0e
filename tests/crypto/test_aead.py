"""Envelopes: round trips, and every single-byte change, truncation or relabelling detected."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govern.crypto import aead
from govern.crypto.keyring import new_key
from govern.errors import TamperedValueError

KEY = new_key()
CIPHER = aead.Cipher(aead.DATA, 7, KEY)
CTX = b"subjects.email"


def _open(envelope: bytes) -> bytes:
    aead.parse_header(envelope)
    return CIPHER.open(envelope, CTX)


@given(st.binary(max_size=2000))
def test_every_byte_string_round_trips(plain: bytes) -> None:
    env = CIPHER.seal(plain, CTX)
    assert len(env) == len(plain) + aead.OVERHEAD
    assert aead.parse_header(env) == (aead.DATA, 7)
    assert plain == CIPHER.open(env, CTX)


@given(st.binary(min_size=0, max_size=200), st.data())
def test_any_single_byte_change_is_detected(plain: bytes, data: st.DataObject) -> None:
    env = bytearray(CIPHER.seal(plain, CTX))
    pos = data.draw(st.integers(0, len(env) - 1))
    env[pos] ^= data.draw(st.integers(1, 255))
    with pytest.raises(TamperedValueError):
        _open(bytes(env))


@given(st.binary(max_size=100), st.integers(0, 60))
def test_truncation_is_detected(plain: bytes, cut: int) -> None:
    env = CIPHER.seal(plain, CTX)
    short = env[: max(0, len(env) - 1 - cut)]
    with pytest.raises(TamperedValueError):
        _open(short)


def test_value_sealed_for_another_column_fails_naming_it() -> None:
    env = CIPHER.seal(b"ann@example.com", CTX)
    with pytest.raises(TamperedValueError) as err:
        CIPHER.open(env, b"subjects.phone")
    assert (err.value.table, err.value.column, err.value.key_id) == ("subjects", "phone", 7)
    assert "ann@" not in str(err.value)


def test_nonces_differ_so_equal_values_do_not_match() -> None:
    assert CIPHER.seal(b"same", CTX) != CIPHER.seal(b"same", CTX)


def test_plaintext_is_not_an_envelope() -> None:
    assert not aead.is_envelope(b"ann@example.com but long enough to pass the size")
    assert aead.is_envelope(CIPHER.seal(b"", CTX))


@given(st.lists(st.binary(max_size=300), max_size=40))
def test_seal_many_opens_like_seal(plains: list[bytes]) -> None:
    envs = CIPHER.seal_many(plains, CTX)
    assert [len(p) + aead.OVERHEAD for p in plains] == [len(e) for e in envs]
    assert all(aead.parse_header(e) == (aead.DATA, 7) for e in envs)
    assert plains == [CIPHER.open(e, CTX) for e in envs]


def test_seal_many_draws_a_fresh_nonce_per_value() -> None:
    envs = CIPHER.seal_many([b"same"] * 1000 + [b""], CTX)
    nonces = {e[aead.HEADER_LEN : aead.HEADER_LEN + aead.NONCE_LEN] for e in envs}
    assert len(nonces) == 1001
    assert nonces.isdisjoint(
        e[aead.HEADER_LEN : aead.HEADER_LEN + aead.NONCE_LEN]
        for e in CIPHER.seal_many([b"x"] * 1000, CTX)
    )


def test_seal_many_binds_the_column_and_the_header() -> None:
    (env,) = CIPHER.seal_many([b"ann@example.com"], CTX)
    with pytest.raises(TamperedValueError):
        CIPHER.open(env, b"subjects.phone")
    relabelled = aead.header(aead.DATA, 8) + env[aead.HEADER_LEN :]
    with pytest.raises(TamperedValueError):
        aead.Cipher(aead.DATA, 8, KEY).open(relabelled, CTX)
