"""The keyring: unwrapped data keys by id, one primary, the KEK(s), and subject keys.

Key-encryption keys come from a :class:`KeyProvider` (environment and file providers are
built in; a host adds KMS or Vault by implementing the two methods). Data keys live in the
database wrapped by the KEK and are unwrapped once, when the keyring is loaded; each gets
one reusable :class:`~govern.crypto.aead.Cipher`. Nothing here derives a key per value.

A keyring reaches the column types through the engine, never through global state::

    keyring = govern.keys.attach(engine, settings)       # loads the data keys, binds them
    govern.crypto.bind(engine, keyring)                  # or bind one you built yourself
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag

from govern.crypto import aead
from govern.crypto.blind import BlindIndexer
from govern.errors import ConfigError, KeyringNotBoundError, UnknownKeyError, WrongKekError

SubjectLoader = Callable[[int], "tuple[str, bytes] | None"]
"""Returns ``(kek_fingerprint, wrapped)`` of the subject key with that id, ``None`` if shredded."""

_HOLDER_ATTR = "_govern_keyring_holder"


def fingerprint(kek: bytes) -> str:
    """A short public name of a KEK (HMAC of a constant under it), stored beside wrapped keys."""
    return hmac.digest(kek, b"govern kek fingerprint v1", "sha256")[:8].hex()


def decode_key(text: str, name: str) -> bytes:
    """Decode base64 key text; errors name the setting, never the text."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} must be base64 of 32 bytes") from None
    if len(key) != aead.KEY_LEN:
        raise ConfigError(f"{name} must decode to 32 bytes, got {len(key)}")
    return key


class KeyProvider(Protocol):
    """Where key-encryption keys come from. Implement this for KMS, Vault or an HSM."""

    def current(self) -> bytes:
        """The KEK that wraps new and rewrapped keys."""
        ...

    def previous(self) -> bytes | None:
        """The KEK being replaced, accepted only for unwrapping (or None)."""
        ...


class StaticKeyProvider:
    """KEKs given as bytes: what the environment provider and tests use."""

    def __init__(self, current: bytes, previous: bytes | None = None) -> None:
        self._current = current
        self._previous = previous

    def current(self) -> bytes:
        return self._current

    def previous(self) -> bytes | None:
        return self._previous


class FileKeyProvider:
    """The KEK read from a file holding base64 text (a mounted secret, chmod 600)."""

    def __init__(self, path: Path, previous: bytes | None = None) -> None:
        self._path = path
        self._previous = previous

    def current(self) -> bytes:
        try:
            text = self._path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            raise ConfigError(f"GOVERN_KEK_FILE {self._path} cannot be read") from None
        return decode_key(text, "GOVERN_KEK_FILE")

    def previous(self) -> bytes | None:
        return self._previous


