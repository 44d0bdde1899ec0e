"""Retention: sign-off, simulation, batched runs, rollback and purge. Sessions are the caller's.

Every function here takes a :class:`~sqlalchemy.orm.Session` and never commits, except the
drivers in :mod:`govern.retention.runner`, which commit one batch at a time on purpose.

Quarantine copies rows as JSON of their *stored* values, built by the database
(``json_object`` on SQLite, ``json_build_object`` on PostgreSQL; binary columns, the
encrypted ones included, as hex) and put back with ``json_extract`` /
``json_populate_record`` and ``decode(..., 'hex')``, so a rollback restores byte-identical
rows, envelopes still sealed, without decrypting anything.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Float,
    LargeBinary,
    Numeric,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from govern import audit
from govern.errors import NotApprovedError, RestoreWindowError, UnknownRunError, UsageError
from govern.retention.models import Alert, Approval, PolicyVersion, QuarantineRow, Run, RunBatch
from govern.retention.policy import (
    Bound,
    Duration,
    Policy,
    PolicySet,
    anonymised_columns,
    bind,
)
from govern.retention.schemas import (
    AlertOut,
    ApprovalOut,
    PolicyOut,
    PolicyPlan,
    PurgeOut,
    RollbackOut,
    RunOut,
)
from govern.retention.selection import (
    IN_PLACE,
    Child,
    Clauses,
    cascade_children,
    clauses,
    subject_column,
)
from govern.types.utc import utcnow

ALERT_KINDS = ("circuit_breaker", "run_failed", "run_missed", "unusual_volume")
HISTORY_RUNS = 5
MIN_HISTORY = 3
AGGREGATE = "retention_run"


def _quarantine() -> Table:
    table = QuarantineRow.__table__
    assert isinstance(table, Table)
    return table


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _bind(session: Session, policy: Policy) -> Bound:
    from govern.db import load_models

    return bind(policy, load_models())


def _record_version(session: Session, policy: Policy) -> None:
    key = (policy.name, policy.content_hash)
    if session.get(PolicyVersion, key) is None:
        session.add(
            PolicyVersion(
                policy_name=policy.name,
                content_hash=policy.content_hash,
                body=policy.model_dump(mode="json"),
            )
        )
        session.flush()


def latest_approval(session: Session, policy: Policy) -> Approval | None:
    """The newest sign-off of this exact version, or None."""
    return session.scalars(
        select(Approval)
        .where(Approval.policy_name == policy.name, Approval.content_hash == policy.content_hash)
        .order_by(Approval.id.desc())
        .limit(1)
    ).first()


def is_approved(session: Session, policy: Policy) -> bool:
    return latest_approval(session, policy) is not None


def approve(session: Session, policy: Policy, *, by: str, note: str | None = None) -> ApprovalOut:
    """Record who signed off this version of ``policy``; an edit needs a new sign-off."""
    if not by.strip():
        raise UsageError("an approval needs the approver's name (--by)")
    _bind(session, policy)
    _record_version(session, policy)
    row = Approval(
        policy_name=policy.name, content_hash=policy.content_hash, approved_by=by.strip(), note=note
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=by.strip(),
        action="retention.approve",
        target_type="retention_policy",
        target_id=policy.name,
        details={"content_hash": policy.content_hash},
    )
    return ApprovalOut(
        policy=policy.name,
        content_hash=policy.content_hash,
        approved_by=row.approved_by,
        note=note,
        approved_at=row.approved_at,
    )


def _holds_exist(session: Session) -> bool:
    from govern.holds import held_subject_ids

    return bool(session.scalar(select(exists(held_subject_ids()))))


def _previous_volumes(session: Session, policy: str) -> list[int]:
    rows = session.scalars(
        select(Run.processed_rows)
        .where(Run.policy_name == policy, Run.status.in_(("completed", "rolled_back", "purged")))
        .order_by(Run.started_at.desc())
        .limit(HISTORY_RUNS)
    ).all()
    return [int(r) for r in rows]


def plan_policy(session: Session, policy: Policy, *, now: dt.datetime | None = None) -> PolicyPlan:
    """Simulate ``policy``: counts, time span, sample keys, exclusions and tripped limits.

    Changes nothing. Uses :func:`govern.retention.selection.clauses`, as every batch does.
    """
    now = now or utcnow()
    bound = _bind(session, policy)
    return _plan(session, bound, policy.cutoff(now), _holds_exist(session))


def _plan(session: Session, bound: Bound, cutoff: dt.datetime, holds: bool) -> PolicyPlan:
    p = bound.policy
    t = bound.table
    cl = clauses(bound, cutoff, holds_exist=holds)
    keep = and_(~cl.held, ~cl.referenced)
    stamp = bound.stamp
    agg = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((cl.held, 1), else_=0)), 0),
            func.coalesce(func.sum(case((and_(~cl.held, cl.referenced), 1), else_=0)), 0),
            func.min(case((keep, stamp), else_=null())),
            func.max(case((keep, stamp), else_=null())),
        )
        .select_from(t)
        .where(cl.base)
    ).one()
    total, held_n, ref_n, oldest, newest = agg
    rows = int(total) - int(held_n) - int(ref_n)
    table_rows = int(session.scalar(select(func.count()).select_from(t)) or 0)
    sample = list(
        session.scalars(select(bound.key).where(cl.due).order_by(bound.key).limit(5)).all()
    )
    cascaded = 0
    if p.action not in IN_PLACE:
        due_keys = select(bound.key).where(cl.due)
        for child in cascade_children(t):
            cascaded += int(
                session.scalar(
                    select(func.count()).select_from(child.table).where(child.fk.in_(due_keys))
                )
                or 0
            )
    history = _previous_volumes(session, p.name)
    median = int(statistics.median(history)) if len(history) >= MIN_HISTORY else None
    share = rows / table_rows if table_rows else 0.0
    return PolicyPlan(
        policy=p.name,
        table=t.name,
        action=p.action,
        content_hash=p.content_hash,
        approved=is_approved(session, p),
        cutoff=cutoff,
        rows=rows,
        cascaded_rows=cascaded,
        oldest=oldest,
        newest=newest,
        sample_keys=[str(k) if isinstance(k, uuid.UUID) else k for k in sample],
        excluded_by_holds=int(held_n),
        excluded_by_references=int(ref_n),
        table_rows=table_rows,
        share_of_table=share,
        previous_median=median,
        limits_tripped=_limits(p, rows, share, median),
    )


def _limits(p: Policy, rows: int, share: float, median: int | None) -> list[str]:
    out = []
    if p.max_rows_per_run is not None and rows > p.max_rows_per_run:
        out.append(f"{rows} rows > max_rows_per_run {p.max_rows_per_run}")
    if p.max_share_of_table is not None and share > p.max_share_of_table:
        out.append(f"{share:.1%} of the table > max_share_of_table {p.max_share_of_table:.1%}")
    if (
        p.max_growth_factor is not None
        and median is not None
        and median > 0
        and rows > p.max_growth_factor * median
    ):
        out.append(
            f"unusual volume: {rows} rows > {p.max_growth_factor:g} x median {median} "
            f"of the last {HISTORY_RUNS} runs"
        )
    return out


def plan(
    session: Session,
    policies: PolicySet,
    name: str | None = None,
    *,
    now: dt.datetime | None = None,
) -> list[PolicyPlan]:
    now = now or utcnow()
    return [plan_policy(session, p, now=now) for p in policies.select(name)]


# --------------------------------------------------------------------------- alerts


def raise_alert(
    session: Session,
    kind: str,
    *,
    policy: str | None,
    message: str,
    run_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AlertOut:
    """Record an alert and append it to the outbox as ``govern.retention.alert``.

    Channels (log, webhook) are called by the caller after commit: see
    :func:`govern.retention.alerts.dispatch`.
    """
    from govern import events

    if kind not in ALERT_KINDS:
        raise UsageError(f"unknown alert kind {kind!r}; known: {', '.join(ALERT_KINDS)}")
    row = Alert(
        kind=kind, policy_name=policy, run_id=run_id, message=message[:500], details=details or {}
    )
    session.add(row)
    session.flush()
    events.emit(
        session,
        type="govern.retention.alert",
        aggregate_type="retention_policy",
        aggregate_id=policy or "scheduler",
        data={"kind": kind, "run_id": run_id, "message": row.message, "details": row.details},
    )
    return _alert_out(row)


def _alert_out(row: Alert) -> AlertOut:
    return AlertOut(
        id=row.id,
        kind=row.kind,
        policy=row.policy_name,
        run_id=row.run_id,
        message=row.message,
        details=dict(row.details or {}),
        raised_at=row.raised_at,
    )


def list_alerts(session: Session, *, limit: int = 50) -> list[AlertOut]:
    rows = session.scalars(select(Alert).order_by(Alert.id.desc()).limit(limit)).all()
    return [_alert_out(r) for r in rows]


# --------------------------------------------------------------------------- runs


def run_out(run: Run, detail: str | None = None) -> RunOut:
    return RunOut(
        id=run.id,
        policy=run.policy_name,
        table=run.table_name,
        action=run.action,
        status=run.status,
        planned_rows=run.planned_rows,
        processed_rows=run.processed_rows,
        cascaded_rows=run.cascaded_rows,
        batches=run.batches,
        cutoff=run.cutoff,
        restore_until=run.restore_until,
        started_at=run.started_at,
        finished_at=run.finished_at,
        override_by=run.override_by,
        detail=detail or run.error,
    )


def unfinished_run(session: Session, policy: str) -> Run | None:
    """The policy's run that was killed or failed part-way, to be resumed."""
    return session.scalars(
        select(Run).where(Run.policy_name == policy, Run.status.in_(("running", "failed"))).limit(1)
    ).first()


