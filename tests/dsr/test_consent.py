"""Objection and erasure withdraw the subject's consents in the ledger (appended, not erased)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from govern import consent, dsr
from govern.db import transaction
from govern.domains.core import Subject
from govern.dsr import WorkCalendar
from govern.errors import UnknownPurposeError, UsageError
from tests.consent.conftest import CATALOG

from .conftest import populate_subject


@pytest.mark.parametrize("type_", ["objection", "erasure"])
def test_consents_are_withdrawn(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, type_: str
) -> None:
    with transaction(engine) as s:
        consent.load_catalog(s, consent.Catalog.model_validate(CATALOG))
        sid = populate_subject(s)
        other = populate_subject(s)
        refs = {x: s.get(Subject, x).external_ref for x in (sid, other)}  # type: ignore[union-attr]
        for ref in refs.values():
            consent.grant(s, ref, "marketing.email")
            consent.grant(s, ref, "ads.sale")
        out = dsr.submit(
            s,
            type=type_,
            identifiers={"subject_id": str(sid)},
            calendar=calendar,
            actor="portal",
            verified=True,
        )
        dsr.approve(s, out.request.id, actor="dpo")
    with transaction(engine) as s:
        first = dsr.plan(s, out.request.id).steps[0]
    assert (first.table, first.action, first.rows) == ("consent_state", "withdraw", 2)
    assert dsr.process_request(engine, out.request.id, export_dir=export_dir).state == "completed"
    with transaction(engine) as s:
        mine = consent.check(s, refs[sid], "marketing.email")
        theirs = consent.check(s, refs[other], "marketing.email")
        history = consent.history(s, refs[sid])
    assert not mine.allowed
    assert theirs.allowed
    assert [r.event for r in history].count("withdrawn") == 2  # appended; the proof stays


def test_objection_naming_purposes_withdraws_only_those(
    engine: Engine, calendar: WorkCalendar, export_dir: Path
) -> None:
    with transaction(engine) as s:
        consent.load_catalog(s, consent.Catalog.model_validate(CATALOG))
        sid = populate_subject(s)
        ref = s.get(Subject, sid).external_ref  # type: ignore[union-attr]
        consent.grant(s, ref, "marketing.email")
        consent.grant(s, ref, "ads.sale")
        out = dsr.submit(
            s,
            type="objection",
            identifiers={"subject_id": str(sid)},
            calendar=calendar,
            actor="portal",
            verified=True,
            purposes=["ads.sale"],
        )
        dsr.approve(s, out.request.id, actor="dpo")
    with transaction(engine) as s:
        first = dsr.plan(s, out.request.id).steps[0]
    assert (first.table, first.action, first.columns, first.rows) == (
        "consent_state",
        "withdraw",
        ["ads.sale"],
        1,
    )
    assert dsr.process_request(engine, out.request.id, export_dir=export_dir).state == "completed"
    with transaction(engine) as s:
        assert not consent.check(s, ref, "ads.sale").allowed
        assert consent.check(s, ref, "marketing.email").allowed
        assert [r.event for r in consent.history(s, ref)].count("withdrawn") == 1


@pytest.mark.parametrize(
    ("type_", "purposes", "error"),
    [
        ("objection", ["no.such.purpose"], UnknownPurposeError),
        ("erasure", ["ads.sale"], UsageError),
    ],
)
def test_bad_objection_purposes_are_refused_and_nothing_is_recorded(
    engine: Engine, calendar: WorkCalendar, type_: str, purposes: list[str], error: type[Exception]
) -> None:
    with transaction(engine) as s:
        consent.load_catalog(s, consent.Catalog.model_validate(CATALOG))
        sid = populate_subject(s)
    with pytest.raises(error), transaction(engine) as s:
        dsr.submit(
            s,
            type=type_,
            identifiers={"subject_id": str(sid)},
            calendar=calendar,
            actor="portal",
            verified=True,
            purposes=purposes,
        )
    with transaction(engine) as s:
        assert dsr.list_requests(s) == []


def test_erasure_shreds_the_ledgers_sealed_ip_and_agent(
    engine: Engine, calendar: WorkCalendar, export_dir: Path
) -> None:
    """Consent recorded without the govern subject id seals under a derived key owner:
    erasure must shred that key too, and the chain must still verify."""
    from govern.types import Shredded

    with transaction(engine) as s:
        consent.load_catalog(s, consent.Catalog.model_validate(CATALOG))
        sid = populate_subject(s)
        ref = s.get(Subject, sid).external_ref  # type: ignore[union-attr]
        consent.grant(s, ref, "marketing.email", source_ip="203.0.113.7", user_agent="UA/1.0")
        out = dsr.submit(
            s,
            type="erasure",
            identifiers={"subject_id": str(sid)},
            calendar=calendar,
            actor="portal",
            verified=True,
        )
        dsr.approve(s, out.request.id, actor="dpo")
    assert dsr.process_request(engine, out.request.id, export_dir=export_dir).state == "completed"
    with transaction(engine) as s:
        first = consent.history(s, ref)[0]
        assert isinstance(first.source_ip, Shredded)
        assert isinstance(first.user_agent, Shredded)
        assert consent.verify(s).ok
