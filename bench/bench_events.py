"""Issue 6: the cost of ``emit`` inside a transaction, and relay throughput to jsonl.

Peers in the same run: the same transaction (a core ``audit_log`` insert) without the
emit, so the figure is the emit's own overhead per event.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import emit, postgres_url, sqlite_url


def _emit_overhead(backend: str, url: str, n: int) -> list[dict[str, Any]]:
    from sqlalchemy import insert

    from govern import migrations
    from govern.db import create_engine, transaction
    from govern.domains.core import AuditLog
    from govern.events import emit as emit_event
    from govern.types.utc import utcnow

    migrations.upgrade(url)
    engine = create_engine(url)

    def run(with_event: bool) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            with transaction(engine) as s:
                s.execute(
                    insert(AuditLog).values(
                        occurred_at=utcnow(),
                        actor="bench",
                        action="consent.withdrawn",
                        target_type="subject",
                        target_id=str(i),
                        details={},
                    )
                )
                if with_event:
                    emit_event(
                        s,
                        type="govern.consent.withdrawn",
                        aggregate_type="subject",
                        aggregate_id=f"s{i % 100}",
                        data={"purpose": "marketing"},
                    )
        return (time.perf_counter() - t0) / n

    run(True)  # warm up caches and statement compilation
    plain = min(run(False) for _ in range(2))
    with_emit = min(run(True) for _ in range(2))
    engine.dispose()
    return [
        emit(f"txn_without_emit_{backend}", plain * 1e6, "us/txn", n=n),
        emit(f"txn_with_emit_{backend}", with_emit * 1e6, "us/txn", n=n),
        emit(
            f"emit_overhead_{backend}",
            (with_emit - plain) * 1e6,
            "us/event",
            ratio=round(with_emit / plain, 3),
        ),
    ]


def _relay_throughput(url: str, n: int) -> list[dict[str, Any]]:
    from govern import migrations
    from govern.db import create_engine, transaction
    from govern.events import emit as emit_event
    from govern.events.relay import relay
    from govern.events.sinks import sink_config

    migrations.upgrade(url)
    engine = create_engine(url)
    with transaction(engine) as s:
        for i in range(n):
            emit_event(
                s,
                type="govern.retention.purged",
                aggregate_type="policy",
                aggregate_id=f"p{i % 1000}",
                data={"rows": i, "categories": ["user.contact"]},
            )
    rows = []
    for batch in (1000, 5000):
        with tempfile.TemporaryDirectory() as out:
            sinks = {
                "files": sink_config({"kind": "jsonl", "directory": out, "fsync": True}),
            }
            name = f"files{batch}"
            t0 = time.perf_counter()
            report = relay(engine, {name: sinks["files"]}, batch_size=batch)
            elapsed = time.perf_counter() - t0
            assert report.sinks[0].delivered == n
            lines = sum(1 for f in Path(out).rglob("*.jsonl") for _ in f.open())
            assert lines == n
        rows.append(
            emit("relay_jsonl_sqlite", n / elapsed, "events/s", n=n, batch=batch, target=50000)
        )
    engine.dispose()
    return rows


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with sqlite_url() as url:
        rows += _emit_overhead("sqlite", url, 1000)
    with sqlite_url() as url:
        rows += _relay_throughput(url, 100_000)
    with postgres_url() as pg:
        if pg is not None:
            rows += _emit_overhead("postgresql", pg, 500)
    return rows