def start_run(
    session: Session,
    policy: Policy,
    *,
    actor: str,
    override_by: str | None = None,
    override_reason: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Run, list[AlertOut]]:
    """Resume the policy's unfinished run, or plan a new one and check the circuit breaker.

    Returns the run (status ``running``, or ``aborted`` when a limit tripped without an
    override) and the alerts raised; the caller commits, then dispatches the alerts.

    Raises:
        NotApprovedError: the policy is unapproved or changed since its approval.
    """
    now = now or utcnow()
    bound = _bind(session, policy)
    if not is_approved(session, policy):
        raise NotApprovedError(
            f"policy {policy.name!r} version {policy.content_hash[:12]} is not approved; "
            f"it can only be simulated (govern retention approve {policy.name} --by NAME)"
        )
    current = unfinished_run(session, policy.name)
    if current is not None:
        if current.content_hash != policy.content_hash:
            raise UsageError(
                f"run {current.id} of an earlier version of {policy.name!r} is unfinished; "
                "restore that version to finish it, or roll it back"
            )
        current.status = "running"
        current.error = None
        session.flush()
        return current, []
    if bool(override_by) != bool(override_reason):
        raise UsageError("an override needs both who (--override-by) and why (--override)")
    _record_version(session, policy)
    cutoff = policy.cutoff(now)
    planned = _plan(session, bound, cutoff, _holds_exist(session))
    restore_until = (
        None
        if policy.action in ("archive_then_delete", "crypto_shred")
        else Duration.parse(policy.restore_window).after(now)
    )
    run = Run(
        policy_name=policy.name,
        content_hash=policy.content_hash,
        table_name=policy.table,
        action=policy.action,
        status="running",
        cutoff=cutoff,
        planned_rows=planned.rows,
        restore_until=restore_until,
        triggered_by=actor,
        started_at=now,
    )
    alerts: list[AlertOut] = []
    tripped = planned.limits_tripped
    if tripped and not override_by:
        run.status = "aborted"
        run.error = "circuit breaker: " + "; ".join(tripped)
        run.finished_at = now
    elif tripped:
        run.override_by = override_by
        run.override_reason = override_reason
    session.add(run)
    session.flush()
    if run.status == "aborted":
        kind = "unusual_volume" if all(t.startswith("unusual") for t in tripped) else None
        alerts.append(
            raise_alert(
                session,
                kind or "circuit_breaker",
                policy=policy.name,
                run_id=run.id,
                message=f"run aborted before touching a row: {'; '.join(tripped)}",
                details={"planned_rows": planned.rows, "table_rows": planned.table_rows},
            )
        )
    audit.record(
        session,
        actor=actor,
        action="retention.run.start" if run.status == "running" else "retention.run.abort",
        target_type=AGGREGATE,
        target_id=str(run.id),
        details={
            "policy": policy.name,
            "content_hash": policy.content_hash,
            "planned_rows": planned.rows,
            "tripped": tripped,
            "override_by": run.override_by,
            "override_reason": run.override_reason,
        },
    )
    _run_event(session, run, "started" if run.status == "running" else "aborted")
    return run, alerts


