"""Claiming and running requests: resumable, step by step, safe with many workers.

These functions take an :class:`~sqlalchemy.engine.Engine`, not a Session, because a
request runs in transactions of its own: :func:`units` cuts its steps into them (a subject
with little data is one transaction; ``rows_per_transaction=0`` gives one per step with
work). A worker killed at any point loses at most the uncommitted transaction, and whoever
resumes (after the lease expires) starts at the first step whose checkpoint is not
``done``, so no step runs twice.

A ``manual`` step is not run: the worker that reaches it moves the request to
``awaiting_action`` and lets it go; an operator confirms the step
(:func:`~govern.dsr.service.confirm_manual_step`), which approves the request again, and the
next worker resumes at the step after it.

Claiming is one ``UPDATE ... WHERE id = (SELECT ...) RETURNING ...``. On PostgreSQL the
pick is ``FOR UPDATE SKIP LOCKED LIMIT 1``: workers skip each other's rows. On SQLite the
UPDATE takes the database write lock first, so claims are serialised, and the pick reads
the first request of each claimable state from the ``(state, due_at, id)`` index. The
worker holds the request as a :class:`~govern.dsr.service.RequestRow` and writes what each
transaction records about it from a :class:`~govern.dsr.service.RequestLog` just before
the commit.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import (
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate

if TYPE_CHECKING:
    from govern.events import HookRegistry

from govern.db import write_bind
from govern.dsr.engine import MANUAL, Plan, StepContext
from govern.dsr.models import DsrRequest, DsrStep
from govern.dsr.schemas import ProcessResult, WorkResult
from govern.dsr.service import (
    RequestLog,
    RequestRow,
    as_row,
    audit_request,
    check_deadlines,
    get_request,
    lifecycle_event,
    load_row,
    plan_for,
    request_columns,
    transition,
)
from govern.errors import IllegalTransitionError, ManualStepError
from govern.types.utc import utcnow

StepHook = Callable[[int, str], None]
"""Called with (step seq, phase): ``"executed"`` before the step commits, ``"committed"`` after."""

DEFAULT_LEASE = dt.timedelta(minutes=5)
_UNSET: Any = object()
DEFAULT_ROWS_PER_TRANSACTION = 1000
"""Consecutive steps share a transaction while their planned rows add up to at most this."""
DESTRUCTIVE = frozenset({"delete", "redact", "shred"})
HOLD_PLACED = "Art. 17(3)(e): subject placed under a legal hold"


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_REQUESTS = cast(Table, DsrRequest.__table__)
_STEPS = cast(Table, DsrStep.__table__)

_HOOKS: ContextVar[HookRegistry | None] = ContextVar("govern_dsr_hooks", default=None)


@contextmanager
def _using(hooks: HookRegistry | None) -> Iterator[None]:
    """Attach ``hooks`` to every session this call opens (each step's transaction)."""
    token = _HOOKS.set(hooks)
    try:
        yield
    finally:
        _HOOKS.reset(token)


def _session(engine: Engine | Connection) -> Session:
    # no autoflush: a request's changes go in one UPDATE when its transaction commits (steps
    # that need their ORM changes written before they read flush them themselves)
    session = Session(engine, expire_on_commit=False, autoflush=False)
    hooks = _HOOKS.get()
    if hooks is not None:
        hooks.attach(session)
    return session


def _abandoned(now: object) -> Any:
    """In progress, but its worker's lease ran out (or it has none)."""
    c = _REQUESTS.c
    return and_(
        c.state == "in_progress", or_(c.lease_expires_at.is_(None), c.lease_expires_at <= now)
    )


def _claimable(now: object) -> Any:
    return or_(_REQUESTS.c.state == "approved", _abandoned(now))


@functools.cache
def _claim_stmt(dialect: str) -> ReturningUpdate[Any]:
    """The claim, built once per dialect (bind parameters): one UPDATE of the most urgent
    claimable row, returning it (a :class:`~govern.dsr.service.RequestRow`).

    PostgreSQL picks with ``FOR UPDATE SKIP LOCKED``. SQLite has no row locks (the UPDATE
    takes the database write lock) and would sort every claimable row to find the first:
    it takes the first of each state from the ``(state, due_at, id)`` index instead, so a
    claim costs the same with ten requests queued or a million.
    """
    c = _REQUESTS.c
    if dialect == "sqlite":

        def first(where: Any) -> Any:
            return select(c.id, c.due_at).where(where).order_by(c.due_at, c.id).limit(1).subquery()

        approved = first(c.state == "approved")
        abandoned = first(_abandoned(bindparam("now")))
        both = union_all(
            select(approved.c.id, approved.c.due_at), select(abandoned.c.id, abandoned.c.due_at)
        ).subquery()
        pick = select(both.c.id).order_by(both.c.due_at, both.c.id).limit(1).scalar_subquery()
    else:
        pick = (
            select(c.id)
            .where(_claimable(bindparam("now")))
            .order_by(c.due_at, c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    return (
        update(_REQUESTS)
        .where(c.id == pick)
        .values(claimed_by=bindparam("worker"), lease_expires_at=bindparam("until"))
        .returning(*request_columns())
    )


def claim_next(
    engine: Engine, *, worker: str, lease: dt.timedelta = DEFAULT_LEASE
) -> uuid.UUID | None:
    """Claim the most urgent approved (or abandoned in-progress) request, or return None."""
    with _session(engine) as session, session.begin():
        log = RequestLog()
        job = _claim(session, worker, lease, log)
        log.write(session)
        return None if job is None else job.request_id


def _claim(session: Session, worker: str, lease: dt.timedelta, log: RequestLog) -> _Job | None:
    """In ``session``'s transaction: claim the most urgent request and start it."""
    now = utcnow()
    conn = session.connection()
    stmt = _claim_stmt(conn.dialect.name)
    row = conn.execute(stmt, {"now": now, "worker": worker, "until": now + lease}).first()
    return None if row is None else _start(session, as_row(row), worker, log)


class _Pending(NamedTuple):
    id: int
    seq: int
    table: str | None
    action: str
    planned_rows: int


class _Job(NamedTuple):
    """What running a claimed request needs, read in the claim's transaction."""

    request: RequestRow
    subject_ref: str | None
    pending: list[_Pending]
    staged: int = 0
    planned: bool = False
    """The plan was stored in this transaction: no step of it has run yet."""

    @property
    def request_id(self) -> uuid.UUID:
        return self.request.id

    @property
    def type(self) -> str:
        return self.request.type


def _load_job(
    session: Session,
    req: RequestRow,
    ref: Any = _UNSET,
    pending: list[_Pending] | None = None,
) -> _Job:
    """What running ``req`` needs; ``ref`` and ``pending`` when the caller has them (a plan
    just stored)."""
    from govern.dsr.engine import subject_ref

    rid = req.id
    planned = pending is not None
    if pending is None:
        pending = [_Pending(*r) for r in session.connection().execute(_PENDING, {"rid": rid})]
    if ref is _UNSET:
        ref = subject_ref(session, req.subject_id) if req.subject_id is not None else None
    return _Job(req, ref, pending, planned=planned)


def _staged(session: Session, job: _Job, export_dir: Path, worker: str, log: RequestLog) -> _Job:
    """An access or portability job with where its committed reads end in the staging
    file; reads whose rows are gone from it are set back to pending (audited)."""
    from govern.dsr.engine import staged_offset

    if job.type not in ("access", "portability") or job.planned:
        return job
    rid = job.request_id
    staged = staged_offset(session, export_dir, rid)
    if staged is not None:
        return job._replace(staged=staged)
    audit_request(
        session,
        rid,
        actor=worker,
        action="dsr.restage",
        details=[{"reason": "staged rows missing from the export folder; reading again"}],
        log=log,
    )
    pending = [_Pending(*r) for r in session.connection().execute(_PENDING, {"rid": rid})]
    return job._replace(pending=pending, staged=0)


def _start(session: Session, req: RequestRow, worker: str, log: RequestLog) -> _Job:
    """Move a freshly claimed request to in_progress and store its plan (once); the
    request's changes go to ``log``."""
    rid = req.id
    plan = None
    # a request never started has no plan yet (it is stored when the request first starts)
    never_started = req.state == "approved" and req.started_at is None
    if never_started or session.connection().execute(_HAS_PLAN, {"rid": rid}).first() is None:
        plan = plan_for(session, req)
        log.update(req, outcome={"exceptions": plan.exceptions} if plan.exceptions else {})
    if req.state == "approved":
        # resumed after a manual step's confirmation (or a retry): the first start stays
        if req.started_at is None:
            log.update(req, started_at=utcnow())
        transition(session, req, "in_progress", actor=worker, reason="claimed by a worker", log=log)
    else:
        audit_request(session, rid, actor=worker, action="dsr.resume", details=[{}], log=log)
    if plan is None:
        return _load_job(session, req)
    pending = _store_plan(session, rid, plan)
    return _load_job(session, req, plan.subject_ref, pending)


def _store_plan(session: Session, rid: uuid.UUID, plan: Plan) -> list[_Pending]:
    """Store the plan's steps (one Core INSERT) and return the pending ones; a keep step
    changes nothing, so it is shown in the plan and checkpointed at once (``kept``)."""
    rows = [
        {
            "request_id": rid,
            "seq": i,
            "table_name": s.table,
            "action": s.action,
            "columns": s.columns,
            "planned_rows": s.rows,
            "exception": s.exception,
            "status": "kept" if s.action == "keep" else "pending",
            "rows_affected": 0 if s.action == "keep" else None,
        }
        for i, s in enumerate(plan.steps, 1)
    ]
    if not rows:
        return []
    ids = {seq: step_id for step_id, seq in session.connection().execute(_STORE, rows)}
    return [
        _Pending(ids[seq], seq, s.table, s.action, s.rows)
        for seq, s in enumerate(plan.steps, 1)
        if s.action != "keep"
    ]


# one multi-row INSERT; rows come back in any order, matched by their seq
_STORE = insert(_STEPS).returning(_STEPS.c.id, _STEPS.c.seq)


# Built once (Core, bind parameters): reused statement objects skip cache-key generation.
_FENCE = (
    update(_REQUESTS)
    .where(
        _REQUESTS.c.id == bindparam("rid"),
        _REQUESTS.c.claimed_by == bindparam("worker"),
        _REQUESTS.c.state == "in_progress",
    )
    .values(lease_expires_at=bindparam("until"))
)
_CHECKPOINT = (
    update(_STEPS)
    .where(_STEPS.c.id == bindparam("step_id"), _STEPS.c.status == "pending")
    .values(
        status=bindparam("new_status"),
        rows_affected=bindparam("rows"),
        done_at=bindparam("at"),
        done_by=bindparam("by"),
        staged_to=bindparam("staged_to"),
        exception=func.coalesce(bindparam("why", type_=String()), _STEPS.c.exception),
    )
)


_HAS_PLAN = select(_STEPS.c.id).where(_STEPS.c.request_id == bindparam("rid")).limit(1)
_PENDING = (
    select(_STEPS.c.id, _STEPS.c.seq, _STEPS.c.table_name, _STEPS.c.action, _STEPS.c.planned_rows)
    .where(_STEPS.c.request_id == bindparam("rid"), _STEPS.c.status == "pending")
    .order_by(_STEPS.c.seq)
)
_TALLY = select(
    func.count(),
    func.coalesce(func.sum(case((_STEPS.c.status == "skipped", 1), else_=0)), 0),
).where(_STEPS.c.request_id == bindparam("rid"))


def _held(session: Session, subject_id: uuid.UUID) -> bool:
    """Whether the subject is under a legal hold (checked before destructive steps)."""
    from govern.holds import is_held

    # no autoflush: the request's changes go in one UPDATE when the transaction commits
    return is_held(session, subject_id, autoflush=False)


def _fence(session: Session, rid: uuid.UUID, worker: str, lease: dt.timedelta) -> bool:
    """Renew our lease as the transaction's first write; False when another worker took over."""
    conn = session.connection()
    res = conn.execute(_FENCE, {"rid": rid, "worker": worker, "until": utcnow() + lease})
    return int(res.rowcount) == 1


def take(
    engine: Engine, rid: uuid.UUID, *, worker: str, lease: dt.timedelta = DEFAULT_LEASE
) -> None:
    """Claim one named request (``govern dsr process ID``): approved, or abandoned in progress."""
    with _session(engine) as session, session.begin():
        log = RequestLog()
        _take(session, rid, worker, lease, log)
        log.write(session)


def _take(
    session: Session, rid: uuid.UUID, worker: str, lease: dt.timedelta, log: RequestLog
) -> _Job:
    """In ``session``'s transaction: claim the named request and start it, or raise."""
    row = _grab(session, rid, worker, lease)
    if row is None:
        req = get_request(session, rid)
        if req.state == "in_progress":
            raise IllegalTransitionError(
                f"request {rid} is being processed by another worker (lease until"
                f" {req.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
        if req.state == "awaiting_action":
            raise ManualStepError(
                f"request {rid} awaits a manual step: confirm it (govern dsr confirm) first"
            )
        raise IllegalTransitionError(f"request {rid} is {req.state}: approve it first")
    return _start(session, row, worker, log)


def _grab(session: Session, rid: uuid.UUID, worker: str, lease: dt.timedelta) -> RequestRow | None:
    """Claim the named request if it is claimable (approved, or its lease expired)."""
    now = utcnow()
    params = {"rid": rid, "now": now, "worker": worker, "until": now + lease}
    row = session.connection().execute(_grab_stmt(), params).first()
    return None if row is None else as_row(row)


@functools.cache
def _grab_stmt() -> ReturningUpdate[Any]:
    return (
        update(_REQUESTS)
        .where(_REQUESTS.c.id == bindparam("rid"), _claimable(bindparam("now")))
        .values(claimed_by=bindparam("worker"), lease_expires_at=bindparam("until"))
        .returning(*request_columns())
    )


class _LostLease(Exception):
    """Another worker took the request over (our lease expired)."""


class _StepFailed(Exception):
    """Carries a failing step out of its (rolled back) transaction."""

    def __init__(self, seq: int, cause: Exception) -> None:
        super().__init__(seq)
        self.seq, self.cause = seq, cause


def _check_budget(rows_per_transaction: int) -> None:
    if rows_per_transaction < 0:
        raise ValueError("rows_per_transaction must be 0 or more")


def units(
    pending: Sequence[_Pending], rows_per_transaction: int = DEFAULT_ROWS_PER_TRANSACTION
) -> list[list[_Pending]]:
    """Pending steps, in plan order, cut into the transactions that run them.

    With ``rows_per_transaction`` N > 0 (the default, 1,000), consecutive steps share one
    transaction while the rows the plan counted for them add up to at most N: a subject with
    little data commits once, a step with more than N rows is a transaction of its own. With
    0, every step is its own transaction, except consecutive steps the plan proved empty
    (:func:`~govern.dsr.engine.empty_when_planned`), which share one. Either way steps run in
    plan order, each flips its own checkpoint, and a ``manual`` step is always on its own
    (see docs/dsr.md, "Execution").
    """
    from govern.dsr.engine import empty_when_planned

    _check_budget(rows_per_transaction)
    out: list[list[_Pending]] = []
    joinable = False  # whether the next step may join out[-1]
    rows = 0
    for step in pending:
        if step.action == MANUAL:
            out.append([step])
            joinable = False
            continue
        if rows_per_transaction == 0:
            empty = empty_when_planned(step.action, step.planned_rows)
            if empty and joinable:
                out[-1].append(step)
            else:
                out.append([step])
            joinable = empty
            continue
        if joinable and rows + step.planned_rows <= rows_per_transaction:
            out[-1].append(step)
            rows += step.planned_rows
        else:
            out.append([step])
            rows = step.planned_rows
            joinable = rows <= rows_per_transaction
    return out


class _Done(NamedTuple):
    step: _Pending
    status: str
    rows: int
    why: str | None = None
    staged_to: int | None = None


def _checkpoint(conn: Connection, done: Sequence[_Done], worker: str) -> list[dict[str, Any]]:
    """Flip steps' checkpoints from ``pending`` (one statement; fenced: our claim only);
    returns their audit details."""
    at = utcnow()
    params = [
        {
            "step_id": d.step.id,
            "new_status": d.status,
            "rows": d.rows,
            "at": at,
            "by": worker,
            "why": d.why,
            "staged_to": d.staged_to,
        }
        for d in done
    ]
    res = conn.execute(_CHECKPOINT, params if len(params) > 1 else params[0])
    if int(res.rowcount) != len(params):
        raise _LostLease
    return [
        {
            "seq": d.step.seq,
            "table": d.step.table,
            "action": d.step.action,
            "status": d.status,
            "rows": d.rows,
        }
        for d in done
    ]


def _run_unit(
    session: Session,
    ctx: StepContext,
    unit: Sequence[_Pending],
    worker: str,
    lease: dt.timedelta,
    on_step: StepHook | None,
    log: RequestLog,
    *,
    fence: bool = True,
    last: bool = False,
) -> None:
    """Run a unit's steps and checkpoint them in ``session``'s one transaction; their audit
    rows and events go to ``log``, which the caller writes before the commit.

    ``last``: the transaction also completes the request, so rows staged by its reads are
    not needed after it (they stay in memory when small); otherwise they go to the staging
    file before the checkpoints, for the ``package`` step of a later transaction.

    Legal holds are checked before each destructive step; on SQLite once, before the first:
    the transaction holds the database's write lock, so no hold can be placed meanwhile.
    The redaction, rectification and restriction events are written together after the last
    step, in step order (a delete's tombstones go with its delete).
    """
    from govern.dsr.engine import restrict_tables, run_step

    if fence and not _fence(session, ctx.request_id, worker, lease):
        raise _LostLease
    done: list[_Done] = []
    details: list[dict[str, Any]] = []
    held: bool | None = None
    sqlite = session.get_bind().dialect.name == "sqlite"
    ctx.notices = log.events
    try:
        i = 0
        while i < len(unit):
            step = unit[i]
            i += 1
            if step.action == "package" and done:
                # the package reads the read steps' checkpoints (counts, staging offsets)
                details += _checkpoint(session.connection(), done, worker)
                done = []
            if step.action == "restrict":
                # consecutive restrict steps write their rows together
                group = [step]
                while i < len(unit) and unit[i].action == "restrict":
                    group.append(unit[i])
                    i += 1
                try:
                    counts = restrict_tables(session, ctx, [str(g.table) for g in group])
                except Exception as exc:
                    raise _StepFailed(step.seq, exc) from exc
                done += [_Done(g, "done", n) for g, n in zip(group, counts, strict=True)]
                continue
            if step.action in DESTRUCTIVE:
                if held is None or not sqlite:
                    held = _held(session, ctx.subject_id)
                if held:
                    done.append(_Done(step, "skipped", 0, HOLD_PLACED))
                    continue
            if step.action == "shred":
                # keys.shred_subject writes its own audit row (crypto.shred): what this
                # transaction recorded before it (the claim's transition) goes first
                log.write_records(session)
            try:
                rows = run_step(session, ctx, step.table, step.action)
            except Exception as exc:
                raise _StepFailed(step.seq, exc) from exc
            staged = ctx.staged if step.action == "read" else None
            done.append(_Done(step, "done", rows, None, staged))
        if not last:
            ctx.persist_stage()
    finally:
        ctx.notices = None
    if done:
        details += _checkpoint(session.connection(), done, worker)
    audit_request(
        session, ctx.request_id, actor=worker, action="dsr.step", details=details, log=log
    )
    if on_step is not None:
        for step in unit:
            on_step(step.seq, "executed")


def run_claimed(
    engine: Engine,
    rid: uuid.UUID,
    *,
    worker: str,
    export_dir: Path,
    lease: dt.timedelta = DEFAULT_LEASE,
    on_step: StepHook | None = None,
    rows_per_transaction: int = DEFAULT_ROWS_PER_TRANSACTION,
) -> ProcessResult:
    """Run the pending steps of a request this worker holds (its claim committed), in the
    transactions :func:`units` cuts them into; the last one also completes the request.

    Each transaction first renews the lease (fencing out a worker whose lease expired) and
    then flips the checkpoints of its steps from ``pending`` to ``done`` together with their
    changes.
    """
    _check_budget(rows_per_transaction)

    def resume(session: Session, log: RequestLog) -> _Job:
        if not _fence(session, rid, worker, lease):
            raise _LostLease
        return _load_job(session, load_row(session, rid))

    run = _Run(worker, export_dir, lease, on_step, rows_per_transaction)
    out = _process(engine, run, resume, fresh=False, rid=rid)
    assert out is not None
    return out


class _Run(NamedTuple):
    """How a worker runs requests."""

    worker: str
    export_dir: Path
    lease: dt.timedelta
    on_step: StepHook | None
    rows_per_transaction: int


def _context(job: _Job, export_dir: Path) -> StepContext | None:
    from govern.db import load_models

    req = job.request
    if req.subject_id is None:
        return None
    return StepContext(
        request_id=req.id,
        type=req.type,
        subject_id=req.subject_id,
        corrections=dict(req.corrections),
        export_dir=export_dir,
        metadata=load_models(),
        subject_ref=job.subject_ref,
        staged=job.staged,
    )


def _committed(on_step: StepHook | None, unit: Sequence[_Pending]) -> None:
    if on_step is not None:
        for step in unit:
            on_step(step.seq, "committed")


def _process(
    engine: Engine,
    run: _Run,
    begin: Callable[[Session, RequestLog], _Job | None],
    *,
    fresh: bool,
    rid: uuid.UUID | None = None,
) -> ProcessResult | None:
    """Start a request with ``begin`` (a claim, or a resume; None: nothing to claim) and
    run it to the end in one Session.

    ``begin``, the stored plan and the first transaction's steps commit together: a worker
    that dies in them leaves a ``fresh`` claim undone (the request is claimable at once).
    Every later transaction renews the lease first; the last one also completes the request.
    """
    from govern.dsr.engine import clear_staging

    worker, export_dir, lease, on_step, budget = run
    export_dir.mkdir(parents=True, exist_ok=True)
    ctx: StepContext | None = None
    with _session(engine) as session:
        try:
            try:
                with session.begin():
                    log = RequestLog()
                    job = begin(session, log)
                    if job is None:
                        return None
                    job = _staged(session, job, export_dir, worker, log)
                    rid = job.request_id
                    ctx = _context(job, export_dir)
                    cut = units(job.pending, budget)
                    first = cut.pop(0) if cut and cut[0][0].action != MANUAL else []
                    if first:
                        assert ctx is not None
                        _run_unit(
                            session,
                            ctx,
                            first,
                            worker,
                            lease,
                            on_step,
                            log,
                            fence=False,
                            last=not cut,
                        )
                    package = ctx.package if ctx is not None else None
                    done = (
                        None
                        if cut
                        else _finish(session, job.request, worker, len(first), log, package)
                    )
                    log.write(session)
            except _StepFailed as failed:
                assert rid is not None
                return _fail(engine, rid, run, failed, reclaim=fresh)
            except _LostLease:
                assert rid is not None
                return _lost(engine, rid, 0)
            ran = len(first)
            _committed(on_step, first)
            if done is not None:
                return _done(ctx, export_dir, done, clear_staging)
            for i, unit in enumerate(cut):
                assert ctx is not None
                try:
                    if unit[0].action == MANUAL:
                        waiting = _reach_manual(engine, ctx, unit[0], worker, lease)
                        if waiting is not None:
                            return waiting.model_copy(update={"steps_run": ran})
                        ran += 1  # skipped under a legal hold placed since planning
                        continue
                    last = i == len(cut) - 1
                    with session.begin():
                        log = RequestLog()
                        _run_unit(session, ctx, unit, worker, lease, on_step, log, last=last)
                        if last:
                            # the last step's changes and the completion commit together
                            done = _finish(
                                session, job.request, worker, ran + len(unit), log, ctx.package
                            )
                        log.write(session)
                except _StepFailed as failed:
                    return _fail(engine, rid, run, failed)
                except _LostLease:
                    return _lost(engine, rid, ran)
                ran += len(unit)
                _committed(on_step, unit)
                if done is not None:
                    return _done(ctx, export_dir, done, clear_staging)
            # the last step was a manual one, skipped under a legal hold
            return _complete(engine, rid, worker, export_dir, ran, lease, clear_staging)
        finally:
            if ctx is not None:
                ctx.close_stage()


def _done(
    ctx: StepContext | None,
    export_dir: Path,
    result: ProcessResult,
    clear_staging: Callable[[Path, uuid.UUID], None],
) -> ProcessResult:
    if ctx is not None:
        ctx.close_stage()
        if ctx.type in ("access", "portability"):  # the only ones that stage rows
            clear_staging(export_dir, result.request_id)
    return result


def _lost(engine: Engine, rid: uuid.UUID, ran: int) -> ProcessResult:
    """Another worker took the request over: report its state, change nothing."""
    with _session(engine) as other:
        state = get_request(other, rid).state
    return ProcessResult(request_id=rid, state=state, steps_run=ran, steps_total=0)


def _reach_manual(
    engine: Engine, ctx: StepContext, step: _Pending, worker: str, lease: dt.timedelta
) -> ProcessResult | None:
    """Stop at a manual step: in one transaction the request goes to ``awaiting_action``,
    the claim is released and ``govern.dsr.awaiting_action`` is emitted for the hooks.

    An erasure whose subject was put under a legal hold since planning skips the step
    instead (like a destructive one) and returns None: the worker goes on.
    """
    rid = ctx.request_id
    with _session(engine) as session, session.begin():
        if not _fence(session, rid, worker, lease):
            raise _LostLease
        if ctx.type == "erasure" and _held(session, ctx.subject_id):
            (detail,) = _checkpoint(
                session.connection(), [_Done(step, "skipped", 0, HOLD_PLACED)], worker
            )
            audit_request(session, rid, actor=worker, action="dsr.step", details=[detail])
            return None
        req = get_request(session, rid)
        total = session.connection().execute(_TALLY, {"rid": rid}).one()[0]
        transition(
            session,
            req,
            "awaiting_action",
            actor=worker,
            reason=f"manual step {step.seq} ({step.table}) awaits an operator's confirmation",
        )
        lifecycle_event(session, req, "awaiting_action", step=step.seq, location=step.table)
        req.claimed_by, req.lease_expires_at = None, None
        return ProcessResult(
            request_id=rid,
            state=req.state,
            steps_run=0,
            steps_total=int(total),
            awaiting_step=step.seq,
            awaiting_location=step.table,
        )


def _complete(
    engine: Engine,
    rid: uuid.UUID,
    worker: str,
    export_dir: Path,
    ran: int,
    lease: dt.timedelta,
    clear_staging: Callable[[Path, uuid.UUID], None],
) -> ProcessResult:
    """Complete a request with no step left to run (in a transaction of its own)."""
    with _session(engine) as session, session.begin():
        if not _fence(session, rid, worker, lease):
            req = get_request(session, rid)
            return ProcessResult(request_id=rid, state=req.state, steps_run=ran, steps_total=0)
        log = RequestLog()
        result = _finish(session, load_row(session, rid), worker, ran, log)
        log.write(session)
    clear_staging(export_dir, rid)
    return result


def _finish(
    session: Session,
    req: RequestRow,
    worker: str,
    ran: int,
    log: RequestLog,
    package: tuple[str, str, int] | None = None,
) -> ProcessResult:
    """Move the request (fenced: ours, in progress) to completed with its outcome.

    ``package``: path, SHA-256 and rows of the package this worker wrote (else the stored
    one is read).
    """
    from govern.dsr.models import DsrExport

    # fenced: no other worker changes the request while we hold it, so ``req`` (read when
    # this worker claimed it) is current for every column written below
    rid = req.id
    total, skipped = session.connection().execute(_TALLY, {"rid": rid}).one()
    if package is None and req.type in ("access", "portability"):
        export = session.scalars(
            select(DsrExport).where(DsrExport.request_id == rid).order_by(DsrExport.id.desc())
        ).first()
        if export is not None:
            package = (export.path, export.sha256, export.rows)
    outcome = dict(req.outcome)
    if skipped:
        outcome["exceptions"] = [*outcome.get("exceptions", []), HOLD_PLACED]
    if req.subject_id is None:
        outcome["no_data_held"] = True
    if package is not None:
        outcome["package"] = {"sha256": package[1], "rows": package[2]}
    log.update(req, outcome=outcome, completed_at=utcnow(), claimed_by=None, lease_expires_at=None)
    if req.type == "rectification":
        # the corrected values now live in the tables; keep only which columns changed
        log.update(req, corrections=dict.fromkeys(req.corrections, "(applied)"))
    reason = "no data held about this person" if req.subject_id is None else "all steps done"
    transition(session, req, "completed", actor=worker, reason=reason, log=log)
    exceptions = len(outcome.get("exceptions", []))
    lifecycle_event(session, req, "completed", log=log, exceptions=exceptions)
    return ProcessResult(
        request_id=rid,
        state=req.state,
        steps_run=ran,
        steps_total=int(total),
        export_path=package[0] if package is not None else None,
        exceptions=list(outcome.get("exceptions", [])),
    )


def _fail(
    engine: Engine, rid: uuid.UUID, run: _Run, failed: _StepFailed, *, reclaim: bool = False
) -> ProcessResult:
    """Record a failed step (by error class only: messages may quote data) and stop.

    ``reclaim``: the claim rolled back with the failed step (they shared a transaction), so
    it is taken again first; when another worker took the request in between, nothing is
    recorded here.
    """
    from govern.dsr.engine import clear_staging

    worker, seq, name = run.worker, failed.seq, type(failed.cause).__name__
    with _session(engine) as session, session.begin():
        log = RequestLog()
        if reclaim:
            row = _grab(session, rid, worker, run.lease)
            if row is None:
                return _lost(engine, rid, 0)
            req = _start(session, row, worker, log).request
        elif not _fence(session, rid, worker, run.lease):
            # our lease ran out while the step ran and another worker took the request
            return _lost(engine, rid, 0)
        else:
            req = load_row(session, rid)
        outcome = {**req.outcome, "error": f"step {seq}: {name}"}
        log.update(req, outcome=outcome, claimed_by=None, lease_expires_at=None)
        reason = f"step {seq} failed: {name}"
        transition(session, req, "failed", actor=worker, reason=reason, log=log)
        log.write(session)
        result = ProcessResult(request_id=rid, state=req.state, steps_run=0, steps_total=0)
    # staged rows are personal data: a retry (failed -> approved) reads them again
    clear_staging(run.export_dir, rid)
    return result


def process_request(
    engine: Engine,
    rid: uuid.UUID,
    *,
    export_dir: Path,
    worker: str | None = None,
    lease: dt.timedelta = DEFAULT_LEASE,
    on_step: StepHook | None = None,
    hooks: HookRegistry | None = None,
    rows_per_transaction: int = DEFAULT_ROWS_PER_TRANSACTION,
) -> ProcessResult:
    """Process one approved request now (or resume an abandoned one) to the end.

    ``hooks`` run after each commit for the events it emitted (completed, Art. 19 ...).
    """
    _check_budget(rows_per_transaction)
    worker = worker or default_worker_id()
    run = _Run(worker, export_dir, lease, on_step, rows_per_transaction)
    with _using(hooks):
        out = _process(
            engine,
            run,
            lambda session, log: _take(session, rid, worker, lease, log),
            fresh=True,
            rid=rid,
        )
        assert out is not None
        return out


def work(
    engine: Engine,
    *,
    export_dir: Path,
    worker: str | None = None,
    once: bool = False,
    poll: float = 2.0,
    max_requests: int | None = None,
    lease: dt.timedelta = DEFAULT_LEASE,
    on_step: StepHook | None = None,
    hooks: HookRegistry | None = None,
    due_soon: dt.timedelta = dt.timedelta(days=7),
    rows_per_transaction: int = DEFAULT_ROWS_PER_TRANSACTION,
) -> WorkResult:
    """Claim and process requests until the queue is empty (``once``) or forever.

    Each pass over an empty queue also sends the due-soon and overdue notices.
    """
    _check_budget(rows_per_transaction)
    worker = worker or default_worker_id()
    run = _Run(worker, export_dir, lease, on_step, rows_per_transaction)

    def claim(session: Session, log: RequestLog) -> _Job | None:
        return _claim(session, run.worker, lease, log)

    done: list[ProcessResult] = []
    with _using(hooks):
        _sweep(engine, due_soon)
        while max_requests is None or len(done) < max_requests:
            result = _process(engine, run, claim, fresh=True)
            if result is None:
                if once:
                    break
                time.sleep(poll)
                _sweep(engine, due_soon)
                continue
            done.append(result)
    return WorkResult(worker=worker, processed=done)


def _sweep(engine: Engine, due_soon: dt.timedelta) -> None:
    # It reads the open requests, then marks them notified: on SQLite it takes the write lock
    # first, or another worker's commit in between would fail it ("database is locked").
    with write_bind(engine) as conn, _session(conn) as session, session.begin():
        check_deadlines(session, due_soon=due_soon)
