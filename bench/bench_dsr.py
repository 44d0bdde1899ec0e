"""Issue 5: the DSR queue on a generated database of >= 1,000,000 rows across four domains.

SQLite file, set-based generation (``INSERT ... SELECT`` over a recursive counter; no row
goes through Python). ``GOVERNBENCH_DSR_SUBJECTS`` (default 20,000 subjects, about 60 rows
each) sizes it. Figures, one JSON line each:

* ``dsr_erasure_one_subject_p50``: an erasure processed end to end (plan, every step with
  work in its own checkpointed transaction, completion); the peer is the same actions in
  one bare transaction without plan, checkpoints, audit or events.
* ``dsr_access_export_one_subject_p50``: an access request of one subject to a verified zip.
* ``dsr_queue_throughput``: 1,000 queued requests (a mix of the six rights) drained by one
  worker, requests per second (default ``rows_per_transaction``: a small subject's steps
  share a transaction).
* ``dsr_queue_throughput_one_tx_per_step``: the same with ``rows_per_transaction=0``
  (every step with work in its own transaction), on 1,000 other subjects.
* ``dsr_access_export_peak_memory``: tracemalloc peak of an access export for a subject with
  100,000 analytics events.

The erasure and queue figures also carry this process's CPU time (``time.process_time``;
SQLite runs in-process, so it includes the database's work): on a shared machine wall time
is noisy, CPU time much less so.
"""

# The generator builds SQL from integer counts and fixed table names only.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.common import emit, peak_memory, sqlite_url

SUBJECTS_ENV = "GOVERNBENCH_DSR_SUBJECTS"
HEAVY_EVENTS = 100_000
TABLES = (
    "subjects",
    "subject_identities",
    "accounts",
    "orders",
    "order_lines",
    "payments",
    "refunds",
    "invoices",
    "wallets",
    "analytics_sessions",
    "analytics_events",
    "page_views",
    "communities",
    "memberships",
    "posts",
    "comments",
    "moderation_reports",
)
TS = "2026-01-01 10:00:00.000000"


def _hex(prefix: int, n: str) -> str:
    """A SQL expression for a 32-hex-digit UUID, unique per (table prefix, counter)."""
    return f"printf('%08x%024x', {prefix}, {n})"