def _run_event(session: Session, run: Run, what: str, **extra: Any) -> None:
    from govern import events

    events.emit(
        session,
        type=f"govern.retention.run_{what}",
        aggregate_type=AGGREGATE,
        aggregate_id=run.id,
        data={
            "policy": run.policy_name,
            "table": run.table_name,
            "action": run.action,
            "planned_rows": run.planned_rows,
            "processed_rows": run.processed_rows,
            **extra,
        },
    )


def _encode_key(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(str(value) if isinstance(value, uuid.UUID) else value)


def _decode_key(bound: Bound, raw: str | None) -> Any:
    return _decode_value(bound.key, raw)


def _decode_value(col: Any, raw: str | None) -> Any:
    if raw is None:
        return None
    value = json.loads(raw)
    try:
        py = col.type.python_type
    except NotImplementedError:
        return value
    return uuid.UUID(value) if py is uuid.UUID else value


def _quote(session: Session, name: str) -> str:
    return session.get_bind().dialect.identifier_preparer.quote(name)


def is_binary(col: Any) -> bool:
    """True for binary columns, the protected types (``impl = LargeBinary``) included."""
    typ = col.type
    return isinstance(typ, LargeBinary) or isinstance(
        getattr(typ, "impl_instance", None), LargeBinary
    )


def binary_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if is_binary(c)]


# json_object / json_build_object take at most 127 / 100 arguments: build wide rows in parts.
_JSON_PART = 40


