"""Signed checkpoints and ``verify``: recompute every hash, link, head, projection and signature.

Verification streams the ledger in chain order (server-side cursor on PostgreSQL), so its
memory does not grow with the ledger. Findings name record ids and checkpoint numbers,
never subject references.
"""

from __future__ import annotations

import base64
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, text
from sqlalchemy.orm import Session

from govern.consent import chain
from govern.consent.models import (
    ChainHead,
    Checkpoint,
    CheckpointHead,
    ConsentRecord,
    ConsentState,
    Notice,
    NoticeVersion,
    Purpose,
)
from govern.consent.schemas import CheckpointOut, Finding, VerifyReport
from govern.errors import ConfigError
from govern.types.utc import utcnow

MAX_FINDINGS = 1000


def public_key_of(signing_key: bytes) -> str:
    """Base64 of the Ed25519 public key for a 32-byte seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pub = Ed25519PrivateKey.from_private_bytes(signing_key).public_key()
    return base64.b64encode(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def create_checkpoint(session: Session, signing_key: bytes) -> CheckpointOut:
    """Sign the chain heads that changed since the last checkpoint (all of them the first time).

    Each checkpoint also signs the digest of the previous one, so checkpoints form a chain
    of their own. Run it periodically (e.g. hourly) from the host's scheduler.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if len(signing_key) != 32:
        raise ConfigError("the consent signing key must be 32 bytes")
    key = Ed25519PrivateKey.from_private_bytes(signing_key)
    pg = session.get_bind().dialect.name == "postgresql"
    if pg:
        # One checkpoint at a time; appends are not blocked.
        session.execute(text("LOCK TABLE consent_checkpoints IN EXCLUSIVE MODE"))
    last = session.execute(select(Checkpoint).order_by(Checkpoint.id.desc()).limit(1)).scalar()
    q = select(ChainHead.subject_ref, ChainHead.seq, ChainHead.hash).where(
        ChainHead.seq > ChainHead.checkpointed_seq
    )
    if pg:
        q = q.with_for_update()
    heads = [(s, seq, h) for s, seq, h in session.execute(q) if h is not None]
    number = 1 if last is None else last.id + 1
    prev = None if last is None else _digest_of(last)
    created = utcnow()
    records = session.scalar(select(func.count()).select_from(ConsentRecord)) or 0
    digest = chain.heads_digest(heads)
    message = chain.checkpoint_message(
        checkpoint_id=number,
        created_at=created,
        record_count=records,
        head_count=len(heads),
        heads_digest=digest,
        prev_digest=prev,
    )
    signature = base64.b64encode(key.sign(message)).decode()
    public = public_key_of(signing_key)
    session.add(
        Checkpoint(
            id=number,
            created_at=created,
            record_count=records,
            head_count=len(heads),
            heads_digest=digest,
            prev_digest=prev,
            public_key=public,
            signature=signature,
        )
    )
    session.flush()
    if heads:
        session.execute(
            cast(Table, CheckpointHead.__table__).insert(),
            [
                {"checkpoint_id": number, "subject_ref": s, "seq": q_, "hash": h}
                for s, q_, h in heads
            ],
        )
        session.execute(
            cast(Table, ChainHead.__table__)
            .update()
            .where(ChainHead.subject_ref == bindparam("s"))
            .values(checkpointed_seq=bindparam("q")),
            [{"s": s, "q": q_} for s, q_, _ in heads],
        )
    return CheckpointOut(
        id=number,
        created_at=created,
        record_count=records,
        head_count=len(heads),
        heads_digest=digest,
        public_key=public,
    )


def _message_of(cp: Checkpoint) -> bytes:
    return chain.checkpoint_message(
        checkpoint_id=cp.id,
        created_at=cp.created_at,
        record_count=cp.record_count,
        head_count=cp.head_count,
        heads_digest=cp.heads_digest,
        prev_digest=cp.prev_digest,
    )


def _digest_of(cp: Checkpoint) -> str:
    return chain.message_digest(_message_of(cp), cp.signature)


class _Findings:
    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(
        self, kind: str, detail: str, record_id: Any = None, checkpoint: int | None = None
    ) -> None:
        if len(self.items) < MAX_FINDINGS:
            self.items.append(
                Finding(kind=kind, detail=detail, record_id=record_id, checkpoint=checkpoint)
            )


