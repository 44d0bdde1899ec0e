"""Canonical record content, the per-subject hash chain and checkpoint messages.

A record's hash is ``sha256(canonical(record) || prev_hash)``. The canonical form is a
JSON array in a fixed field order with UTC ISO-8601 timestamps, so that SQLite and
PostgreSQL rows hash alike. Sealed values (source IP, user agent) enter the hash as the
SHA-256 of their ciphertext: erasing a subject's key leaves every chain verifiable.
"""

from __future__ import annotations

import datetime as dt
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


def _ts(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


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
    """The bytes a record's hash covers (everything but the chain link itself)."""
    fields: list[Any] = [
        HASH_VERSION,
        subject_ref,
        seq,
        str(record_id),
        purpose,
        event,
        notice,
        notice_version,
        locale,
        legal_basis,
        method,
        jurisdiction,
        controller,
        _ts(occurred_at),
        _ts(recorded_at),
        _ts(expires_at),
        tcf_string,
        idempotency_key,
        sealed_digest,
    ]
    return _ENCODE(fields).encode()


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
