"""Issue 8: seeding the demo, generating 1M analytics events, exporting with bounded memory.

Figures: the demo seed on SQLite (first load, and the second, no-op run); one million
generated analytics events on SQLite and PostgreSQL in rows per second (target at least
100,000; CPU seconds and the commit alongside); the audit export's peak resident memory
(a fresh process, its own ``VmHWM``) on a database holding one million audit-log rows; and
the same on one million consent-ledger records appended through govern.consent's bulk path
(``append_bulk``: chains, projection and outbox events as in production; its append rate
is printed too).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from typing import Any

from bench.common import emit, postgres_url, python, sqlite_url, timed

EVENTS = int(os.environ.get("GOVERNBENCH_EVENTS", "1000000"))
"""Events to generate (smaller while iterating; the figure is named by its size)."""


def _seeded(url: str) -> None:
    from govern import migrations
    from govern.db import transaction
    from govern.seeding import seed

    migrations.upgrade(url)
    engine = _keyed(url)
    with transaction(engine) as session:
        seed(session, "demo")
    engine.dispose()


def _generate(backend: str, url: str) -> dict[str, Any]:
    from govern.db import transaction
    from govern.seeding import generate_events

    _seeded(url)
    engine = _keyed(url)
    with transaction(engine) as session:
        cpu = time.process_time()
        result = generate_events(session, EVENTS)
        cpu = time.process_time() - cpu
        committing = time.perf_counter()
    committed = time.perf_counter() - committing
    engine.dispose()
    return emit(
        f"generate_events_{_size(EVENTS)}_{backend}",
        result.rows_per_second,
        "rows/s",
        rows=result.rows,
        seconds=round(result.seconds, 2),
        # This process's CPU time (the wall time is noisy on a shared machine; on
        # PostgreSQL the server's work is not in it), and the commit after the load.
        cpu_seconds=round(cpu, 2),
        commit_seconds=round(committed, 2),
        target_min=100_000,
    )


def _size(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"


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


def _keyed(url: str) -> Any:
    from govern.crypto.keyring import StaticKeyProvider
    from govern.db import create_engine
    from govern.keys import attach

    engine = create_engine(url)
    attach(engine, StaticKeyProvider(BENCH_KEK))
    return engine


BENCH_KEK = bytes(range(50, 82))


def _export_memory(
    url: str, out: str, figure: str = "audit_export_1m_audit_log_peak_rss_sqlite", rows: int = 0
) -> dict[str, Any]:
    code = textwrap.dedent(
        f"""
        import json, time
        from pathlib import Path
        from govern.audit.export import export_bundle
        from govern.audit.sections import Controller
        from govern.crypto.keyring import StaticKeyProvider
        from govern.db import create_engine, transaction
        from govern.keys import attach
        engine = create_engine({url!r})
        attach(engine, StaticKeyProvider({BENCH_KEK!r}))
        t = time.perf_counter()
        with transaction(engine) as session:
            r = export_bundle(session, Path({out!r}), signing_key=bytes(32),
                              controller=Controller("Bench Ltd", None, None))
        # VmHWM: this process's own peak. ru_maxrss would not do: Linux carries it across
        # exec, so it starts at the size of the (large) benchmark process that forked us.
        status = Path("/proc/self/status").read_text().splitlines()
        hwm = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
        print(json.dumps({{"seconds": time.perf_counter() - t, "mb": hwm / 1024,
                           "files": r.files}}))
        """
    )
    done = subprocess.run([python(), "-c", code], check=True, capture_output=True, text=True)
    got = json.loads(done.stdout)
    return emit(
        figure,
        got["mb"],
        "MB",
        seconds=round(got["seconds"], 2),
        target_max=200,
        **({"records": rows} if rows else {}),
    )


def run() -> list[dict[str, Any]]:
    from govern.db import transaction
    from govern.seeding import seed

    rows = []
    with sqlite_url() as url:
        from govern import migrations

        migrations.upgrade(url)
        engine = _keyed(url)

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
    with sqlite_url() as url:
        _seeded(url)
        rate = _ledger(url, LEDGER)
        rows.append(emit("consent_append_sqlite", rate, "records/s", records=LEDGER))
        out = url.removeprefix("sqlite:///") + ".zip"
        rows.append(_export_memory(url, out, "audit_export_ledger_peak_rss_sqlite", LEDGER))
    return rows


LEDGER = int(os.environ.get("GOVERNBENCH_LEDGER_RECORDS", "1000000"))
"""Ledger size for the export figure (appending through govern.consent is the slow part)."""


def _ledger(url: str, n: int) -> float:
    """Append ``n`` consent records through govern.consent (10,000 subjects); records/s."""
    import datetime as dt
    import time

    from govern import consent
    from govern.db import transaction

    engine = _keyed(url)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    t0 = time.perf_counter()
    for lo in range(0, n, 20_000):
        batch = [
            consent.ConsentIn(
                subject=f"bench-{i % 10_000:05d}",
                purpose="marketing.email" if i % 2 else "analytics.product",
                event="withdrawn" if i % 7 == 3 else "given",
                occurred_at=start + dt.timedelta(seconds=20 * i),
            )
            for i in range(lo, min(lo + 20_000, n))
        ]
        with transaction(engine) as session:
            consent.append_bulk(session, batch)
    engine.dispose()
    return n / (time.perf_counter() - t0)
