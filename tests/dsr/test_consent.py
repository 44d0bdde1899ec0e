"""Objection and erasure withdraw the subject's consents in the ledger (appended, not erased)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from govern import consent, dsr
from govern.db import transaction
from govern.domains.core import Subject
from govern.dsr import WorkCalendar
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