def verify(session: Session, verify_key: str | None = None) -> VerifyReport:
    """Recompute the ledger's hashes and links, the chain heads, the projection and checkpoints.

    ``verify_key`` (base64 Ed25519 public key) pins the checkpoint key; without it, signatures
    are checked against the key stored with each checkpoint, which catches edits but not a
    full re-signing by someone holding write access (the report says so).
    """
    found = _Findings()
    purposes = dict(session.execute(select(Purpose.id, Purpose.key)).tuples().all())
    versions = {
        vid: (nkey, num)
        for vid, nkey, num in session.execute(
            select(NoticeVersion.id, Notice.key, NoticeVersion.version).join(
                Notice, Notice.id == NoticeVersion.notice_id
            )
        )
    }
    records, subjects = _verify_chains(session, purposes, versions, found)
    _verify_heads(session, found)
    _verify_projection(session, found)
    checkpoints = _verify_checkpoints(session, verify_key, found)
    return VerifyReport(
        records=records,
        subjects=subjects,
        checkpoints=checkpoints,
        key_pinned=verify_key is not None,
        findings=found.items,
    )


_COLUMNS = [
    ConsentRecord.subject_ref,
    ConsentRecord.seq,
    ConsentRecord.record_id,
    ConsentRecord.purpose_id,
    ConsentRecord.event,
    ConsentRecord.notice_version_id,
    ConsentRecord.locale,
    ConsentRecord.legal_basis,
    ConsentRecord.method,
    ConsentRecord.jurisdiction,
    ConsentRecord.controller,
    ConsentRecord.occurred_at,
    ConsentRecord.recorded_at,
    ConsentRecord.expires_at,
    ConsentRecord.tcf_string,
    ConsentRecord.idempotency_key,
    ConsentRecord.prev_hash,
    ConsentRecord.hash,
]


def _verify_chains(
    session: Session,
    purposes: dict[int, str],
    versions: dict[int, tuple[str, int]],
    found: _Findings,
) -> tuple[int, int]:
    q = select(*_COLUMNS).order_by(ConsentRecord.subject_ref, ConsentRecord.seq)
    result = session.execute(q.execution_options(yield_per=5000))
    count = subjects = 0
    current: str | None = None
    expect_seq = 1
    prev_hash: str | None = None
    for row in result:
        (s, seq, rid, pid, event, nvid, loc, basis, method, jur, ctrl, occ, rec, exp, tcf_s,
         idem, stored_prev, stored_hash) = row  # fmt: skip
        count += 1
        if s != current:
            current, expect_seq, prev_hash = s, 1, None
            subjects += 1
        if seq != expect_seq:
            if seq > expect_seq:
                found.add(
                    "missing",
                    f"record(s) #{expect_seq}..#{seq - 1} missing before record {rid}",
                    rid,
                )
            else:
                found.add("reordered", f"record {rid} repeats or reorders position #{seq}", rid)
        if stored_prev != prev_hash:
            found.add("broken_link", f"record {rid} (#{seq}) does not link to its predecessor", rid)
        nv = versions.get(nvid, ("?", -1))
        content = chain.canonical(
            subject_ref=s,
            seq=seq,
            record_id=rid,
            purpose=purposes.get(pid, "?"),
            event=event,
            notice=nv[0],
            notice_version=nv[1],
            locale=loc,
            legal_basis=basis,
            method=method,
            jurisdiction=jur,
            controller=ctrl,
            occurred_at=occ,
            recorded_at=rec,
            expires_at=exp,
            tcf_string=tcf_s,
            idempotency_key=idem,
        )
        if chain.link(content, stored_prev) != stored_hash:
            found.add("modified", f"record {rid} (#{seq}) does not match its hash", rid)
        prev_hash = stored_hash
        expect_seq = seq + 1
    return count, subjects


def _verify_heads(session: Session, found: _Findings) -> None:
    r, h = ConsentRecord, ChainHead
    last = select(r.subject_ref, func.max(r.seq).label("seq")).group_by(r.subject_ref).subquery()
    # Heads that disagree with the last stored record (deleted or appended behind govern's back).
    bad = session.execute(
        select(h.seq, last.c.seq, r.record_id, r.hash, h.hash)
        .select_from(h)
        .outerjoin(last, last.c.subject_ref == h.subject_ref)
        .outerjoin(r, and_(r.subject_ref == h.subject_ref, r.seq == last.c.seq))
        .where(
            or_(
                func.coalesce(last.c.seq, 0) != h.seq,
                and_(h.seq > 0, or_(r.hash.is_(None), r.hash != h.hash)),
            )
        )
        .limit(MAX_FINDINGS)
    ).all()
    for head_seq, last_seq, rid, rhash, hhash in bad:
        if (last_seq or 0) < head_seq:
            found.add(
                "truncated", f"a chain ends at #{last_seq or 0} but its head says #{head_seq}", rid
            )
        elif (last_seq or 0) > head_seq:
            found.add(
                "appended",
                f"record {rid} (#{last_seq}) lies beyond its chain head #{head_seq}",
                rid,
            )
        elif rhash != hhash:
            found.add(
                "head_mismatch", f"record {rid} (#{last_seq}) differs from its chain head", rid
            )
    orphans = session.execute(
        select(r.record_id, r.seq)
        .outerjoin(h, h.subject_ref == r.subject_ref)
        .where(h.subject_ref.is_(None))
        .order_by(r.subject_ref, r.seq)
        .limit(MAX_FINDINGS)
    ).all()
    for rid, seq in orphans:
        found.add("orphan", f"record {rid} (#{seq}) belongs to no chain head", rid)


