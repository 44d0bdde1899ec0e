"""Issue 8: seeding the demo, generating 1M analytics events, exporting with bounded memory.

Figures: the demo seed on SQLite (first load, and the second, no-op run); one million
generated analytics events on SQLite and PostgreSQL in rows per second (target at least
100,000); the audit export's peak resident memory (a fresh process, ``ru_maxrss``) on a
database holding one million audit-log rows, which stream through the same path the
consent ledger extract will take. The one-million-ledger-record figure needs the consent
ledger, which this version does not have: its line says so instead of a number.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from typing import Any

from bench.common import emit, postgres_url, python, sqlite_url, timed

EVENTS = 1_000_000


def _seeded(url: str) -> None:
    from govern import migrations
    from govern.db import create_engine, transaction
    from govern.seeding import seed

    migrations.upgrade(url)
    engine = create_engine(url)
    with transaction(engine) as session:
        seed(session, "demo")
    engine.dispose()


def _generate(backend: str, url: str) -> dict[str, Any]:
    from govern.db import create_engine, transaction
    from govern.seeding import generate_events

    _seeded(url)
    engine = create_engine(url)
    with transaction(engine) as session:
        result = generate_events(session, EVENTS)
    engine.dispose()
    return emit(
        f"generate_events_1m_{backend}",
        result.rows_per_second,
        "rows/s",
        rows=result.rows,
        seconds=round(result.seconds, 2),
        target_min=100_000,
    )


def _audit_rows(url: str, n: int) -> None:
    import datetime as dt

    from govern.db import create_engine

    engine = create_engine(url)
    start = dt.datetime(2025, 1, 1)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        for lo in range(0, n, 100_000):
            cur.executemany(
                "INSERT INTO audit_log (occurred_at, actor, action, target_type, target_id, "
                "details) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        (start + dt.timedelta(seconds=30 * i)).isoformat(" "),
                        "bench",
                        "consent.grant" if i % 3 else "dsr.transition",
                        "subject",
                        f"{i:032x}",
                        '{"purpose": "newsletter", "version": 3}',
                    )
                    for i in range(lo, min(lo + 100_000, n))
                ],
            )
    engine.dispose()


def _export_memory(url: str, out: str) -> dict[str, Any]:
    code = textwrap.dedent(
        f"""
        import json, resource, time
        from pathlib import Path
        from govern.audit.export import export_bundle
        from govern.audit.sections import Controller
        from govern.db import create_engine, transaction
        engine = create_engine({url!r})
        t = time.perf_counter()
        with transaction(engine) as session:
            r = export_bundle(session, Path({out!r}), signing_key=bytes(32),
                              controller=Controller("Bench Ltd", None, None))
        print(json.dumps({{"seconds": time.perf_counter() - t,
                           "mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                           "files": r.files}}))
        """
    )
    done = subprocess.run([python(), "-c", code], check=True, capture_output=True, text=True)
    got = json.loads(done.stdout)
    return emit(
        "audit_export_1m_audit_log_peak_rss_sqlite",
        got["mb"],
        "MB",
        seconds=round(got["seconds"], 2),
        target_max=200,
    )


def run() -> list[dict[str, Any]]:
    from govern.db import create_engine, transaction
    from govern.seeding import seed

    rows = []
    with sqlite_url() as url:
        from govern import migrations

        migrations.upgrade(url)
        engine = create_engine(url)

        def once() -> None:
            with transaction(engine) as session:
                seed(session, "demo")

        rows.append(emit("seed_demo_first_run_sqlite", timed(once), "s"))
        rows.append(emit("seed_demo_second_run_noop_sqlite", timed(once, repeat=3), "s"))
        engine.dispose()
    with sqlite_url() as url:
        rows.append(_generate("sqlite", url))
    with postgres_url() as pg:
        if pg is not None:
            rows.append(_generate("postgresql", pg))
    with sqlite_url() as url:
        _seeded(url)
        _audit_rows(url, 1_000_000)
        rows.append(_export_memory(url, url.removeprefix("sqlite:///") + ".zip"))
    line = {
        "figure": "audit_export_1m_ledger_peak_memory",
        "value": None,
        "unit": "MB",
        "status": "not measurable yet: the consent ledger is not in this version",
    }
    print(json.dumps(line), flush=True)
    rows.append(line)
    return rows