def _sealers(engine: Engine, subjects: int) -> dict[str, Any]:
    """Sealed values as the ORM would write them (issue 3), computed in Python once.

    Columns sealed under the primary data key get one constant ciphertext each (bound as a
    parameter of the set-based INSERT); identifiers get their own ciphertext and blind index
    per subject, and crypto-shredded columns a ciphertext under each subject's key; both go
    to a staging table the INSERTs join.
    """
    from govern.crypto.keyring import StaticKeyProvider, new_key
    from govern.db import load_models, transaction
    from govern.keys import attach, subject_ciphers

    md = load_models()
    dialect = engine.dialect
    keyring = attach(engine, StaticKeyProvider(new_key()))

    def col(name: str) -> Any:
        table, column = name.split(".")
        return md.tables[table].c[column].type

    const = {
        "name": col("subjects.given_name").process_bind_param("Given", dialect),
        "family": col("subjects.family_name").process_bind_param("Family", dialect),
        "phone": col("subjects.phone").process_bind_param("+4930123456", dialect),
        "birth": col("subjects.birth_date").process_bind_param(dt.date(1990, 1, 1), dialect),
        "country": col("subjects.country").process_bind_param("DE", dialect),
        "pw": col("accounts.password_hash").process_bind_param("$argon2id$x", dialect),
        "total": col("orders.total_amount").process_bind_param(Decimal("49.00"), dialect),
        "ship": col("orders.shipping_address").process_bind_param({"city": "Berlin"}, dialect),
        "holder": col("payments.card_holder").process_bind_param("Holder", dialect),
        "bname": col("invoices.billing_name").process_bind_param("Name", dialect),
        "baddr": col("invoices.billing_address").process_bind_param({"city": "Berlin"}, dialect),
        "reason": col("refunds.reason").process_bind_param("partial", dialect),
        "balance": col("wallets.balance").process_bind_param(Decimal("5.00"), dialect),
        "title": col("posts.title").process_bind_param("Title", dialect),
        "body": col("posts.body").process_bind_param("Body", dialect),
        "cbody": col("comments.body").process_bind_param("Comment", dialect),
        "notes": col("moderation_reports.notes").process_bind_param("note", dialect),
    }
    ids = [subject_uuid(n) for n in range(1, subjects + 1)]
    with transaction(engine) as session:
        ciphers = subject_ciphers(session, keyring, ids)
    ip, ua = col("analytics_sessions.ip_address"), col("analytics_sessions.user_agent")
    props, url = col("analytics_events.properties"), col("page_views.url")
    ref, email = col("subjects.external_ref"), col("subjects.email")
    user, ext = col("accounts.username"), col("subject_identities.external_id")
    ref_ix, email_ix = col("subjects.external_ref_index"), col("subjects.email_index")
    user_ix, ext_ix = col("accounts.username_index"), col("subject_identities.external_id_index")
    rows = []
    for n, sid in enumerate(ids, 1):
        c = ciphers[sid]
        rows.append(
            {
                "n": n,
                "ref": ref.process_bind_param(f"ext-{n}", dialect),
                "ref_ix": ref_ix.process_bind_param(f"ext-{n}", dialect),
                "email": email.process_bind_param(f"user{n}@example.com", dialect),
                "email_ix": email_ix.process_bind_param(f"user{n}@example.com", dialect),
                "user": user.process_bind_param(f"u{n}", dialect),
                "user_ix": user_ix.process_bind_param(f"u{n}", dialect),
                "ext": ext.process_bind_param(f"sso-{n}", dialect),
                "ext_ix": ext_ix.process_bind_param(f"sso-{n}", dialect),
                "ip": c.seal(ip.encode("10.0.0.1"), ip.context_bytes()),
                "ua": c.seal(ua.encode("Mozilla/5.0"), ua.context_bytes()),
                "props": c.seal(props.encode({"i": 1}), props.context_bytes()),
                "url": c.seal(url.encode(f"https://example.com/{n}"), url.context_bytes()),
            }
        )
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE bench_seal (n INTEGER PRIMARY KEY, ref BLOB, ref_ix BLOB, email BLOB,"
            " email_ix BLOB, user BLOB, user_ix BLOB, ext BLOB, ext_ix BLOB, ip BLOB, ua BLOB,"
            " props BLOB, url BLOB)"
        )
        conn.execute(
            text(
                "INSERT INTO bench_seal VALUES (:n, :ref, :ref_ix, :email, :email_ix, :user,"
                " :user_ix, :ext, :ext_ix, :ip, :ua, :props, :url)"
            ),
            rows,
        )
    return const


