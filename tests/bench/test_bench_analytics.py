"""The analytics benchmark's generator and plan capture, at a tiny size, on both backends.

No timings are asserted: these check that the generated data is what the ORM reads, and that
the query plans really use the composite indexes (and stop using them when they are dropped).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine

from bench import bench_analytics as ba
from govern import migrations
from govern.db import create_engine
from govern.domains.analytics import AnalyticsEvent, AnalyticsSession
from govern.domains.core import Subject

ROWS = 20_000


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    eng = create_engine(migrated_url)
    yield eng
    eng.dispose()


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1000, 4000), seed=st.integers(0, 2**32))
def test_generator_makes_exactly_the_rows_asked_for_consistently(rows: int, seed: int) -> None:
    subjects, sessions, batches = ba.generate_rows(rows, seed)
    events = [e for batch in batches for e in batch]
    assert rows == len(events)
    subject_ids = {s[0] for s in subjects}
    owner = {s[0]: s[1] for s in sessions}
    assert len(subjects) == len(subject_ids)
    first = ba.START.strftime(ba.TS)
    last = (ba.START + dt.timedelta(days=ba.DAYS + 1)).strftime(ba.TS)
    for subject, session, kind, stamp, _ in events:
        assert owner[session] == subject  # an event belongs to its session's subject
        assert subject is None or subject in subject_ids
        assert kind in ba.EVENT_TYPES
        assert first <= stamp < last


def test_activity_is_skewed_across_subjects() -> None:
    _, _, batches = ba.generate_rows(ROWS, 1)
    per_subject = Counter(e[0] for batch in batches for e in batch if e[0] is not None)
    counts = sorted(per_subject.values())
    assert counts[-1] > 5 * counts[len(counts) // 2]


def test_generated_events_read_back_through_the_orm(engine: Engine) -> None:
    data = ba.generate(engine, 3000, seed=5)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(AnalyticsEvent)) == 3000
        assert data.subjects == conn.scalar(select(func.count()).select_from(Subject))
        assert data.sessions == conn.scalar(select(func.count()).select_from(AnalyticsSession))
        event = conn.execute(select(AnalyticsEvent).order_by(AnalyticsEvent.id).limit(1)).one()
        assert isinstance(event.subject_id, uuid.UUID)
        assert event.occurred_at.tzinfo == dt.UTC
        assert isinstance(event.properties, dict)
        # The benchmark's raw SQL and the ORM's own query agree, so stored formats match.
        q = next(q for q in ba.QUERIES if q.name == "subject_range")
        params = ba.pick_params(engine, 3000, k=1)[q.name][0]
        raw = conn.execute(q.statement(engine.dialect.name), params).all()
        orm = conn.execute(
            select(AnalyticsEvent.id).where(
                AnalyticsEvent.subject_id == params["subject"],
                AnalyticsEvent.occurred_at >= params["start"],
                AnalyticsEvent.occurred_at < params["end"],
            )
        ).all()
        assert raw
        assert sorted(r.id for r in orm) == sorted(r.id for r in raw)


def test_plans_use_the_composite_indexes_and_not_once_dropped(
    engine: Engine, migrated_url: str
) -> None:
    ba.generate(engine, ROWS)
    params = ba.pick_params(engine, ROWS, k=1)
    served = [q for q in ba.QUERIES if q.index is not None]
    assert {q.index for q in served} == set(ba.COMPOSITE)

    plans = ba.capture_plans(engine, params)
    for q in served:
        assert q.index in plans[q.name], plans[q.name]

    with ba.without_indexes(engine):
        assert not {ix["name"] for ix in inspect(engine).get_indexes("analytics_events")} & set(
            ba.COMPOSITE
        )
        bare = ba.capture_plans(engine, params)
        for q in served:
            assert ba.indexes_in(bare[q.name]) == []
            assert "SCAN analytics_events" in bare[q.name] or "Seq Scan" in bare[q.name]

    # Recreated exactly as the migration made them: no drift against the models.
    assert migrations.check(migrated_url).ok
    again = ba.capture_plans(engine, params)
    for q in served:
        assert q.index in again[q.name]