def _row_json(session: Session, table: Table) -> Any:
    """An expression for the JSON of a row's stored values, built by the database.

    Binary columns (envelopes, blind indexes, plain blobs) are hex text, so the copy is
    lossless on both backends and keeps the sealed bytes exactly as stored; REALs on
    SQLite are printed with 17 significant digits, which round-trip exactly.
    """
    pg = session.get_bind().dialect.name == "postgresql"
    parts: list[Any] = []
    for col in table.columns:
        value: Any = col
        if is_binary(col):
            value = (
                func.encode(col, "hex")
                if pg
                else case((col.is_(None), null()), else_=func.hex(col))
            )
        elif not pg and isinstance(col.type, Numeric | Float):
            # json_object prints REALs with 15 digits; 17 round-trip exactly.
            value = case((func.typeof(col) == "real", func.printf("%!.17g", col)), else_=col)
        parts.append((cast(literal(col.name), Text), value))
    build = func.json_build_object if pg else func.json_object
    chunks = [
        build(*[x for pair in parts[i : i + _JSON_PART] for x in pair])
        for i in range(0, len(parts), _JSON_PART)
    ]
    if len(chunks) == 1:
        return chunks[0]
    if pg:
        from sqlalchemy.dialects.postgresql import JSON as PG_JSON
        from sqlalchemy.dialects.postgresql import JSONB

        merged: Any = cast(chunks[0], JSONB)
        for c in chunks[1:]:
            merged = merged.op("||")(cast(c, JSONB))
        return cast(merged, PG_JSON)
    merged = chunks[0]
    for c in chunks[1:]:
        merged = func.json_patch(merged, c)
    return merged


def _quarantine_from(
    session: Session,
    run: Run,
    seq: int,
    table: Table,
    where: Any,
) -> Any:
    """``INSERT INTO retention_quarantine SELECT ... FROM table WHERE where``."""
    q = _quarantine()
    key = next(iter(table.primary_key.columns))
    subj = subject_column(table)
    subject_value: Any = null()
    if subj is not None and subj.type.python_type is uuid.UUID:
        subject_value = subj
    src = select(
        literal(run.id, q.c.run_id.type),
        literal(seq),
        literal(table.name),
        cast(key, q.c.row_key.type),
        subject_value,
        _row_json(session, table),
        literal(run.restore_until, q.c.expires_at.type),
    ).where(where)
    return insert(q).from_select(
        ["run_id", "batch", "table_name", "row_key", "subject_id", "row", "expires_at"], src
    )


def _batch_keys(run: Run, seq: int, table: Table) -> Any:
    q = _quarantine()
    key = next(iter(table.primary_key.columns))
    return select(cast(q.c.row_key, key.type).label(key.name)).where(
        q.c.run_id == run.id, q.c.batch == seq, q.c.table_name == table.name
    )


def run_batch(session: Session, run: Run, policy: Policy) -> int:
    """Process the next keyset batch of ``run`` in the caller's transaction.

    Copies the due rows (and rows that cascade with them) to quarantine, emits a
    tombstone per row through the outbox, deletes or anonymises them, and checkpoints the
    run. Returns the rows processed; 0 means the run is complete (and marked so).
    """
    if run.status != "running":
        raise UsageError(f"run {run.id} is {run.status}, not running")
    if policy.content_hash != run.content_hash:
        raise UsageError(f"policy {policy.name!r} changed since run {run.id} started")
    bound = _bind(session, policy)
    t = bound.table
    key = bound.key
    cl: Clauses = clauses(bound, run.cutoff, holds_exist=_holds_exist(session))
    if policy.action == "crypto_shred":
        return _shred_batch(session, run, bound, cl)
    lo = _decode_key(bound, run.last_key)
    keyset = cl.due if lo is None else and_(cl.due, key > lo)
    hi = session.scalar(
        select(key).where(keyset).order_by(key).offset(policy.batch_size - 1).limit(1)
    )
    if hi is None:  # the last, short batch (max() is undefined for uuid on PostgreSQL)
        hi = session.scalar(select(key).where(keyset).order_by(key.desc()).limit(1))
    if hi is None:
        _finish(session, run)
        return 0
    rng = and_(keyset, key <= hi)
    seq = run.batches + 1
    pg = session.get_bind().dialect.name == "postgresql"
    children: list[Child] = [] if policy.action == "anonymise" else cascade_children(t)
    cascaded = 0
    for child in children:
        cascaded += _insert_count(
            session,
            _quarantine_from(session, run, seq, child.table, child.fk.in_(select(key).where(rng))),
        )
    tombstones = policy.action != "anonymise"
    if pg:
        n = _move_pg(session, run, seq, bound, rng)
    else:
        copied = _insert_count(session, _quarantine_from(session, run, seq, t, rng))
        if tombstones:
            # Under the write lock (taken by the copy) the batch's rows cannot change until
            # commit, so the tombstones read their keys from the table itself, by the same
            # condition, before the DELETE: a key range scan with each key once, rather than
            # the quarantine's keys read back as text and made distinct.
            for child in children:
                _tombstones(session, child.table, _batch_keys(run, seq, child.table))
            emitted = _tombstones(session, t, select(key).where(rng))
            if emitted != copied:
                raise UsageError(
                    f"run {run.id}: batch {seq} copied {copied} rows but wrote {emitted} "
                    "tombstones; the batch was not committed"
                )
            res = session.execute(delete(t).where(rng))
        else:
            res = session.execute(update(t).where(rng).values(dict.fromkeys(bound.nulled)))
        n = _rowcount(res)
        if n != copied:
            raise UsageError(
                f"run {run.id}: batch {seq} copied {copied} but changed {n} rows; retried"
            )
    if pg and tombstones:
        for tbl in [c.table for c in children] + [t]:
            _tombstones(session, tbl, _batch_keys(run, seq, tbl))
    session.add(
        RunBatch(
            run_id=run.id,
            seq=seq,
            lo_key=run.last_key,
            hi_key=_encode_key(hi),
            rows=n,
        )
    )
    run.last_key = _encode_key(hi)
    run.batches = seq
    run.processed_rows += n
    run.cascaded_rows += cascaded
    session.flush()
    return n