def generate(engine: Engine, subjects: int) -> int:
    """Fill every domain table, set-based; returns the number of rows written."""
    const = _sealers(engine, subjects)
    seq = (
        f"WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {subjects})"
    )
    sid = _hex(1, "n")
    stmts = [
        "INSERT INTO subjects (id, external_ref, external_ref_index, email, email_index, phone,"
        " given_name, family_name, birth_date, country, status, created_at, updated_at)"
        f" {seq} SELECT {sid}, b.ref, b.ref_ix, b.email, b.email_ix, :phone, :name, :family,"
        f" :birth, :country, 'active', '{TS}', '{TS}' FROM seq JOIN bench_seal b USING (n)",
        "INSERT INTO subject_identities (id, subject_id, provider, external_id,"
        f" external_id_index, created_at) {seq} SELECT {_hex(2, 'n')}, {sid}, 'sso', b.ext,"
        f" b.ext_ix, '{TS}' FROM seq JOIN bench_seal b USING (n)",
        "INSERT INTO accounts (id, subject_id, username, username_index, password_hash,"
        f" password_scheme, is_service, must_reset, created_at) {seq} SELECT {_hex(3, 'n')},"
        f" {sid}, b.user, b.user_ix, :pw, 'argon2id', 0, 0, '{TS}'"
        " FROM seq JOIN bench_seal b USING (n)",
        "INSERT INTO orders (id, subject_id, status, currency, total_amount, shipping_address,"
        f" placed_at) {seq}, k(j) AS (VALUES (0), (1)) SELECT {_hex(4, 'n * 2 + j')}, {sid},"
        f" 'placed', 'EUR', :total, :ship, '{TS}' FROM seq, k",
        f"INSERT INTO order_lines (id, order_id, sku, description, quantity, unit_amount)"
        f" {seq}, k(j) AS (VALUES (0), (1)) SELECT {_hex(5, 'n * 2 + j')}, {_hex(4, 'n * 2 + j')},"
        f" 'SKU', 'Course', 1, 49 FROM seq, k",
        f"INSERT INTO payments (id, order_id, subject_id, method, card_number, card_holder, amount,"
        f" currency, status, paid_at) {seq} SELECT {_hex(6, 'n')}, {_hex(4, 'n * 2')}, {sid},"
        f" 'card', printf('tok_%024x_1111', n), :holder, 49, 'EUR', 'authorised', '{TS}'"
        " FROM seq",
        f"INSERT INTO refunds (id, payment_id, amount, reason, refunded_at) {seq}"
        f" SELECT {_hex(7, 'n')}, {_hex(6, 'n')}, 5, :reason, '{TS}' FROM seq WHERE n % 4 = 0",
        f"INSERT INTO invoices (id, order_id, subject_id, number, billing_name, billing_address,"
        f" total_amount, currency, issued_at, retain_until) {seq} SELECT {_hex(8, 'n')},"
        f" {_hex(4, 'n * 2')}, {sid}, 'INV-' || n, :bname, :baddr, 49, 'EUR',"
        f" '{TS}', '2036-12-31' FROM seq",
        f"INSERT INTO wallets (id, subject_id, balance, currency, updated_at) {seq}"
        f" SELECT {_hex(9, 'n')}, {sid}, :balance, 'EUR', '{TS}' FROM seq",
        "INSERT INTO analytics_sessions (id, subject_id, started_at, ip_address, user_agent)"
        f" {seq}, k(j) AS (VALUES (0), (1)) SELECT {_hex(10, 'n * 2 + j')}, {sid}, '{TS}',"
        " b.ip, b.ua FROM seq JOIN bench_seal b USING (n), k",
        f"INSERT INTO analytics_events (subject_id, session_id, type, occurred_at, properties)"
        f" {seq}, k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 39)"
        f" SELECT {sid}, {_hex(10, 'n * 2 + j % 2')}, 'click', '{TS}', b.props"
        " FROM seq JOIN bench_seal b USING (n), k",
        f"INSERT INTO page_views (session_id, subject_id, url, viewed_at) {seq},"
        f" k(j) AS (VALUES (0), (1), (2), (3)) SELECT {_hex(10, 'n * 2 + j % 2')}, {sid},"
        f" b.url, '{TS}' FROM seq JOIN bench_seal b USING (n), k",
        f"INSERT INTO communities (id, slug, name, owner_subject_id, created_at) {seq}"
        f" SELECT {_hex(11, 'n')}, 'c' || n, 'Cohort', {sid}, '{TS}' FROM seq WHERE n % 50 = 0",
        f"INSERT INTO memberships (id, community_id, subject_id, role, joined_at) {seq}"
        f" SELECT {_hex(12, 'n')}, {_hex(11, '(n / 50 + 1) * 50')}, {sid}, 'member', '{TS}'"
        f" FROM seq WHERE (n / 50 + 1) * 50 <= {subjects}",
        f"INSERT INTO posts (id, community_id, author_subject_id, title, body, created_at) {seq}"
        f" SELECT {_hex(13, 'n')}, {_hex(11, '(n / 50 + 1) * 50')}, {sid}, :title, :body,"
        f" '{TS}' FROM seq WHERE (n / 50 + 1) * 50 <= {subjects}",
        f"INSERT INTO comments (id, post_id, author_subject_id, body, created_at) {seq},"
        f" k(j) AS (VALUES (0), (1)) SELECT {_hex(14, 'n * 2 + j')}, {_hex(13, 'n')}, {sid},"
        f" :cbody, '{TS}' FROM seq, k WHERE (n / 50 + 1) * 50 <= {subjects}",
        f"INSERT INTO moderation_reports (id, reporter_subject_id, target_type, target_id, reason,"
        f" notes, status, created_at) {seq} SELECT {_hex(15, 'n')}, {sid}, 'post',"
        f" {_hex(13, 'n')}, 'spam', :notes, 'open', '{TS}' FROM seq WHERE n % 10 = 0",
    ]
    with engine.begin() as conn:
        for stmt in stmts:
            clause = text(stmt)
            wanted = {k: v for k, v in const.items() if f":{k}" in stmt}
            conn.execute(clause, wanted)
        conn.exec_driver_sql("DROP TABLE bench_seal")
        rows = 0
        for table in TABLES:
            rows += int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    return rows


