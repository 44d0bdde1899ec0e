"""Keyring: KEK wrapping, the previous KEK, providers, blind indexes. Errors leak nothing."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govern.crypto.blind import BlindIndexer, check_bits, false_positive_rate
from govern.crypto.keyring import FileKeyProvider, Keyring, StaticKeyProvider, new_key
from govern.errors import ConfigError, UnknownKeyError, WrongKekError

OLD, NEW = new_key(), new_key()


def test_wrapped_key_opens_with_its_kek_only() -> None:
    old = Keyring(StaticKeyProvider(OLD))
    dek = new_key()
    wrapped = old.wrap(dek, "data")
    assert dek == old.unwrap(wrapped, old.kek_fingerprint, "data", 3)
    other = Keyring(StaticKeyProvider(NEW))
    with pytest.raises(WrongKekError) as err:
        other.unwrap(wrapped, old.kek_fingerprint, "data", 3)
    assert err.value.key_id == 3
    text = str(err.value)
    assert "key 3" in text
    for secret in (OLD, NEW, dek):
        assert base64.b64encode(secret).decode() not in text
        assert secret.hex() not in text


def test_previous_kek_is_accepted_for_unwrapping() -> None:
    old = Keyring(StaticKeyProvider(OLD))
    wrapped = old.wrap(b"k" * 32, "data")
    changing = Keyring(StaticKeyProvider(NEW, previous=OLD))
    assert changing.unwrap(wrapped, old.kek_fingerprint, "data", 1) == b"k" * 32
    assert changing.kek_fingerprint != old.kek_fingerprint


def test_damaged_wrapped_key_is_a_typed_error() -> None:
    kr = Keyring(StaticKeyProvider(OLD))
    wrapped = bytearray(kr.wrap(new_key(), "data"))
    wrapped[-1] ^= 1
    with pytest.raises(WrongKekError, match="damaged"):
        kr.unwrap(bytes(wrapped), kr.kek_fingerprint, "data", 9)


def test_unknown_data_key_names_table_column_and_id() -> None:
    kr = Keyring(StaticKeyProvider(OLD))
    kr.add_data_key(1, new_key(), primary=True)
    with pytest.raises(UnknownKeyError) as err:
        kr.data_cipher(5, "subjects", "email")
    assert (err.value.table, err.value.column, err.value.key_id) == ("subjects", "email", 5)


def test_file_provider_reads_base64_and_refuses_garbage(tmp_path: Path) -> None:
    good = tmp_path / "kek"
    good.write_text(base64.b64encode(NEW).decode() + "\n")
    assert FileKeyProvider(good).current() == NEW
    bad = tmp_path / "bad"
    bad.write_text("not base64 !!")
    with pytest.raises(ConfigError, match="GOVERN_KEK_FILE"):
        FileKeyProvider(bad).current()
    with pytest.raises(ConfigError, match="cannot be read"):
        FileKeyProvider(tmp_path / "missing").current()


@given(st.text(max_size=50), st.text(max_size=50))
def test_blind_index_is_per_column_and_deterministic(a: str, b: str) -> None:
    idx = BlindIndexer(b"r" * 32)
    da = idx.digest(b"t.email", a.encode("utf-8", "surrogatepass"), 64)
    assert len(da) == 8
    assert da == idx.digest(b"t.email", a.encode("utf-8", "surrogatepass"), 64)
    if a != b:
        assert da != idx.digest(b"t.email", b.encode("utf-8", "surrogatepass"), 64)
    assert da != idx.digest(b"t.phone", a.encode("utf-8", "surrogatepass"), 64)


@pytest.mark.parametrize("bits", [0, 8, 12, 264])
def test_blind_index_bits_are_validated(bits: int) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        check_bits(bits)


def test_false_positive_rate_is_documented_formula() -> None:
    assert false_positive_rate(1_000_000, 32) == pytest.approx(0.000232, rel=0.01)
