"""Canonical record content, the per-subject hash chain and checkpoint messages.

A record's hash is ``sha256(canonical(record) || prev_hash)``. The canonical form is a
JSON array in a fixed field order with UTC ISO-8601 timestamps, so that SQLite and
PostgreSQL rows hash alike. Sealed values (source IP, user agent) enter the hash as the
SHA-256 of their ciphertext: erasing a subject's key leaves every chain verifiable.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import Any

HASH_VERSION = 1
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_json(value: Any) -> str:
    """Compact JSON with one shared encoder (building an encoder per call is costly)."""
    return _ENCODE(value)


@functools.lru_cache(maxsize=4096)
def _ts(value: dt.datetime | None) -> str | None:  # cached: a batch shares a few timestamps
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


_STR = json.encoder.encode_basestring  # the string encoder of ``ensure_ascii=False`` (C)


def _j(value: str | None) -> str:
    return "null" if value is None else _STR(value)


def _int(value: int) -> str:
    if type(value) is not int:  # bool, str...: not the fixed shape (JSON would differ)
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return int.__repr__(value)


def canonical_tail(
    *,
    purpose: str,
    event: str,
    notice: str,
    notice_version: int,
    locale: str,
    legal_basis: str,
    method: str,
    jurisdiction: str | None,
    controller: str,
    occurred_at: dt.datetime,
    recorded_at: dt.datetime,
    expires_at: dt.datetime | None,
    tcf_string: str | None,
    idempotency_key: str | None,
    sealed_digest: str | None = None,
) -> str:
    """The canonical JSON after the record id (``,purpose,...,sealed_digest]``).

    Records of a batch share most of it; :func:`canonical_join` puts the subject, sequence
    and record id in front. Hand-rolled for the fixed shape: exactly what
    ``json.dumps(fields, separators=(",", ":"), ensure_ascii=False)`` writes (a test
    compares the two), without the generic encoder's per-value dispatch.
    """
    return (
        f",{_STR(purpose)},{_STR(event)},{_STR(notice)},{_int(notice_version)},"
        f"{_STR(locale)},{_STR(legal_basis)},{_STR(method)},{_j(jurisdiction)},"
        f"{_STR(controller)},{_j(_ts(occurred_at))},{_j(_ts(recorded_at))},"
        f"{_j(_ts(expires_at))},{_j(tcf_string)},{_j(idempotency_key)},{_j(sealed_digest)}]"
    )


_HEAD = f"[{HASH_VERSION},"


def canonical_join(subject_ref: str, seq: int, record_id: str, tail: str) -> bytes:
    """The full canonical bytes from a record's own fields and its :func:`canonical_tail`."""
    return f"{_HEAD}{_STR(subject_ref)},{_int(seq)},{_STR(record_id)}{tail}".encode()


def canonical(
    *,
    subject_ref: str,
    seq: int,
    record_id: uuid.UUID,
    purpose: str,
    event: str,
    notice: str,
    notice_version: int,
    locale: str,
    legal_basis: str,
    method: str,
    jurisdiction: str | None,
    controller: str,
    occurred_at: dt.datetime,
    recorded_at: dt.datetime,
    expires_at: dt.datetime | None,
    tcf_string: str | None,
    idempotency_key: str | None,
    sealed_digest: str | None = None,
) -> bytes:
    """The bytes a record's hash covers (everything but the chain link itself).

    The compact JSON array ``[HASH_VERSION, subject_ref, seq, str(record_id), purpose,
    event, notice, notice_version, locale, legal_basis, method, jurisdiction, controller,
    occurred_at, recorded_at, expires_at, tcf_string, idempotency_key, sealed_digest]``
    (timestamps as UTC ISO-8601 with microseconds, non-ASCII kept as UTF-8).
    """
    tail = canonical_tail(
        purpose=purpose,
        event=event,
        notice=notice,
        notice_version=notice_version,
        locale=locale,
        legal_basis=legal_basis,
        method=method,
        jurisdiction=jurisdiction,
        controller=controller,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        expires_at=expires_at,
        tcf_string=tcf_string,
        idempotency_key=idempotency_key,
        sealed_digest=sealed_digest,
    )
    return canonical_join(subject_ref, seq, str(record_id), tail)


def sealed_digest(
    subject_id: uuid.UUID | None, source_ip: bytes | None, user_agent: bytes | None
) -> str | None:
    """What the hash covers of the sealed columns: SHA-256 of their envelopes, never plaintext.

    ``None`` when none is stored (records without them hash as before); otherwise the
    SHA-256 of the JSON array ``[key owner uuid | null, hex(source_ip) | null,
    hex(user_agent) | null]``. The envelopes outlive the owner's key, so a shredded record
    still verifies.
    """
    if subject_id is None and source_ip is None and user_agent is None:
        return None
    doc = [None if subject_id is None else str(subject_id)]
    doc += [None if v is None else bytes(v).hex() for v in (source_ip, user_agent)]
    return hashlib.sha256(_ENCODE(doc).encode()).hexdigest()


def link(content: bytes, prev_hash: str | None) -> str:
    """The record hash: its canonical content chained to the previous record's hash."""
    h = hashlib.sha256(content)
    h.update(b"|")
    h.update((prev_hash or "").encode())
    return h.hexdigest()


def heads_digest(heads: Iterable[tuple[str, int, str]]) -> str:
    """SHA-256 over ``(subject_ref, seq, hash)`` lines in subject order."""
    h = hashlib.sha256()
    for subject_ref, seq, head in sorted(heads):
        h.update(json.dumps([subject_ref, seq, head], separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def checkpoint_message(
    *,
    checkpoint_id: int,
    created_at: dt.datetime,
    record_count: int,
    head_count: int,
    heads_digest: str,
    prev_digest: str | None,
) -> bytes:
    """The bytes a checkpoint's Ed25519 signature covers."""
    body = {
        "alg": "Ed25519",
        "checkpoint": checkpoint_id,
        "created_at": _ts(created_at),
        "head_count": head_count,
        "heads_digest": heads_digest,
        "prev": prev_digest,
        "record_count": record_count,
        "v": HASH_VERSION,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def message_digest(message: bytes, signature: str) -> str:
    """What the next checkpoint links to: the previous message and its signature."""
    return hashlib.sha256(message + b"|" + signature.encode()).hexdigest()