def add_heavy_subject(engine: Engine, subjects: int) -> uuid.UUID:
    """Give subject 1 a further 100,000 analytics events (its own sealed properties)."""
    seq = (
        "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq"
        f" WHERE n < {HEAVY_EVENTS})"
    )
    sid = _hex(1, "1")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO analytics_events (subject_id, session_id, type, occurred_at,"
                f" properties) {seq} SELECT {sid}, {_hex(10, '2')}, 'page_view', '{TS}',"
                f" (SELECT properties FROM analytics_events WHERE subject_id = {sid} LIMIT 1)"
                " FROM seq"
            )
        )
    return subject_uuid(1)


def subject_uuid(n: int) -> uuid.UUID:
    return uuid.UUID(f"{1:08x}{n:024x}")


def _queue(engine: Engine, subject_ns: list[int], types: list[str]) -> list[uuid.UUID]:
    from govern import dsr
    from govern.db import transaction

    cal = dsr.WorkCalendar()
    ids = []
    with transaction(engine) as s:
        for n, type_ in zip(subject_ns, types, strict=True):
            out = dsr.submit(
                s,
                type=type_,
                identifiers={"subject_id": str(subject_uuid(n))},
                calendar=cal,
                actor="bench",
                verified=True,
                corrections={"subjects.phone": "+4940000000"} if type_ == "rectification" else None,
            )
            dsr.approve(s, out.request.id, actor="bench")
            ids.append(out.request.id)
    return ids


def _bare_erasure(engine: Engine, n: int, out: Path) -> None:
    """The peer: the same per-table actions in one transaction, no checkpoints or audit."""
    from govern.db import load_models, transaction
    from govern.dsr.engine import StepContext, build_plan, run_step

    md = load_models()
    sid = subject_uuid(n)
    with transaction(engine) as s:
        plan = build_plan(s, md, type="erasure", subject_id=sid, corrections={}, held=False)
        ctx = StepContext(uuid.uuid4(), "erasure", sid, {}, out, md)
        for step in plan.steps:
            if step.action in ("delete", "redact"):
                run_step(s, ctx, step.table, step.action)


def _steps(engine: Engine, rid: uuid.UUID) -> int:
    from govern import dsr
    from govern.db import transaction

    with transaction(engine) as s:
        return len(dsr.show(s, rid).steps)


