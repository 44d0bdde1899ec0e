"""SQLAlchemy column types, one per module.

Protected types (encrypted, blind index, token, shredded) need a keyring bound to the
engine: ``govern.keys.attach(engine, settings)``.
"""

from govern.types import _flush  # noqa: F401  (registers the Session hooks)
from govern.types.blind_index import BlindDigest, BlindIndex, lookup
from govern.types.encrypted import (
    EncryptedBytes,
    EncryptedDate,
    EncryptedDecimal,
    EncryptedJSON,
    EncryptedString,
)
from govern.types.shredded import Shredded, ShreddedJSON, ShreddedString
from govern.types.token import TokenString, is_token
from govern.types.utc import UTCDateTime

__all__ = [
    "BlindDigest",
    "BlindIndex",
    "EncryptedBytes",
    "EncryptedDate",
    "EncryptedDecimal",
    "EncryptedJSON",
    "EncryptedString",
    "Shredded",
    "ShreddedJSON",
    "ShreddedString",
    "TokenString",
    "UTCDateTime",
    "is_token",
    "lookup",
]
