"""Password hashing: Argon2id for new hashes, and recognising the schemes of old ones.

New hashes use Argon2id with OWASP's minimum profile (19 MiB, 2 passes, 1 lane): strong
enough for production, and cheap enough that ``govern credentials scan`` can try a short
list of demo passwords against every account. Hosts wanting more cost pass their own
parameters; the scanner accepts anything at or above this profile.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

ARGON2_MEMORY_KIB = 19_456
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
BCRYPT_MIN_COST = 12
SCHEME = "argon2id"
PBKDF2_SHA256_MIN_ITERATIONS = 600_000

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_ARGON2 = re.compile(r"^\$(argon2(?:id|i|d))\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$")
_BCRYPT = re.compile(r"^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$")
_PBKDF2 = re.compile(r"^pbkdf2_sha256\$(\d+)\$")


def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher(
        time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM
    )


def hash_password(password: str) -> str:
    """An Argon2id hash (PHC string) of ``password``."""
    return _hasher().hash(password)


def random_password() -> str:
    """A new random password: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Scheme:
    """What a stored hash is, and why it is outdated (``None`` when it is fine)."""

    name: str
    outdated: str | None


def identify(stored: str, declared: str | None = None) -> Scheme:
    """Recognise the scheme of a stored hash from its format (not from what a row claims)."""
    m = _ARGON2.match(stored)
    if m:
        variant, mem, t = m.group(1), int(m.group(2)), int(m.group(3))
        if variant != "argon2id":
            return Scheme(variant, f"{variant} instead of argon2id")
        if mem < ARGON2_MEMORY_KIB or t < ARGON2_TIME_COST:
            return Scheme("argon2id", f"argon2id below m={ARGON2_MEMORY_KIB},t={ARGON2_TIME_COST}")
        return Scheme("argon2id", None)
    m = _BCRYPT.match(stored)
    if m:
        cost = int(m.group(1))
        return Scheme(
            "bcrypt",
            f"bcrypt cost {cost} below {BCRYPT_MIN_COST}" if cost < BCRYPT_MIN_COST else None,
        )
    m = _PBKDF2.match(stored)
    if m:
        rounds = int(m.group(1))
        low = rounds < PBKDF2_SHA256_MIN_ITERATIONS
        return Scheme("pbkdf2_sha256", f"pbkdf2 with {rounds} iterations" if low else None)
    if _HEX.match(stored):
        by_len = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
        name = by_len.get(len(stored), "hex digest")
        return Scheme(name, f"unsalted {name}")
    return Scheme(declared or "unknown", "unrecognised format (plaintext or a custom scheme)")


def matches(stored: str, password: str) -> bool:
    """Whether ``password`` verifies against ``stored``, for the schemes :func:`identify` knows.

    Argon2 verification costs one full hash (about 20 ms at govern's profile), bcrypt one
    at the stored cost (about 250 ms at cost 12); unsalted digests are compared in constant
    time; unknown formats are compared as plaintext.
    """
    if stored.startswith("$argon2"):
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return _hasher().verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    if _BCRYPT.match(stored):
        import bcrypt

        try:
            return bcrypt.checkpw(password.encode(), stored.encode())
        except ValueError:  # a prefix the library does not verify ($2x$), or a bad salt
            return False
    m = _PBKDF2.match(stored)
    if m:
        parts = stored.split("$")
        if len(parts) != 4:
            return False
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), parts[2].encode(), int(parts[1]))
        import base64

        return hmac.compare_digest(base64.b64encode(digest).decode(), parts[3])
    if _HEX.match(stored):
        algo = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}.get(len(stored))
        if algo is None:
            return False
        hexed = hashlib.new(algo, password.encode()).hexdigest()
        return hmac.compare_digest(hexed, stored.lower())
    return hmac.compare_digest(stored.encode(), password.encode())
