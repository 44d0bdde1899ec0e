"""The projection always equals a replay of the ledger, and chains stay linear under concurrency."""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine

from govern import consent
from govern.consent.models import ConsentRecord, ConsentState, NoticeVersion
from govern.db import create_engine, session_factory, write_transaction

BASE = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
OPS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["marketing.email", "ads.sale", "analytics.share"]),
        st.sampled_from(["given", "refused", "withdrawn", "revoked", "expired"]),
        st.integers(0, 20),  # event day: imports may arrive out of order
    ),
    min_size=1,
    max_size=25,
)


def _replay(engine: Engine) -> dict[tuple[str, int], tuple[object, ...]]:
    """The latest record per (subject, purpose) by (event time, append order)."""
    with session_factory(engine)() as s:
        rows = s.execute(
            select(ConsentRecord, NoticeVersion.version).join(
                NoticeVersion, NoticeVersion.id == ConsentRecord.notice_version_id
            )
        ).all()
    latest: dict[tuple[str, int], tuple[object, ...]] = {}
    keys: dict[tuple[str, int], tuple[dt.datetime, int]] = {}
    for r, version in rows:
        k = (r.subject_ref, r.purpose_id)
        if k not in keys or (r.occurred_at, r.seq) >= keys[k]:
            keys[k] = (r.occurred_at, r.seq)
            latest[k] = (r.event, r.seq, r.record_id, r.occurred_at, r.expires_at, version)
    return latest


def _projection(engine: Engine) -> dict[tuple[str, int], tuple[object, ...]]:
    with session_factory(engine)() as s:
        return {
            (p.subject_ref, p.purpose_id): (
                p.status,
                p.seq,
                p.record_id,
                p.occurred_at,
                p.expires_at,
                p.notice_version,
            )
            for p in s.scalars(select(ConsentState))
        }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS, mode=st.sampled_from(["one", "many", "bulk"]))
def test_projection_equals_replay(
    engine: Engine, ops: list[tuple[str, str, str, int]], mode: str
) -> None:
    items = [
        consent.ConsentIn(
            subject=f"h-{subj}",
            purpose=purpose,
            event=event,
            method="import",
            occurred_at=BASE + dt.timedelta(days=day),
        )
        for subj, purpose, event, day in ops
    ]
    with write_transaction(engine) as s:
        if mode == "many":
            consent.append_many(s, items)
        elif mode == "bulk":
            assert consent.append_bulk(s, items) == len(items)
        else:
            for item in items:
                consent.append(s, item)
    assert _replay(engine) == _projection(engine)
    with write_transaction(engine) as s:
        assert consent.verify(s).ok


def _append_in_thread(engine: Engine, n: int, errors: list[BaseException]) -> None:
    try:
        for i in range(n):
            with write_transaction(engine) as s:
                consent.grant(s, "shared", "ads.sale" if i % 2 else "marketing.email")
    except BaseException as exc:  # surfaced by the test
        errors.append(exc)


def _append_in_process(url: str, n: int) -> None:
    engine = create_engine(url)
    try:
        for i in range(n):
            with write_transaction(engine) as s:
                consent.grant(s, "shared", "ads.sale" if i % 2 else "marketing.email")
    finally:
        engine.dispose()


def test_concurrent_appends_keep_one_linear_valid_chain(engine: Engine) -> None:
    workers, n = 4, 10
    if engine.dialect.name == "sqlite":
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=_append_in_thread, args=(engine, n, errors))
            for _ in range(workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
    else:
        ctx = multiprocessing.get_context("spawn")
        url = engine.url.render_as_string(hide_password=False)
        procs = [ctx.Process(target=_append_in_process, args=(url, n)) for _ in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert [0] * workers == [p.exitcode for p in procs]
    with write_transaction(engine) as s:
        records = consent.history(s, "shared")
        report = consent.verify(s)
    assert list(range(1, workers * n + 1)) == [r.seq for r in records]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert report.ok
