"""Recognising hash schemes and verifying passwords against them."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govern.credentials import hash_password, identify, matches

BCRYPT_10 = "$2b$10$" + "a" * 53
BCRYPT_12 = "$2b$12$" + "a" * 53
WEAK_ARGON = "$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
ARGON2I = "$argon2i$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


def _pbkdf2(password: str, rounds: int) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), b"salt", rounds)
    return f"pbkdf2_sha256${rounds}$salt${base64.b64encode(digest).decode()}"


@pytest.mark.parametrize(
    ("stored", "name", "outdated"),
    [
        (hashlib.md5(b"x").hexdigest(), "md5", True),  # noqa: S324
        (hashlib.sha1(b"x").hexdigest(), "sha1", True),  # noqa: S324
        (hashlib.sha256(b"x").hexdigest(), "sha256", True),
        (BCRYPT_10, "bcrypt", True),
        (BCRYPT_12, "bcrypt", False),
        (WEAK_ARGON, "argon2id", True),
        (ARGON2I, "argon2i", True),
        (_pbkdf2("x", 1000), "pbkdf2_sha256", True),
        ("hunter2", "unknown", True),
    ],
)
def test_identify(stored: str, name: str, outdated: bool) -> None:
    scheme = identify(stored)
    assert (scheme.name, scheme.outdated is not None) == (name, outdated)


def test_new_hashes_are_current_argon2id() -> None:
    stored = hash_password("a long enough password")
    assert identify(stored).name == "argon2id"
    assert identify(stored).outdated is None


@settings(max_examples=10, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=5))
def test_argon2_verifies_only_its_password(password: str, suffix: str) -> None:
    stored = hash_password(password)
    assert matches(stored, password)
    assert not matches(stored, password + suffix)


@given(st.text(max_size=30), st.sampled_from(["md5", "sha1", "sha256"]))
def test_digests_verify(password: str, algo: str) -> None:
    stored = hashlib.new(algo, password.encode()).hexdigest()
    assert matches(stored, password)
    assert not matches(stored, password + "x")


def test_pbkdf2_and_plaintext_verify() -> None:
    assert matches(_pbkdf2("demo", 1000), "demo")
    assert not matches(_pbkdf2("demo", 1000), "demo1")
    assert matches("demo", "demo")
    assert not matches(BCRYPT_10, "demo")  # bcrypt is only identified, never verified


@pytest.mark.parametrize("prefix", [b"2a", b"2b"])
def test_bcrypt_verifies_only_its_password(prefix: bytes) -> None:
    import bcrypt

    stored = bcrypt.hashpw(b"changeme", bcrypt.gensalt(rounds=4, prefix=prefix)).decode()
    assert identify(stored).name == "bcrypt"
    assert matches(stored, "changeme")
    assert not matches(stored, "changeme2")
    assert not matches(BCRYPT_12, "changeme")  # well-formed shape, invalid salt: no match


def test_bcrypt_unsupported_prefix_is_no_match() -> None:
    assert not matches("$2x$04$" + "a" * 53, "changeme")
