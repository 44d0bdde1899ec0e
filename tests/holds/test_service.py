from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from govern import holds
from govern.db import create_engine, transaction
from govern.domains.core import AuditLog, Subject
from govern.errors import UnknownHoldError, UnknownSubjectError, UsageError
from govern.keys import bind_keyring
from govern.testing import memory_keyring


@pytest.fixture
def engine(migrated_url: str):  # type: ignore[no-untyped-def]
    eng = create_engine(migrated_url)
    bind_keyring(eng, memory_keyring())
    yield eng
    eng.dispose()


def _subjects(engine, n: int) -> list[uuid.UUID]:  # type: ignore[no-untyped-def]
    with transaction(engine) as s:
        subs = [Subject(external_ref=f"ref-{uuid.uuid4()}") for _ in range(n)]
        s.add_all(subs)
        s.flush()
        return [x.id for x in subs]


def test_case_hold_covers_subjects_until_released(engine) -> None:  # type: ignore[no-untyped-def]
    a, b, c = _subjects(engine, 3)
    with transaction(engine) as s:
        hold = holds.add_hold(
            s, subject_ids=[a, b], reason="litigation", actor="counsel", case_ref="C-1"
        )
    with transaction(engine) as s:
        assert (
            holds.is_held(s, a),
            holds.is_held(s, b),
            holds.is_held(s, c),
        ) == (True, True, False)
        assert {a, b} == set(s.scalars(holds.held_subject_ids()))
        assert [hold.id] == [h.id for h in holds.list_holds(s, subject_id=a)]
        holds.release_hold(s, hold.id, actor="counsel", note="settled")
    with transaction(engine) as s:
        assert not holds.is_held(s, a)
        assert holds.list_holds(s) == []
        assert [hold.id] == [h.id for h in holds.list_holds(s, active_only=False)]
        actions = s.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
        assert actions == ["hold.add", "hold.release"]


def test_two_holds_one_released_still_held(engine) -> None:  # type: ignore[no-untyped-def]
    (a,) = _subjects(engine, 1)
    with transaction(engine) as s:
        h1 = holds.add_hold(s, subject_ids=[a], reason="r1", actor="x")
        holds.add_hold(s, subject_ids=[a], reason="r2", actor="x")
        holds.release_hold(s, h1.id, actor="x")
        assert holds.is_held(s, a)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"subject_ids": [], "reason": "r"}, UsageError),
        ({"subject_ids": "KNOWN", "reason": "  "}, UsageError),
        ({"subject_ids": [uuid.UUID(int=7)], "reason": "r"}, UnknownSubjectError),
    ],
)
def test_bad_holds_are_refused_and_nothing_written(engine, kwargs, error) -> None:  # type: ignore[no-untyped-def]
    (a,) = _subjects(engine, 1)
    if kwargs["subject_ids"] == "KNOWN":
        kwargs = {**kwargs, "subject_ids": [a]}
    with pytest.raises(error), transaction(engine) as s:
        holds.add_hold(s, actor="x", **kwargs)
    with transaction(engine) as s:
        assert holds.list_holds(s, active_only=False) == []


def test_release_unknown_or_twice(engine) -> None:  # type: ignore[no-untyped-def]
    (a,) = _subjects(engine, 1)
    with pytest.raises(UnknownHoldError), transaction(engine) as s:
        holds.release_hold(s, uuid.UUID(int=1), actor="x")
    with transaction(engine) as s:
        h = holds.add_hold(s, subject_ids=[a], reason="r", actor="x")
        holds.release_hold(s, h.id, actor="x")
        with pytest.raises(UsageError, match="already released"):
            holds.release_hold(s, h.id, actor="x")