def _tombstones(session: Session, table: Table, keys: Any) -> int:
    from govern import events

    return events.emit_tombstones(session, table, keys, cause="retention")


def _shred_batch(session: Session, run: Run, bound: Bound, cl: Clauses) -> int:
    """Crypto-shred the next keyset batch of subjects (``batch_size`` subjects).

    A subject is in the batch when it has due rows: rows past the cutoff (matching the
    filter, not held) with values sealed under its current key. Its key is destroyed, so
    those rows' values (and every copy of them) become unreadable where they lie; its
    other values (younger rows, other tables) are re-sealed under a fresh key first, so
    shredding never reaches beyond the policy. Rows stay; nothing is quarantined.
    """
    from govern import events
    from govern.keys.service import shred_subject_keeping
    from govern.retention.policy import shred_subject_column

    t = bound.table
    subject_name = shred_subject_column(t)
    assert subject_name is not None  # checked by bind()
    subj = t.c[subject_name]
    lo = _decode_value(subj, run.last_key)
    keyset = cl.due if lo is None else and_(cl.due, subj > lo)
    subjects = list(
        session.scalars(
            select(subj).where(keyset).distinct().order_by(subj).limit(bound.policy.batch_size)
        )
    )
    if not subjects:
        _finish(session, run)
        return 0
    counts: dict[Any, int] = {
        sid: int(c)
        for sid, c in session.execute(
            select(subj, func.count()).where(keyset, subj.in_(subjects)).group_by(subj)
        )
    }
    seq = run.batches + 1
    n = 0
    for sid in subjects:
        _, resealed = shred_subject_keeping(
            session,
            sid,
            dropped={t.name: and_(cl.due, subj == sid)},
            actor=run.triggered_by,
            reason=f"retention policy {run.policy_name}",
        )
        n += int(counts[sid])
        events.emit(
            session,
            type="govern.retention.subject_shredded",
            aggregate_type="subject",
            aggregate_id=sid,
            data={
                "run_id": run.id,
                "table": t.name,
                "rows": int(counts[sid]),
                "resealed_rows": resealed,
            },
        )
    session.add(
        RunBatch(
            run_id=run.id, seq=seq, lo_key=run.last_key, hi_key=_encode_key(subjects[-1]), rows=n
        )
    )
    run.last_key = _encode_key(subjects[-1])
    run.batches = seq
    run.processed_rows += n
    session.flush()
    return n


def _insert_count(session: Session, ins: Any) -> int:
    """Rows an ``INSERT ... SELECT`` wrote (psycopg reports -1 for a compiled one)."""
    if session.get_bind().dialect.name != "postgresql":
        return _rowcount(session.execute(ins))
    q = _quarantine()
    done = ins.returning(q.c.id).cte("done")
    return int(session.execute(select(func.count()).select_from(done)).scalar_one())


