"""Source IP and user agent: sealed under the subject's shredding key, chains verifiable after."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from govern import consent
from govern.consent.models import ChainHead, ConsentRecord
from govern.db import transaction, write_transaction
from govern.errors import ConsentError
from govern.keys import scan_encryption
from govern.keys import shred_subject as shred_key
from govern.types.shredded import Shredded

IP, UA = "203.0.113.77", "Mozilla/5.0 (canary-agent)"


def _export(engine: Engine, fmt: str, subject: str) -> list[str]:
    with transaction(engine) as s:
        return list(consent.export_lines(s, fmt, subject=subject))  # type: ignore[arg-type]


def _raw_sealed(engine: Engine) -> list[bytes]:
    with transaction(engine) as s:
        rows = (
            s.connection()
            .exec_driver_sql("SELECT source_ip, user_agent FROM consent_records")
            .all()
        )
    return [bytes(v) for row in rows for v in row if v is not None]


def test_grant_seals_ip_and_agent_and_history_and_exports_show_them(engine: Engine) -> None:
    with write_transaction(engine) as s:
        out = consent.grant(s, "u-1", "marketing.email", source_ip=IP, user_agent=UA)
        consent.withdraw(s, "u-1", "marketing.email")  # no IP: nothing sealed
    assert (out.source_ip, out.user_agent, out.subject_id) == (
        IP,
        UA,
        consent.key_subject_id("u-1"),
    )
    with transaction(engine) as s:
        first, second = consent.history(s, "u-1")
    assert (first.source_ip, first.user_agent) == (IP, UA)
    assert (second.source_ip, second.user_agent) == (None, None)
    kantara = json.loads(_export(engine, "kantara", "u-1")[0])
    assert kantara["collectionContext"] == {"sourceIp": IP, "userAgent": UA}
    assert "collectionContext" not in json.loads(_export(engine, "kantara", "u-1")[1])
    iso = json.loads(_export(engine, "iso27560", "u-1")[0])
    assert (iso["event"]["source_ip"], iso["event"]["user_agent"]) == (IP, UA)
    rows = list(csv.DictReader(io.StringIO("".join(_export(engine, "csv", "u-1")))))
    assert [(r["source_ip"], r["user_agent"]) for r in rows] == [(IP, UA), ("", "")]
    # In the database: envelopes only, no plaintext.
    sealed = _raw_sealed(engine)
    assert len(sealed) == 2
    for blob in sealed:
        assert IP.encode() not in blob
        assert b"canary" not in blob
        assert blob[:1] == b"\x02"  # a subject-key envelope


def test_shredding_leaves_the_proof_and_removes_the_data(engine: Engine) -> None:
    with write_transaction(engine) as s:
        consent.grant(s, "u-2", "marketing.email", source_ip=IP, user_agent=UA)
        consent.grant(s, "u-3", "marketing.email", source_ip="2001:db8::1")
        consent.create_checkpoint(s, bytes(range(32)))
        consent.withdraw(s, "u-2", "marketing.email", source_ip=IP)
    with transaction(engine) as s:
        before = [r.hash for r in consent.history(s, "u-2")]
    with write_transaction(engine) as s:
        proof = consent.shred_subject(s, "u-2", actor="dpo", reason="erasure #12")
    assert proof is not None
    with transaction(engine) as s:
        records = consent.history(s, "u-2")
        other = consent.history(s, "u-3")[0]
        report = consent.verify(s, consent.public_key_of(bytes(range(32))))
    assert report.ok, report.findings
    assert report.records == 3
    assert before == [r.hash for r in records]
    for r in records:
        assert isinstance(r.source_ip, Shredded)
        assert not r.source_ip
    assert isinstance(records[0].user_agent, Shredded)
    assert records[1].user_agent is None
    assert other.source_ip == "2001:db8::1"  # another subject is untouched
    assert json.loads(records[0].model_dump_json())["source_ip"] == "shredded"
    kantara = json.loads(_export(engine, "kantara", "u-2")[0])
    assert kantara["collectionContext"] == {"sourceIp": "shredded", "userAgent": "shredded"}
    iso = json.loads(_export(engine, "iso27560", "u-2")[1])
    assert (iso["event"]["source_ip"], iso["event"]["user_agent"]) == ("shredded", None)
    assert "shredded" in _export(engine, "csv", "u-2")[1]
    assert scan_encryption(engine).ok
    with write_transaction(engine) as s:  # the chain goes on, under a fresh key
        later = consent.grant(s, "u-2", "marketing.email", source_ip=IP)
    with transaction(engine) as s:
        assert consent.history(s, "u-2")[-1].source_ip == IP
        assert consent.verify(s).ok
    assert later.seq == 3


def test_a_govern_subject_id_owns_the_key(engine: Engine) -> None:
    sid = uuid.uuid4()
    with write_transaction(engine) as s:
        consent.grant(s, "u-4", "marketing.email", subject_id=sid, source_ip=IP)
        # Later appends without subject_id are sealed for the same owner.
        consent.withdraw(s, "u-4", "marketing.email", user_agent=UA)
    with write_transaction(engine) as s:
        assert shred_key(s, sid, actor="dpo") is not None
    with transaction(engine) as s:
        records = consent.history(s, "u-4")
        assert consent.verify(s).ok
    assert [sid, sid] == [r.subject_id for r in records]
    assert isinstance(records[0].source_ip, Shredded)
    assert isinstance(records[1].user_agent, Shredded)


def test_another_subject_id_for_a_sealed_chain_is_refused(engine: Engine) -> None:
    with write_transaction(engine) as s:
        consent.grant(s, "u-5", "marketing.email", source_ip=IP)
    with pytest.raises(ConsentError, match="subject_id differs"), write_transaction(engine) as s:
        consent.grant(s, "u-5", "ads.sale", subject_id=uuid.uuid4(), source_ip=IP)
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(ConsentRecord)) == 1
        head = s.scalar(select(ChainHead.subject_id).where(ChainHead.subject_ref == "u-5"))
    assert head == consent.key_subject_id("u-5")


@pytest.mark.parametrize("ip", ["999.1.1.1", "not-an-ip", "10.0.0.1/8"])
def test_a_malformed_ip_is_refused(engine: Engine, ip: str) -> None:
    with pytest.raises(ConsentError, match="source_ip"), write_transaction(engine) as s:
        consent.grant(s, "u-6", "marketing.email", source_ip=ip)
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(ConsentRecord)) == 0


def test_ipv6_is_normalised() -> None:
    item = consent.ConsentIn(
        subject="u", purpose="p", event="given", source_ip=" 2001:DB8:0:0:0:0:0:1 "
    )
    assert item.source_ip == "2001:db8::1"


def test_shredding_a_subject_with_nothing_sealed_returns_none(engine: Engine) -> None:
    with write_transaction(engine) as s:
        consent.grant(s, "u-7", "marketing.email")
        assert consent.shred_subject(s, "u-7", actor="dpo") is None
        assert consent.shred_subject(s, "nobody", actor="dpo") is None


def test_record_out_fast_path_matches_model_construct(engine: Engine) -> None:
    with write_transaction(engine) as s:
        out = consent.grant(s, "u-8", "marketing.email", source_ip=IP)
    rebuilt = consent.ConsentRecordOut.model_construct(**out.model_dump())
    assert rebuilt == out
    assert rebuilt.model_fields_set == out.model_fields_set
    assert consent.ConsentRecordOut.model_validate(out.model_dump()) == out
