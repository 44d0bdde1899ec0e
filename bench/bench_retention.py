"""Issue 7: retention on 1M expired rows among 2M, beside a bare ``DELETE`` of the same rows.

Figures per backend: ``plan`` time; a full run (quarantine copy, tombstones through the
outbox, keyset batches, one transaction each) in rows/s; a bare ``DELETE ... WHERE
occurred_at < cutoff`` of the same rows on an identical copy (the limit); the ratio; and the
run's peak memory (Python heap by tracemalloc, and the process's peak RSS).
``BENCH_RETENTION_ROWS`` changes the table size (default 2,000,000; half expire).
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import shutil
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.common import emit, peak_memory, postgres_url, sqlite_url

TOTAL = int(os.environ.get("BENCH_RETENTION_ROWS", "2000000"))
OLD = "2020-01-01 00:00:00.000000"


def _generate(url: str) -> None:
    """Set-based: every other row (by id) is expired, so batches interleave with live rows.

    ``properties`` is crypto-shredded (binary): each row gets 40 bytes, the size of the
    envelope of a small JSON document, so the quarantine copies binary as it does for real.
    """
    from govern import migrations
    from govern.db import create_engine

    migrations.upgrade(url)
    engine = create_engine(url)
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            c.exec_driver_sql(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
                "INSERT INTO analytics_events (id, type, occurred_at, properties) "
                "SELECT x, 'view', CASE WHEN x % 2 = 0 THEN ? ELSE ? END, randomblob(40) FROM n",
                (TOTAL, OLD, recent),
            )
        else:
            c.execute(
                text(
                    "INSERT INTO analytics_events (id, type, occurred_at, properties) "
                    "SELECT x, 'view', CASE WHEN x % 2 = 0 THEN CAST(:old AS timestamptz) "
                    "ELSE CAST(:recent AS timestamptz) END, "
                    "decode(substr(repeat(md5(x::text), 3), 1, 80), 'hex') "
                    "FROM generate_series(1, :n) AS x"
                ),
                {"old": OLD + "+00", "recent": recent + "+00", "n": TOTAL},
            )
            c.exec_driver_sql(
                "SELECT setval('analytics_events_id_seq', (SELECT max(id) FROM analytics_events))"
            )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE analytics_events")
    engine.dispose()


def _copy(url: str, backend: str) -> str:
    """An identical copy of the database for the bare DELETE."""
    from govern.db import create_engine

    if backend == "sqlite":
        src = make_url(url).database or ""
        dst = src.replace(".db", "-peer.db")
        shutil.copyfile(src, dst)
        return f"sqlite:///{dst}"
    name = make_url(url).database
    admin = create_engine(
        make_url(url).set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}_peer" TEMPLATE "{name}"')
    admin.dispose()
    return make_url(url).set(database=f"{name}_peer").render_as_string(hide_password=False)


def _server_cpu(engine: Any) -> dict[int, float] | None:
    """CPU seconds used so far by each PostgreSQL backend serving this database (local
    server only, read from /proc); None on SQLite or when /proc is not readable."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as c:
        pids = c.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        out = {}
        tick = os.sysconf("SC_CLK_TCK")
        try:
            for pid in pids:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            return None
    return out


def _figures(backend: str, url: str) -> list[dict[str, Any]]:
    from govern.db import create_engine, transaction
    from govern.retention import Policy, approve, execute_run, plan_policy

    t0 = time.perf_counter()
    _generate(url)
    gen_s = time.perf_counter() - t0
    peer_url = _copy(url, backend)
    policy = Policy(
        name="bench-events",
        table="analytics_events",
        timestamp_column="occurred_at",
        period="P13M",
        owner="bench",
        purpose="benchmark",
        batch_size=50_000,
        max_growth_factor=None,
    )
    engine = create_engine(url)
    rows: list[dict[str, Any]] = [
        emit(f"retention_generate_{backend}", gen_s, "s", rows=TOTAL),
    ]
    with transaction(engine) as s:
        approve(s, policy, by="bench")
    with transaction(engine) as s:
        t0 = time.perf_counter()
        planned = plan_policy(s, policy)
        plan_s = time.perf_counter() - t0
    rows.append(emit(f"retention_plan_{backend}", plan_s, "s", rows=planned.rows, total=TOTAL))
    server0 = _server_cpu(engine)
    with peak_memory() as mem:
        t0 = time.perf_counter()
        c0 = time.process_time()
        out = execute_run(engine, policy, actor="bench")
        run_s = time.perf_counter() - t0
        client_cpu = time.process_time() - c0
    server = _server_cpu(engine)
    server_cpu = (
        None
        if server is None or server0 is None
        else sum(v - server0.get(pid, 0.0) for pid, v in server.items())
    )
    assert out.processed_rows == planned.rows, (out.processed_rows, planned.rows)
    engine.dispose()
    peer = create_engine(peer_url)
    cutoff = policy.cutoff(dt.datetime.now(dt.UTC))
    with peer.begin() as c:
        t0 = time.perf_counter()
        n = c.execute(
            text("DELETE FROM analytics_events WHERE occurred_at < :cutoff"),
            {"cutoff": cutoff.strftime("%Y-%m-%d %H:%M:%S.%f") if backend == "sqlite" else cutoff},
        ).rowcount
        delete_s = time.perf_counter() - t0
    peer.dispose()
    assert n == planned.rows, (n, planned.rows)
    rate = out.processed_rows / run_s
    bare = n / delete_s
    rows.append(
        emit(
            f"retention_run_{backend}",
            rate,
            "rows/s",
            rows=out.processed_rows,
            seconds=round(run_s, 3),
            batches=out.batches,
            quarantine=True,
            tombstones=True,
        )
    )
    # CPU companions (the machine may be shared, so wall time is noisy): this process's CPU
    # (on SQLite, all of the work) and, on PostgreSQL, the server backends' CPU, per row.
    cpu_s = client_cpu + (server_cpu or 0.0)
    rows.append(
        emit(
            f"retention_run_cpu_{backend}",
            cpu_s * 1e6 / out.processed_rows,
            "us/row",
            client_s=round(client_cpu, 3),
            server_s=None if server_cpu is None else round(server_cpu, 3),
        )
    )
    rows.append(emit(f"bare_delete_{backend}", bare, "rows/s", rows=n, seconds=round(delete_s, 3)))
    rows.append(emit(f"retention_run_vs_bare_delete_{backend}", rate / bare, "ratio"))
    rows.append(emit(f"retention_run_peak_python_heap_{backend}", mem["mb"], "MB"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(emit(f"retention_process_peak_rss_{backend}", rss, "MB"))
    return rows


def run() -> list[dict[str, Any]]:
    rows = []
    with sqlite_url() as url:
        rows += _figures("sqlite", url)
    with postgres_url() as pg:
        if pg is not None:
            from govern.db import create_engine

            admin = create_engine(pg, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.exec_driver_sql('CREATE DATABASE "bench_retention"')
            admin.dispose()
            url = make_url(pg).set(database="bench_retention")
            rows += _figures("postgresql", url.render_as_string(hide_password=False))
    return rows