def _move_pg(session: Session, run: Run, seq: int, bound: Bound, rng: Any) -> int:
    """One statement: copy to quarantine and delete/anonymise exactly the rows copied.

    Both parts select the batch by the same condition in the same statement, hence under
    the same snapshot: the change reads each row through the primary-key range rather than
    looking up every copied key (a hash of the keys, spilled to disk past ``work_mem``,
    then one index probe per key). A row changed concurrently so that it no longer matches
    is skipped by the change, and the counts then differ: the batch is refused.
    """
    t = bound.table
    key = bound.key
    ins = _quarantine_from(session, run, seq, t, rng)
    q = _quarantine()
    copied = ins.returning(q.c.row_key).cte("copied")
    if bound.policy.action == "anonymise":
        change: Any = update(t).where(rng).values(dict.fromkeys(bound.nulled))
    else:
        change = delete(t).where(rng)
    changed = change.returning(key).cte("changed")
    stmt = select(
        select(func.count()).select_from(copied).scalar_subquery(),
        select(func.count()).select_from(changed).scalar_subquery(),
    )
    n_copied, n_changed = session.execute(stmt).one()
    if n_copied != n_changed:
        raise UsageError(
            f"run {run.id}: batch {seq} copied {n_copied} but changed {n_changed} rows "
            "(concurrent change); the batch was not committed"
        )
    return int(n_changed)


def _finish(session: Session, run: Run) -> None:
    run.status = "completed"
    run.finished_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=run.triggered_by,
        action="retention.run.complete",
        target_type=AGGREGATE,
        target_id=str(run.id),
        details={
            "policy": run.policy_name,
            "planned_rows": run.planned_rows,
            "processed_rows": run.processed_rows,
            "cascaded_rows": run.cascaded_rows,
        },
    )
    _run_event(session, run, "completed", cascaded_rows=run.cascaded_rows)


def fail_run(session: Session, run_id: uuid.UUID, error: str) -> tuple[RunOut, AlertOut]:
    """Mark a run failed (it stays resumable from its checkpoint) and raise an alert."""
    run = session.get(Run, run_id)
    if run is None:
        raise UnknownRunError(f"unknown retention run {run_id}")
    run.status = "failed"
    run.error = error[:500]
    session.flush()
    alert = raise_alert(
        session,
        "run_failed",
        policy=run.policy_name,
        run_id=run.id,
        message=f"run failed after {run.processed_rows} of {run.planned_rows} rows: {error}"[:500],
    )
    return run_out(run), alert


def get_run(session: Session, run_id: uuid.UUID) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise UnknownRunError(f"unknown retention run {run_id}")
    return run


def list_runs(session: Session, *, policy: str | None = None, limit: int = 20) -> list[RunOut]:
    stmt = select(Run).order_by(Run.started_at.desc()).limit(limit)
    if policy:
        stmt = stmt.where(Run.policy_name == policy)
    return [run_out(r) for r in session.scalars(stmt)]


# --------------------------------------------------------------------------- rollback, purge


def _restore_sql(session: Session, table: Table, anonymised: Sequence[str] | None) -> str:
    """The restore statement. Identifiers come from the metadata, quoted; values are bound.

    On PostgreSQL binary columns are decoded from hex with ``decode(..., 'hex')`` and the
    other columns typed by ``json_populate_record``; SQLite tables with binary columns
    are restored by :func:`_restore_python` instead (``unhex`` needs SQLite 3.41).
    """
    qn = _quote(session, table.name)
    qt = _quote(session, QuarantineRow.__tablename__)
    key = next(iter(table.primary_key.columns))
    qk = _quote(session, key.name)
    pg = session.get_bind().dialect.name == "postgresql"
    where = "q.run_id = :run_id AND q.table_name = :table_name"
    blobs = set(binary_columns(table))
    if pg:

        def value(name: str) -> str:
            qc = _quote(session, name)
            if name in blobs:
                return f"decode(q.row ->> '{name}', 'hex')"
            return f"r.{qc}"

        if anonymised is not None:
            sets = ", ".join(f"{_quote(session, c)} = {value(c)}" for c in anonymised)
            return (
                f"UPDATE {qn} SET {sets} FROM {qt} q, json_populate_record(NULL::{qn}, q.row) r "
                f"WHERE {where} AND {qn}.{qk} = r.{qk}"
            )
        cols = ", ".join(_quote(session, c.name) for c in table.columns)
        rcols = ", ".join(value(c.name) for c in table.columns)
        return (
            f"INSERT INTO {qn} ({cols}) SELECT {rcols} FROM {qt} q "
            f"CROSS JOIN LATERAL json_populate_record(NULL::{qn}, q.row) r WHERE {where} "
            "ORDER BY q.id"
        )

    def extract(name: str) -> str:
        return f"json_extract(q.row, '$.\"{name}\"')"

    if anonymised is not None:
        key_type = "INTEGER" if key.type.python_type is int else "TEXT"
        sets = ", ".join(f"{_quote(session, c)} = {extract(c)}" for c in anonymised)
        return (
            f"UPDATE {qn} SET {sets} FROM {qt} q WHERE {where} "
            f"AND {qn}.{qk} = CAST(q.row_key AS {key_type})"
        )
    cols = ", ".join(_quote(session, c.name) for c in table.columns)
    vals = ", ".join(extract(c.name) for c in table.columns)
    return f"INSERT INTO {qn} ({cols}) SELECT {vals} FROM {qt} q WHERE {where} ORDER BY q.id"


