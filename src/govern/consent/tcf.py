"""Shape checks for IAB TCF v2 TC strings (stored verbatim, never rewritten)."""

from __future__ import annotations

import re

from govern.errors import InvalidTCFStringError

_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
CORE_BITS = 213
"""Bits of the fixed fields of a v2 core segment, up to and including PublisherCC."""


def _bits(segment: str) -> str:
    return "".join(format(_B64URL.index(c), "06b") for c in segment)


def validate(tc_string: str) -> str:
    """Return ``tc_string`` unchanged if it is shaped like a TCF v2 TC string, else raise.

    Checks: base64url segments joined by dots; a core segment of version 2 long enough for
    its fixed fields with a consent language of two letters; later segments of type 1-3.
    """
    segments = tc_string.split(".")
    if not all(_SEGMENT.match(s) for s in segments):
        raise InvalidTCFStringError("TCF string must be base64url segments joined by dots")
    core = _bits(segments[0])
    if len(core) < CORE_BITS or int(core[:6], 2) != 2:
        raise InvalidTCFStringError("TCF string core segment is not a TCF v2 core segment")
    lang = core[108:120]
    if int(lang[:6], 2) > 25 or int(lang[6:], 2) > 25:
        raise InvalidTCFStringError("TCF string core segment has no valid consent language")
    for seg in segments[1:]:
        if int(_bits(seg)[:3], 2) not in (1, 2, 3):
            raise InvalidTCFStringError("TCF string has a segment of unknown type")
    return tc_string


def encode_core(*, created_ds: int = 16_000_000_000, language: str = "EN") -> str:
    """A minimal, valid v2 core segment (for tests and examples): no consents, no vendors."""
    fields = [
        (2, 6),
        (created_ds, 36),
        (created_ds, 36),
        (7, 12),
        (1, 12),
        (1, 6),
        (ord(language[0]) - 65, 6),
        (ord(language[1]) - 65, 6),
        (100, 12),
        (2, 6),
        (0, 1),
        (0, 1),
        (0, 12),
        (0, 24),
        (0, 24),
        (0, 1),
        (ord("A") - 65, 6),
        (ord("A") - 65, 6),
        (0, 16),  # MaxVendorId of the vendor consent section: none
        (0, 1),
        (0, 16),  # MaxVendorId of the legitimate-interest section: none
        (0, 1),
        (0, 12),  # NumPubRestrictions
    ]
    bits = "".join(format(v, f"0{n}b") for v, n in fields)
    bits += "0" * (-len(bits) % 6)
    return "".join(_B64URL[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))
