"""Keys and primitives: envelopes, the keyring, blind indexes. No ORM imports here.

``bind(engine, keyring)`` is how protected column types find their keys (see
:mod:`govern.crypto.keyring`); ``govern.keys.attach`` loads a keyring from the database.
"""

from govern.crypto.aead import Cipher, is_envelope, parse_header
from govern.crypto.blind import BlindIndexer, false_positive_rate
from govern.crypto.keyring import (
    FileKeyProvider,
    KeyProvider,
    Keyring,
    StaticKeyProvider,
    bind,
    fingerprint,
)

__all__ = [
    "BlindIndexer",
    "Cipher",
    "FileKeyProvider",
    "KeyProvider",
    "Keyring",
    "StaticKeyProvider",
    "bind",
    "false_positive_rate",
    "fingerprint",
    "is_envelope",
    "parse_header",
]