def run() -> list[dict[str, Any]]:
    from govern import dsr, migrations
    from govern.db import create_engine

    subjects = int(os.environ.get(SUBJECTS_ENV, "20000"))
    rows_out: list[dict[str, Any]] = []
    with sqlite_url() as url, tempfile.TemporaryDirectory() as tmp:
        migrations.upgrade(url)
        engine = create_engine(url)  # generate() attaches a keyring under a random KEK
        t0 = time.perf_counter()
        rows = generate(engine, subjects)
        heavy = add_heavy_subject(engine, subjects)
        rows += HEAVY_EVENTS
        gen_s = time.perf_counter() - t0
        out = Path(tmp) / "exports"
        common = {"backend": "sqlite", "rows": rows, "generate_s": round(gen_s, 1)}

        # erasure of one subject, end to end; peer: the bare actions in one transaction
        erase_ns = list(range(101, 131))
        ids = _queue(engine, erase_ns, ["erasure"] * len(erase_ns))
        times, cpu = [], []
        for rid in ids:
            t, c = time.perf_counter(), time.process_time()
            assert dsr.process_request(engine, rid, export_dir=out).state == "completed"
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        bare = []
        for n in range(201, 231):
            t = time.perf_counter()
            _bare_erasure(engine, n, out)
            bare.append(time.perf_counter() - t)
        p50, peer = statistics.median(times) * 1000, statistics.median(bare) * 1000
        rows_out.append(
            emit(
                "dsr_erasure_one_subject_p50",
                p50,
                "ms",
                target_ms=50,
                peer_bare_actions_one_tx_ms=round(peer, 2),
                ratio=round(p50 / peer, 2),
                cpu_p50_ms=round(statistics.median(cpu) * 1000, 2),
                steps=_steps(engine, ids[0]),
                **common,
            )
        )

        # access export of one (ordinary) subject
        ids = _queue(engine, list(range(301, 321)), ["access"] * 20)
        times = []
        for rid in ids:
            t = time.perf_counter()
            assert dsr.process_request(engine, rid, export_dir=out).export_path
            times.append(time.perf_counter() - t)
        rows_out.append(
            emit(
                "dsr_access_export_one_subject_p50",
                statistics.median(times) * 1000,
                "ms",
                target_ms=250,
                **common,
            )
        )

        # 1,000 queued requests, a mix of the six rights, drained by one worker; then the
        # same mix on other subjects with one transaction per step with work
        for figure, first, budget in (
            ("dsr_queue_throughput", 1001, dsr.DEFAULT_ROWS_PER_TRANSACTION),
            ("dsr_queue_throughput_one_tx_per_step", 2001, 0),
        ):
            types = [dsr.REQUEST_TYPES[i % 6] for i in range(1000)]
            _queue(engine, list(range(first, first + 1000)), types)
            t, c = time.perf_counter(), time.process_time()
            result = dsr.work(
                engine, export_dir=out, once=True, worker="bench", rows_per_transaction=budget
            )
            elapsed, cpu_s = time.perf_counter() - t, time.process_time() - c
            assert len(result.processed) == 1000
            assert all(p.state == "completed" for p in result.processed)
            rows_out.append(
                emit(
                    figure,
                    1000 / elapsed,
                    "requests/s",
                    target=200,
                    requests=1000,
                    rows_per_transaction=budget,
                    seconds=round(elapsed, 2),
                    cpu_seconds=round(cpu_s, 2),
                    cpu_requests_per_s=round(1000 / cpu_s, 1),
                    **common,
                )
            )

        # peak memory of an access export for a subject with 100,000 events
        (rid,) = _queue(engine, [1], ["access"])
        with peak_memory() as mem:
            res = dsr.process_request(engine, rid, export_dir=out)
        assert res.export_path
        from govern.dsr.engine import read_manifest

        manifest = read_manifest(Path(res.export_path))
        events = next(
            f["rows"] for f in manifest["files"] if f["name"].endswith("analytics_events.json")
        )
        assert events >= HEAVY_EVENTS
        rows_out.append(
            emit(
                "dsr_access_export_peak_memory",
                mem["mb"],
                "MB",
                target_mb=100,
                subject_events=events,
                package_rows=manifest["rows"],
                **common,
            )
        )
        assert heavy == subject_uuid(1)
        engine.dispose()
    return rows_out