def rollback(
    session: Session, run_id: uuid.UUID, *, actor: str, now: dt.datetime | None = None
) -> RollbackOut:
    """Put a run's quarantined rows back, inside the restore window, with compensating events.

    Raises:
        UnknownRunError: no such run.
        RestoreWindowError: the window has passed, or the run was rolled back or purged.
    """
    from govern import events
    from govern.db import load_models

    now = now or utcnow()
    run = get_run(session, run_id)
    if run.status in ("rolled_back", "purged", "aborted"):
        raise RestoreWindowError(f"run {run_id} is {run.status}; there is nothing to restore")
    if run.action == "crypto_shred":
        raise RestoreWindowError(
            f"run {run_id} crypto-shredded subject keys; destroyed keys cannot come back"
        )
    if run.status in ("running", "failed"):
        raise UsageError(f"run {run_id} is unfinished; finish it before rolling it back")
    if run.restore_until is not None and run.restore_until < now:
        raise RestoreWindowError(
            f"run {run_id}'s restore window ended {run.restore_until:%Y-%m-%d %H:%M} UTC"
        )
    md = load_models()
    q = _quarantine()
    names = set(
        session.scalars(select(q.c.table_name).where(q.c.run_id == run_id).distinct()).all()
    )
    order = [t for t in md.sorted_tables if t.name in names]
    anonymised: list[str] | None = None
    if run.action == "anonymise":
        version = session.get(PolicyVersion, (run.policy_name, run.content_hash))
        anonymised = list((version.body if version else {}).get("columns", []))
    restored: dict[str, int] = {}
    for table in order:
        key = next(iter(table.primary_key.columns))
        nulled = None if anonymised is None else list(anonymised_columns(table, anonymised))
        keys = select(cast(q.c.row_key, key.type)).where(
            q.c.run_id == run_id, q.c.table_name == table.name
        )
        if anonymised is None:
            clash = session.scalar(select(func.count()).select_from(table).where(key.in_(keys)))
            if clash:
                raise UsageError(
                    f"cannot roll back run {run_id}: {clash} key(s) of {table.name} are in use "
                    "by rows written since"
                )
        if session.get_bind().dialect.name == "sqlite" and binary_columns(table):
            n = _restore_python(session, table, run_id, nulled)
        else:
            res = session.execute(
                text(_restore_sql(session, table, nulled)),
                {"run_id": _run_param(session, run_id), "table_name": table.name},
            )
            n = _rowcount(res)
        restored[table.name] = n
        for k in session.scalars(keys.order_by(q.c.id)):
            events.emit(
                session,
                type="govern.row.restored",
                aggregate_type=table.name,
                aggregate_id=k,
                data={"run_id": run_id, "cause": "retention_rollback", "op": "c"},
            )
    session.execute(delete(q).where(q.c.run_id == run_id))
    run.status = "rolled_back"
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="retention.rollback",
        target_type=AGGREGATE,
        target_id=str(run_id),
        details={"policy": run.policy_name, "restored": restored},
    )
    _run_event(session, run, "rolled_back", restored=restored)
    return RollbackOut(run_id=run_id, policy=run.policy_name, restored=restored)


def _run_param(session: Session, run_id: uuid.UUID) -> Any:
    return str(run_id) if session.get_bind().dialect.name == "postgresql" else run_id.hex


def _restore_python(
    session: Session, table: Table, run_id: uuid.UUID, anonymised: Sequence[str] | None
) -> int:
    """SQLite before 3.41 has no ``unhex``: decode binary columns in Python.

    Values pass through the driver untyped (``exec_driver_sql``), so they are stored as
    they were copied: hex back to the same bytes, text, integers and REALs unchanged.
    """
    q = _quarantine()
    blobs = set(binary_columns(table))
    key = next(iter(table.primary_key.columns))
    rows = []
    for raw in session.scalars(
        select(q.c.row).where(q.c.run_id == run_id, q.c.table_name == table.name).order_by(q.c.id)
    ):
        row = json.loads(raw) if isinstance(raw, str) else dict(raw)
        for b in blobs:
            if row.get(b) is not None:
                row[b] = bytes.fromhex(row[b])
        rows.append(row)
    if not rows:
        return 0
    conn = session.connection()
    qn = _quote(session, table.name)
    if anonymised is not None:
        sets = ", ".join(f"{_quote(session, c)} = ?" for c in anonymised)
        res = conn.exec_driver_sql(
            f"UPDATE {qn} SET {sets} WHERE {_quote(session, key.name)} = ?",
            [(*(r.get(c) for c in anonymised), r[key.name]) for r in rows],
        )
        return len(rows) if res.rowcount < 0 else int(res.rowcount)
    cols = [c.name for c in table.columns]
    placeholders = ", ".join("?" for _ in cols)
    conn.exec_driver_sql(
        f"INSERT INTO {qn} ({', '.join(_quote(session, c) for c in cols)}) VALUES ({placeholders})",
        [tuple(r.get(c) for c in cols) for r in rows],
    )
    return len(rows)