class Keyring:
    """Unwrapped data keys by id with one primary, the blind-index root, and subject keys.

    Thread-safe for reads; subject keys are cached (LRU, ``subject_cache`` entries) because
    there is one per data subject.
    """

    def __init__(self, provider: KeyProvider, *, subject_cache: int = 10_000) -> None:
        self._kek = provider.current()
        self._previous = provider.previous()
        self._fingerprints = {fingerprint(self._kek): self._kek}
        if self._previous is not None:
            self._fingerprints[fingerprint(self._previous)] = self._previous
        self._data: dict[int, aead.Cipher] = {}
        # Fast paths for the column types: envelope header -> ``decrypt`` of that data key's
        # AESGCM, and the primary data key's cipher (None until a primary is added).
        self.by_header: dict[bytes, Any] = {}
        self.sealer: aead.Cipher | None = None
        self.primary_id: int | None = None
        self._blind: BlindIndexer | None = None
        self._subjects: OrderedDict[int, aead.Cipher] = OrderedDict()
        self._subject_cache = subject_cache
        self._lock = threading.Lock()
        self.subject_loader: SubjectLoader | None = None

    # KEK -----------------------------------------------------------------
    @property
    def kek_fingerprint(self) -> str:
        return fingerprint(self._kek)

    def wrap(self, key: bytes, purpose: str) -> bytes:
        """Wrap a key under the current KEK."""
        return aead.wrap(self._kek, key, purpose.encode())

    def unwrap(self, wrapped: bytes, kek_fp: str, purpose: str, key_id: int) -> bytes:
        """Unwrap with the KEK named by ``kek_fp`` (current or previous)."""
        kek = self._fingerprints.get(kek_fp)
        if kek is None:
            raise WrongKekError(
                f"{purpose} key {key_id} is wrapped by KEK {kek_fp}, which is neither "
                "GOVERN_KEK nor GOVERN_KEK_PREVIOUS",
                key_id=key_id,
            )
        try:
            return aead.unwrap(kek, wrapped, purpose.encode())
        except InvalidTag:
            raise WrongKekError(
                f"{purpose} key {key_id} does not unwrap with KEK {kek_fp} (damaged key row)",
                key_id=key_id,
            ) from None

    # data keys -----------------------------------------------------------
    def add_data_key(self, key_id: int, key: bytes, *, primary: bool = False) -> None:
        cipher = aead.Cipher(aead.DATA, key_id, key)
        self._data[key_id] = cipher
        self.by_header[aead.header(aead.DATA, key_id)] = cipher.aead.decrypt
        if primary:
            self.primary_id = key_id
            self.sealer = cipher
        elif key_id == self.primary_id:
            self.sealer = cipher

    def drop_data_key(self, key_id: int) -> None:
        """Forget a retired key (the primary cannot be dropped)."""
        if key_id != self.primary_id:
            self._data.pop(key_id, None)
            self.by_header.pop(aead.header(aead.DATA, key_id), None)

    def data_key_ids(self) -> list[int]:
        return sorted(self._data)

    def primary(self) -> aead.Cipher:
        """The cipher that seals new values."""
        if self.primary_id is None:
            raise UnknownKeyError("the keyring has no primary data key (govern keys rotate)")
        return self._data[self.primary_id]

    def data_cipher(self, key_id: int, table: str | None = None, column: str | None = None) -> Any:
        cipher = self._data.get(key_id)
        if cipher is None:
            where = f" in {table}.{column}" if table else ""
            raise UnknownKeyError(
                f"value{where} is sealed by data key {key_id}, which this keyring does not hold "
                "(retired, or a key of another database)",
                table=table,
                column=column,
                key_id=key_id,
            )
        return cipher

    # blind index ---------------------------------------------------------
    def set_blind_root(self, key: bytes) -> None:
        self._blind = BlindIndexer(key)

    @property
    def blind_or_none(self) -> BlindIndexer | None:
        """The blind indexer, or None when the keyring has no blind-index key."""
        return self._blind

    @property
    def blind(self) -> BlindIndexer:
        if self._blind is None:
            raise UnknownKeyError("the keyring has no blind-index key")
        return self._blind

    # subject keys --------------------------------------------------------
    def add_subject_key(self, key_id: int, key: bytes) -> aead.Cipher:
        cipher = aead.Cipher(aead.SUBJECT, key_id, key)
        with self._lock:
            self._subjects[key_id] = cipher
            self._subjects.move_to_end(key_id)
            while len(self._subjects) > self._subject_cache:
                self._subjects.popitem(last=False)
        return cipher

    def forget_subject_key(self, key_id: int) -> None:
        with self._lock:
            self._subjects.pop(key_id, None)

    def subject_cipher(self, key_id: int) -> aead.Cipher | None:
        """The subject key's cipher, loading it when needed; ``None`` once it was shredded."""
        with self._lock:
            cipher = self._subjects.get(key_id)
            if cipher is not None:
                self._subjects.move_to_end(key_id)
                return cipher
        if self.subject_loader is None:
            raise UnknownKeyError(
                f"subject key {key_id} is not cached and the keyring has no loader "
                "(bind it with govern.keys.attach)",
                key_id=key_id,
            )
        found = self.subject_loader(key_id)
        if found is None:
            return None
        fp, blob = found
        return self.add_subject_key(key_id, self.unwrap(blob, fp, "subject", key_id))


def new_key() -> bytes:
    """32 random bytes from the OS."""
    return os.urandom(aead.KEY_LEN)


class _Holder:
    __slots__ = ("keyring",)

    def __init__(self) -> None:
        self.keyring: Keyring | None = None


def holder(dialect: Any) -> _Holder:
    """The per-dialect slot the column types read the keyring from (created on first use)."""
    h = getattr(dialect, _HOLDER_ATTR, None)
    if h is None:
        h = _Holder()
        setattr(dialect, _HOLDER_ATTR, h)
    return h


def bind(engine: Any, keyring: Keyring | None) -> None:
    """Make ``engine``'s protected columns use ``keyring`` (``None`` unbinds)."""
    holder(engine.dialect).keyring = keyring


def bound_keyring(dialect: Any, table: str | None = None, column: str | None = None) -> Keyring:
    """The keyring bound to the dialect's engine, or :class:`KeyringNotBoundError`."""
    kr = holder(dialect).keyring
    if kr is None:
        where = f" {table}.{column}" if table else ""
        raise KeyringNotBoundError(
            f"protected column{where} used on an engine without a keyring: "
            "call govern.keys.attach(engine, settings) first",
            table=table,
            column=column,
        )
    return kr