def _verify_projection(session: Session, found: _Findings) -> None:
    r, st = ConsentRecord, ConsentState
    ranked = select(
        r.subject_ref,
        r.purpose_id,
        r.seq,
        r.event,
        r.record_id,
        r.expires_at,
        r.notice_version_id,
        func.row_number()
        .over(
            partition_by=(r.subject_ref, r.purpose_id),
            order_by=(r.occurred_at.desc(), r.seq.desc()),
        )
        .label("rn"),
    ).subquery()
    latest = (
        select(ranked, NoticeVersion.version)
        .join(NoticeVersion, NoticeVersion.id == ranked.c.notice_version_id)
        .where(ranked.c.rn == 1)
        .subquery()
    )
    missing = session.execute(
        select(latest.c.record_id)
        .outerjoin(
            st,
            and_(
                st.subject_ref == latest.c.subject_ref,
                st.purpose_id == latest.c.purpose_id,
                st.seq == latest.c.seq,
                st.status == latest.c.event,
                st.record_id == latest.c.record_id,
                st.notice_version == latest.c.version,
                or_(
                    st.expires_at == latest.c.expires_at,
                    and_(st.expires_at.is_(None), latest.c.expires_at.is_(None)),
                ),
            ),
        )
        .where(st.subject_ref.is_(None))
        .limit(MAX_FINDINGS)
    ).all()
    for (rid,) in missing:
        found.add(
            "projection", f"current state disagrees with the ledger's latest record {rid}", rid
        )
    extra = session.scalar(
        select(func.count())
        .select_from(st)
        .outerjoin(
            latest,
            and_(
                st.subject_ref == latest.c.subject_ref,
                st.purpose_id == latest.c.purpose_id,
            ),
        )
        .where(latest.c.subject_ref.is_(None))
    )
    if extra:
        found.add("projection", f"{extra} current-state row(s) have no record in the ledger")


def _verify_checkpoints(session: Session, verify_key: str | None, found: _Findings) -> int:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    count = 0
    prev: Checkpoint | None = None
    for cp in session.scalars(select(Checkpoint).order_by(Checkpoint.id)):
        count += 1
        n = cp.id
        if n != (1 if prev is None else prev.id + 1):
            found.add(
                "checkpoint_chain",
                f"checkpoint {n} follows {prev.id if prev else 'none'}",
                checkpoint=n,
            )
        expected_prev = None if prev is None else _digest_of(prev)
        if cp.prev_digest != expected_prev:
            found.add(
                "checkpoint_chain", f"checkpoint {n} does not link to its predecessor", checkpoint=n
            )
        key_b64 = verify_key or cp.public_key
        if verify_key is not None and cp.public_key != verify_key:
            found.add(
                "forged_checkpoint", f"checkpoint {n} was signed with another key", checkpoint=n
            )
        try:
            pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(key_b64))
            pub.verify(base64.b64decode(cp.signature), _message_of(cp))
        except (InvalidSignature, ValueError):
            found.add("forged_checkpoint", f"checkpoint {n} has an invalid signature", checkpoint=n)
        heads = (
            session.execute(
                select(CheckpointHead.subject_ref, CheckpointHead.seq, CheckpointHead.hash).where(
                    CheckpointHead.checkpoint_id == n
                )
            )
            .tuples()
            .all()
        )
        if len(heads) != cp.head_count or chain.heads_digest(heads) != cp.heads_digest:
            found.add(
                "forged_checkpoint", f"checkpoint {n}'s signed heads were altered", checkpoint=n
            )
        ch, r = CheckpointHead, ConsentRecord
        gone = session.execute(
            select(ch.seq, r.record_id)
            .outerjoin(r, and_(r.subject_ref == ch.subject_ref, r.seq == ch.seq))
            .where(ch.checkpoint_id == n, or_(r.hash.is_(None), r.hash != ch.hash))
            .limit(MAX_FINDINGS)
        ).all()
        for seq, rid in gone:
            what = f"record {rid} (#{seq})" if rid else f"record #{seq} of a chain"
            found.add(
                "rewritten", f"{what} changed or vanished after checkpoint {n} signed it", rid, n
            )
        prev = cp
    return count