def purge_quarantine(
    session: Session,
    *,
    actor: str,
    run_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> PurgeOut:
    """Delete quarantined rows whose restore window has passed (or one run's, explicitly)."""
    now = now or utcnow()
    q = _quarantine()
    if run_id is not None:
        run = get_run(session, run_id)
        if run.status in ("running", "failed"):
            raise UsageError(f"run {run_id} is unfinished; it cannot be purged yet")
        where: Any = q.c.run_id == run_id
    else:
        # A row's expiry is its run's restore_until (set at copy): find the runs, then their
        # rows through the (run_id, ...) index, rather than keep an index on expires_at
        # with one entry per quarantined row, all alike within a run.
        expired = select(Run.id).where(Run.restore_until.is_not(None), Run.restore_until < now)
        where = and_(q.c.run_id.in_(expired), q.c.expires_at.is_not(None), q.c.expires_at < now)
    runs = sorted(set(session.scalars(select(q.c.run_id).where(where).distinct()).all()))
    n = _rowcount(session.execute(delete(q).where(where)))
    for rid in runs if runs or run_id is None else [run_id]:
        done = session.get(Run, rid)
        if done is not None and done.status == "completed":
            done.status = "purged"
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="retention.purge_quarantine",
        target_type="retention_quarantine",
        details={"rows": n, "runs": [str(r) for r in runs]},
    )
    return PurgeOut(purged_rows=n, runs=runs)


# --------------------------------------------------------------------------- register, list


def policy_out(session: Session, policy: Policy) -> PolicyOut:
    appr = latest_approval(session, policy)
    last = session.scalars(
        select(Run.status)
        .where(Run.policy_name == policy.name)
        .order_by(Run.started_at.desc())
        .limit(1)
    ).first()
    return PolicyOut(
        name=policy.name,
        table=policy.table,
        action=policy.action,
        period=policy.period,
        grace=policy.grace,
        owner=policy.owner,
        purpose=policy.purpose,
        schedule=policy.schedule,
        content_hash=policy.content_hash,
        approved=appr is not None,
        approved_by=appr.approved_by if appr else None,
        approved_at=appr.approved_at if appr else None,
        last_run_status=last,
        body=policy.model_dump(mode="json"),
    )


def register_markdown(session: Session, policies: PolicySet) -> str:
    """The retention register for stakeholders: what, why, how long, owner, approval."""
    lines = [
        "# Retention register",
        "",
        f"Generated by `govern retention docs` from {policies.source}. A policy runs only",
        "when the exact version below (its content hash) has been signed off.",
        "",
        "| policy | table | after | action | owner | schedule (UTC) | approval |",
        "|---|---|---|---|---|---|---|",
    ]
    outs = [policy_out(session, p) for p in policies.policies]
    for o, p in zip(outs, policies.policies, strict=True):
        after = Duration.parse(p.period).describe()
        if p.grace != "P0D":
            after += f" + {Duration.parse(p.grace).describe()} grace"
        action = p.action + (f" ({', '.join(p.columns)})" if p.columns else "")
        appr = f"{o.approved_by}, {o.approved_at:%Y-%m-%d}" if o.approved and o.approved_at else "—"
        lines.append(
            f"| {p.name} | `{p.table}`.`{p.timestamp_column}` | {after} | {action} | "
            f"{p.owner} | `{p.schedule}` | {appr} |"
        )
    lines.append("")
    for o, p in zip(outs, policies.policies, strict=True):
        lines += [f"## {p.name}", "", p.purpose, ""]
        if p.filter:
            conds = "; ".join(
                f"`{c.column} {c.op}{'' if c.value is None else ' ' + json.dumps(c.value)}`"
                for c in p.filter
            )
            lines += [f"- only rows where: {conds}"]
        limits = []
        if p.max_rows_per_run:
            limits.append(f"at most {p.max_rows_per_run} rows per run")
        if p.max_share_of_table:
            limits.append(f"at most {p.max_share_of_table:.0%} of the table per run")
        if p.max_growth_factor:
            limits.append(f"at most {p.max_growth_factor:g}x the median of recent runs")
        lines += [
            f"- safety limits: {', '.join(limits) or 'none'}",
            f"- restore window: {Duration.parse(p.restore_window).describe()}"
            + (" (archived until purged)" if p.action == "archive_then_delete" else ""),
            f"- version: `{p.content_hash[:16]}`; "
            + (f"approved by {o.approved_by}" if o.approved else "**not approved**"),
            "- rows of subjects under a legal hold are never touched",
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"
