"""Intake, verification, decisions, deadlines and reports. Functions take a Session, never commit.

Every state change goes through :func:`transition`, which refuses what the state machine
does not allow and writes both a ``dsr_transitions`` row and an audit row.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
import statistics
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import SecretStr
from sqlalchemy import (
    ColumnElement,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from govern.dsr.engine import Plan

from govern import audit
from govern.domains.core import Subject
from govern.dsr import deadlines
from govern.dsr.deadlines import WorkCalendar
from govern.dsr.models import DsrIdentifier, DsrRequest, DsrStep, DsrTransition, Restriction
from govern.dsr.schemas import (
    OPEN_STATES,
    REQUEST_TYPES,
    TRANSITIONS,
    DsrMap,
    ExportOut,
    ManualOut,
    MapEntry,
    PlanOut,
    RegisterEntry,
    Report,
    RequestDetail,
    RequestOut,
    StepOut,
    SubmitResult,
    TransitionOut,
)
from govern.errors import (
    DeadlineError,
    IllegalTransitionError,
    ManualStepError,
    UnknownRequestError,
    UsageError,
    VerificationError,
)
from govern.types.utc import utcnow

IDENTIFIER_KINDS: tuple[str, ...] = ("subject_id", "email", "external_ref")
CODE_TTL = dt.timedelta(hours=24)
MAX_ATTEMPTS = 5


def _hash_code(request_id: uuid.UUID, code: str) -> str:
    return hmac.new(request_id.bytes, code.encode(), hashlib.sha256).hexdigest()


@dataclass
class RequestRow:
    """A request's columns as the worker reads and writes them: no ORM object (loading one
    and flushing its changes cost a worker more than the Core statements it replaces).
    Changes go through :meth:`RequestLog.update`."""

    id: uuid.UUID
    type: str
    state: str
    jurisdiction: str
    due_at: dt.datetime
    subject_id: uuid.UUID | None
    corrections: dict[str, Any]
    outcome: dict[str, Any]
    started_at: dt.datetime | None


_ROW_COLUMNS = tuple(RequestRow.__dataclass_fields__)


def request_columns() -> list[Any]:
    """The ``dsr_requests`` columns of a :class:`RequestRow`, in its field order."""
    table = cast(Table, DsrRequest.__table__)
    return [table.c[name] for name in _ROW_COLUMNS]


def load_row(session: Session, request_id: uuid.UUID) -> RequestRow:
    """The request as a :class:`RequestRow` (one Core SELECT), or UnknownRequestError."""
    row = session.connection().execute(_row_select(), {"rid": request_id}).first()
    if row is None:
        raise UnknownRequestError(f"unknown request {request_id}")
    return as_row(row)


def as_row(row: Any) -> RequestRow:
    """A :class:`RequestRow` from a result row of :func:`request_columns`."""
    values = dict(zip(_ROW_COLUMNS, row, strict=True))
    values["corrections"] = dict(values["corrections"] or {})
    values["outcome"] = dict(values["outcome"] or {})
    return RequestRow(**values)


@functools.cache
def _row_select() -> Select[Any]:
    table = cast(Table, DsrRequest.__table__)
    return select(*request_columns()).where(table.c.id == bindparam("rid"))


@dataclass
class RequestLog:
    """What a transaction records about a request, gathered and written together just
    before it commits: the request's changed columns (one UPDATE), its transitions (one
    INSERT), its audit rows (one INSERT) and its events (one
    :func:`govern.events.emit_many`), each in the order added.

    The worker's hot path: a request processed in one transaction changes its row twice and
    records two transitions, three audit rows and an event or more; written one by one they
    were a third of its statements. Functions that take ``log=`` add to it instead of
    writing.
    """

    transitions: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    request_id: uuid.UUID | None = None
    changes: dict[str, Any] = field(default_factory=dict)

    def update(self, req: RequestRow, **values: Any) -> None:
        """Change columns of ``req`` (the object now, the row when the log is written)."""
        if self.request_id not in (None, req.id):
            raise UsageError("a RequestLog records the changes of one request")
        self.request_id = req.id
        for name, value in values.items():
            if name in _ROW_COLUMNS:
                setattr(req, name, value)
        self.changes.update(values)

    def write(self, session: Session) -> None:
        """Write what was gathered, in the caller's transaction, and start empty again."""
        if self.changes:
            names = tuple(sorted(self.changes))
            params = {"rid": self.request_id, **self.changes}
            session.connection().execute(_update_stmt(names), params)
            self.changes = {}
        self.write_records(session)

    def write_records(self, session: Session) -> None:
        """Write the transitions, audit rows and events gathered so far; the request's
        changes wait for :meth:`write`. Called before a step that writes an audit row of its
        own (a shred's ``crypto.shred``), so that the trail keeps the order things happened
        in."""
        from govern import events

        conn = session.connection()
        if self.transitions:
            conn.execute(_INSERT_TRANSITION, self.transitions)
        audit.record_rows(session, self.audits)
        if self.events:
            events.emit_many(session, self.events)
        # emptied in place: a step context may hold the events list (StepContext.notices)
        self.transitions.clear()
        self.audits.clear()
        self.events.clear()


@functools.lru_cache(maxsize=32)
def _update_stmt(names: tuple[str, ...]) -> Any:
    table = cast(Table, DsrRequest.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("rid"))
        .values({n: bindparam(n, type_=table.c[n].type) for n in names})
    )


def lifecycle_event(
    session: Session,
    req: DsrRequest | RequestRow,
    what: str,
    *,
    log: RequestLog | None = None,
    **data: Any,
) -> None:
    """Emit ``govern.dsr.<what>`` (ids, type, dates; never identifiers) for hooks and sinks."""
    from govern import events

    event: dict[str, Any] = {
        "type": f"govern.dsr.{what}",
        "aggregate_type": "dsr",
        "aggregate_id": req.id,
        "data": {
            "request_id": str(req.id),
            "type": req.type,
            "state": req.state,
            "jurisdiction": req.jurisdiction,
            "due_at": req.due_at.isoformat(),
            "subject_id": str(req.subject_id) if req.subject_id else None,
            **data,
        },
    }
    if log is not None:
        log.events.append(event)
    else:
        events.emit(session, **event)


def to_out(req: DsrRequest, now: dt.datetime | None = None) -> RequestOut:
    now = now or utcnow()
    return RequestOut(
        id=req.id,
        type=req.type,
        state=req.state,
        jurisdiction=req.jurisdiction,
        channel=req.channel,
        subject_found=req.subject_id is not None,
        received_at=req.received_at,
        due_at=req.due_at,
        extended=req.extended_at is not None,
        assigned_to=req.assigned_to,
        decision_reason=req.decision_reason,
        identifier_kinds=sorted({i.kind for i in req.identifiers}),
        completed_at=req.completed_at,
        outcome=dict(req.outcome or {}),
        overdue=req.state in OPEN_STATES and now >= req.due_at,
    )


def get_request(session: Session, request_id: uuid.UUID, *, lock: bool = False) -> DsrRequest:
    stmt = select(DsrRequest).where(DsrRequest.id == request_id)
    if lock:
        stmt = stmt.with_for_update()
    req = session.scalars(stmt).first()
    if req is None:
        raise UnknownRequestError(f"unknown request {request_id}")
    return req


def audit_request(
    session: Session,
    request_id: uuid.UUID,
    *,
    actor: str,
    action: str,
    details: Sequence[Mapping[str, Any]],
    log: RequestLog | None = None,
) -> None:
    """Audit rows about one request, one per item of ``details`` (one Core INSERT, or
    added to ``log``)."""
    if log is None:
        audit.record_many(
            session,
            actor=actor,
            action=action,
            target_type="dsr_request",
            target_id=str(request_id),
            details=details,
        )
        return
    log.audits += audit.rows(
        actor=actor,
        action=action,
        target_type="dsr_request",
        target_id=str(request_id),
        details=details,
    )


def transition(
    session: Session,
    req: DsrRequest | RequestRow,
    to: str,
    *,
    actor: str,
    reason: str | None = None,
    log: RequestLog | None = None,
) -> None:
    """Move ``req`` to state ``to`` or raise :class:`IllegalTransitionError`; audited.

    With ``log`` (and a :class:`RequestRow`) the new state, the transition and the audit
    row are added to the log, which the caller writes before the commit.
    """
    if to not in TRANSITIONS.get(req.state, frozenset()):
        raise IllegalTransitionError(f"request {req.id} cannot go from {req.state} to {to}")
    if (log is not None) != isinstance(req, RequestRow):
        # a RequestRow is written by its log; an ORM request by the session
        raise UsageError("transition() changes a RequestRow with log=..., a DsrRequest without")
    if isinstance(req, DsrRequest) and req in session.new:
        session.flush()  # the Core INSERT below refers to the request's row
    # Core INSERTs (statement built once): transitions are on every request's hot path
    row = {
        "request_id": req.id,
        "from_state": req.state,
        "to_state": to,
        "actor": actor,
        "reason": reason,
        "occurred_at": utcnow(),
    }
    if log is not None:
        log.transitions.append(row)
    else:
        session.connection().execute(_INSERT_TRANSITION, row)
    audit_request(
        session,
        req.id,
        actor=actor,
        action="dsr.transition",
        details=[{"from": req.state, "to": to, "reason": reason, "type": req.type}],
        log=log,
    )
    if isinstance(req, RequestRow):
        assert log is not None
        log.update(req, state=to)
        return
    req.state = to
    session.flush()


_INSERT_TRANSITION = insert(cast(Table, DsrTransition.__table__))


def resolve_subject(session: Session, identifiers: Mapping[str, str]) -> uuid.UUID | None:
    """The subject the identifiers point to, or None when govern holds nothing about them.

    All given identifiers must agree; identifiers naming two people resolve to none.
    """
    found: set[uuid.UUID] = set()
    for kind, value in identifiers.items():
        if kind == "subject_id":
            try:
                sid = uuid.UUID(value)
            except ValueError:
                raise UsageError("identifier subject_id must be a UUID") from None
            hit = session.scalar(select(Subject.id).where(Subject.id == sid))
        elif kind in ("email", "external_ref"):
            # encrypted columns: found through their blind-index twins, exact after decryption
            from govern.keys import lookup

            attr = Subject.email if kind == "email" else Subject.external_ref
            rows = lookup(session, attr, value)
            if len(rows) > 1:
                return None  # an identifier shared by several people identifies nobody
            hit = rows[0].id if rows else None
        else:
            continue
        if hit is None:
            return None
        found.add(hit)
    return found.pop() if len(found) == 1 else None


def _known_purposes(session: Session, purposes: Sequence[str]) -> list[str]:
    """The purposes an objection names, checked against the consent catalog."""
    from govern.consent.models import Purpose
    from govern.errors import UnknownPurposeError

    wanted = sorted({p.strip() for p in purposes if p.strip()})
    known = set(session.scalars(select(Purpose.key).where(Purpose.key.in_(wanted))))
    missing = [p for p in wanted if p not in known]
    if missing:
        raise UnknownPurposeError(f"unknown purpose {missing[0]!r}")
    return wanted


def submit(
    session: Session,
    *,
    type: str,
    identifiers: Mapping[str, str],
    calendar: WorkCalendar,
    actor: str,
    jurisdiction: str = "gdpr",
    channel: str = "web",
    received_at: dt.datetime | None = None,
    corrections: Mapping[str, Any] | None = None,
    verified: bool = False,
    purposes: Sequence[str] | None = None,
) -> SubmitResult:
    """Record a request; issue a verification code unless the requester is already verified.

    ``verified=True`` is for requests from an authenticated session of the host, where
    identity is already established; the actor is recorded as the verifier. ``corrections``
    are a rectification's ``{"table.column": value}``; ``purposes`` scope an objection to
    those consent purposes (none: every purpose). Both are kept, sealed, with the request.
    """
    from govern.db import load_models
    from govern.dsr.engine import validate_corrections

    if type not in REQUEST_TYPES:
        raise UsageError(f"unknown request type {type!r}; types: {', '.join(REQUEST_TYPES)}")
    if jurisdiction not in deadlines.JURISDICTIONS:
        raise UsageError(
            f"unknown jurisdiction {jurisdiction!r}; known: {', '.join(deadlines.JURISDICTIONS)}"
        )
    ids = {k: v.strip() for k, v in identifiers.items() if v and v.strip()}
    if not ids:
        raise UsageError(f"a request needs an identifier: {', '.join(IDENTIFIER_KINDS)}")
    for kind in ids:
        if kind not in IDENTIFIER_KINDS:
            raise UsageError(
                f"unknown identifier {kind!r}; identifiers: {', '.join(IDENTIFIER_KINDS)}"
            )
    clean: dict[str, Any] = {}
    if type == "rectification":
        clean = validate_corrections(load_models(), corrections or {})
    elif corrections:
        raise UsageError("corrections are only for rectification requests")
    if purposes:
        if type != "objection":
            raise UsageError("purposes are only for objection requests")
        clean = {"purposes": _known_purposes(session, purposes)}
    received = received_at or utcnow()
    req = DsrRequest(
        id=uuid.uuid4(),
        type=type,
        state="received",
        jurisdiction=jurisdiction,
        channel=channel,
        subject_id=resolve_subject(session, ids),
        received_at=received,
        due_at=deadlines.due_at(received, jurisdiction, calendar),
        corrections=clean,
        outcome={},
        notified={},
        code_attempts=0,
    )
    req.identifiers = [DsrIdentifier(kind=k, value=v) for k, v in sorted(ids.items())]
    session.add(req)
    session.add(DsrTransition(request_id=req.id, from_state=None, to_state="received", actor=actor))
    session.flush()
    audit_request(
        session,
        req.id,
        actor=actor,
        action="dsr.submit",
        details=[{"type": type, "jurisdiction": jurisdiction, "channel": channel}],
    )
    lifecycle_event(session, req, "submitted")
    code = None
    if verified:
        req.verified_at, req.verified_by = utcnow(), actor
        transition(session, req, "verified", actor=actor, reason="verified at intake")
    else:
        code = issue_code(session, req, actor=actor)
    return SubmitResult(request=to_out(req), verification_code=code)


def issue_code(session: Session, req: DsrRequest, *, actor: str) -> SecretStr:
    """A fresh one-time code (8 digits); only its keyed hash is stored. Resets attempts."""
    if req.state not in ("received", "identity_pending"):
        raise IllegalTransitionError(f"request {req.id} is {req.state}: no code to issue")
    code = f"{secrets.randbelow(10**8):08d}"
    req.code_hash = _hash_code(req.id, code)
    req.code_expires_at = utcnow() + CODE_TTL
    req.code_attempts = 0
    if req.state == "received":
        transition(session, req, "identity_pending", actor=actor, reason="verification code sent")
    session.flush()
    return SecretStr(code)


def resend_code(session: Session, request_id: uuid.UUID, *, actor: str) -> SecretStr:
    return issue_code(session, get_request(session, request_id, lock=True), actor=actor)


def verify(
    session: Session,
    request_id: uuid.UUID,
    code: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> RequestOut:
    """Check a one-time code. A wrong code costs an attempt; the attempt is kept even though
    the error is raised, so callers must commit the session before reporting the error."""
    now = now or utcnow()
    req = get_request(session, request_id, lock=True)
    if req.state != "identity_pending" or req.code_hash is None:
        raise IllegalTransitionError(f"request {req.id} is {req.state}: nothing to verify")
    if req.code_attempts >= MAX_ATTEMPTS:
        raise VerificationError("too many wrong codes: issue a new code")
    if req.code_expires_at is None or now >= req.code_expires_at:
        raise VerificationError("the verification code has expired: issue a new code")
    if not hmac.compare_digest(req.code_hash, _hash_code(req.id, code.strip())):
        req.code_attempts += 1
        session.flush()
        left = MAX_ATTEMPTS - req.code_attempts
        raise VerificationError(f"wrong verification code ({left} attempt(s) left)")
    req.code_hash = None
    req.code_expires_at = None
    req.verified_at, req.verified_by = now, actor
    transition(session, req, "verified", actor=actor, reason="one-time code matched")
    return to_out(req, now)


def approve(
    session: Session, request_id: uuid.UUID, *, actor: str, reason: str | None = None
) -> RequestOut:
    req = get_request(session, request_id, lock=True)
    if req.state == "awaiting_action":
        # approving would only send it back to the same manual step: confirm that step
        raise ManualStepError(
            f"request {req.id} awaits a manual step: confirm it (govern dsr confirm) or deny"
            " the request"
        )
    if req.state == "failed":
        transition(session, req, "approved", actor=actor, reason=reason or "retry")
    else:
        transition(session, req, "approved", actor=actor, reason=reason)
    req.decision_reason = reason
    req.claimed_by = None
    req.lease_expires_at = None
    return to_out(req)


def confirm_manual_step(
    session: Session,
    request_id: uuid.UUID,
    *,
    actor: str,
    seq: int | None = None,
    location: str | None = None,
    note: str | None = None,
) -> RequestOut:
    """Record that an operator did the manual step a request waits at, and queue it again.

    Name the step by ``seq`` or by its ``location`` (or both). Only the request's pending
    manual step can be confirmed, and only while the request is ``awaiting_action``:
    otherwise :class:`~govern.errors.ManualStepError` and nothing changes. The step's
    checkpoint becomes ``done`` by ``actor``; the audit row keeps ``note`` (operator text, e.g.
    "shredded folder 12"); the request goes back to ``approved`` so that a worker resumes at
    the next step.
    """
    who = actor.strip()
    if not who:
        raise UsageError("confirming a manual step needs the name of who did it")
    if seq is None and location is None:
        raise UsageError("name the manual step by its seq or its location")
    req = get_request(session, request_id, lock=True)
    if req.state != "awaiting_action":
        raise ManualStepError(f"request {req.id} is {req.state}: it awaits no manual step")
    step = session.scalars(
        select(DsrStep)
        .where(DsrStep.request_id == req.id, DsrStep.status == "pending")
        .order_by(DsrStep.seq)
        .limit(1)
        .with_for_update()
    ).first()
    if step is None or step.action != "manual":
        raise ManualStepError(f"request {req.id} has no pending manual step")
    if (seq is not None and seq != step.seq) or (
        location is not None and location != step.table_name
    ):
        raise ManualStepError(
            f"request {req.id} awaits manual step {step.seq} ({step.table_name}), not"
            f" {seq if seq is not None else location}"
        )
    now = utcnow()
    step.status, step.rows_affected, step.done_at, step.done_by = "done", 0, now, who
    audit_request(
        session,
        req.id,
        actor=who,
        action="dsr.step",
        details=[
            {
                "seq": step.seq,
                "table": step.table_name,
                "action": "manual",
                "status": "done",
                "rows": 0,
                "note": (note or "").strip() or None,
            }
        ],
    )
    transition(
        session,
        req,
        "approved",
        actor=who,
        reason=f"manual step {step.seq} ({step.table_name}) confirmed",
    )
    req.claimed_by, req.lease_expires_at = None, None
    lifecycle_event(session, req, "manual_step_confirmed", step=step.seq, location=step.table_name)
    session.flush()
    return to_out(req, now)


def deny(session: Session, request_id: uuid.UUID, *, actor: str, reason: str) -> RequestOut:
    """Reject a request; the reason (e.g. Art. 12(5) manifestly unfounded) is required."""
    if not reason.strip():
        raise UsageError("denying a request needs a reason")
    req = get_request(session, request_id, lock=True)
    transition(session, req, "rejected", actor=actor, reason=reason.strip())
    req.decision_reason = reason.strip()
    req.completed_at = utcnow()
    lifecycle_event(session, req, "rejected")
    return to_out(req)


def assign(session: Session, request_id: uuid.UUID, *, operator: str, actor: str) -> RequestOut:
    req = get_request(session, request_id, lock=True)
    req.assigned_to = operator
    audit_request(
        session, req.id, actor=actor, action="dsr.assign", details=[{"operator": operator}]
    )
    return to_out(req)


def extend(
    session: Session,
    request_id: uuid.UUID,
    *,
    reason: str,
    actor: str,
    calendar: WorkCalendar,
    now: dt.datetime | None = None,
) -> RequestOut:
    """Extend the deadline once (GDPR: to three months; CCPA: by 45 days).

    Refused after the first deadline has passed, on a second extension, and on closed
    requests. The subject is notified: the notice is recorded on the request (and sent
    through the hooks when events are installed).
    """
    now = now or utcnow()
    if not reason.strip():
        raise UsageError("an extension needs a reason")
    req = get_request(session, request_id, lock=True)
    if req.state not in OPEN_STATES:
        raise DeadlineError(f"request {req.id} is {req.state}: it cannot be extended")
    if req.extended_at is not None:
        raise DeadlineError(f"request {req.id} was already extended once")
    if now >= req.due_at:
        raise DeadlineError(f"request {req.id} is past its deadline: too late to extend")
    old = req.due_at
    req.due_at = deadlines.due_at(req.received_at, req.jurisdiction, calendar, extended=True)
    req.extended_at = now
    req.extension_reason = reason.strip()
    req.notified = {**(req.notified or {}), "extension": now.isoformat()}
    audit_request(
        session,
        req.id,
        actor=actor,
        action="dsr.extend",
        details=[{"from": old.isoformat(), "to": req.due_at.isoformat(), "reason": reason.strip()}],
    )
    # Art. 12(3): the subject is told of the extension and why; hooks deliver the notice
    lifecycle_event(session, req, "extended", previous_due_at=old.isoformat())
    session.flush()
    return to_out(req, now)


def list_requests(
    session: Session,
    *,
    state: str | None = None,
    type: str | None = None,
    due_within: dt.timedelta | None = None,
    overdue: bool = False,
    now: dt.datetime | None = None,
    limit: int = 1000,
) -> list[RequestOut]:
    now = now or utcnow()
    stmt = select(DsrRequest).order_by(DsrRequest.due_at, DsrRequest.id).limit(limit)
    if state is not None:
        stmt = stmt.where(DsrRequest.state == state)
    if type is not None:
        stmt = stmt.where(DsrRequest.type == type)
    if due_within is not None or overdue:
        stmt = stmt.where(DsrRequest.state.in_(OPEN_STATES))
    if due_within is not None:
        stmt = stmt.where(DsrRequest.due_at <= now + due_within, DsrRequest.due_at > now)
    if overdue:
        stmt = stmt.where(DsrRequest.due_at <= now)
    return [to_out(r, now) for r in session.scalars(stmt)]


def _steps(session: Session, request_id: uuid.UUID) -> list[StepOut]:
    rows = session.scalars(
        select(DsrStep).where(DsrStep.request_id == request_id).order_by(DsrStep.seq)
    )
    return [
        StepOut(
            seq=s.seq,
            table=s.table_name,
            action=s.action,
            columns=list(s.columns or []),
            rows=s.planned_rows,
            exception=s.exception,
            status=s.status,
            rows_affected=s.rows_affected,
            done_by=s.done_by,
        )
        for s in rows
    ]


def show(session: Session, request_id: uuid.UUID) -> RequestDetail:
    req = get_request(session, request_id)
    transitions = session.scalars(
        select(DsrTransition)
        .where(DsrTransition.request_id == request_id)
        .order_by(DsrTransition.id)
    )
    return RequestDetail(
        request=to_out(req),
        transitions=[
            TransitionOut(
                from_state=t.from_state,
                to_state=t.to_state,
                actor=t.actor,
                reason=t.reason,
                occurred_at=t.occurred_at,
            )
            for t in transitions
        ],
        steps=_steps(session, request_id),
    )


def plan_for(session: Session, req: DsrRequest | RequestRow) -> Plan:
    """The plan of ``req`` as its data stands now; reads counts, changes nothing.

    A legal hold shapes an erasure's plan only (the other rights are answered as usual).
    """
    from govern import holds
    from govern.db import load_models
    from govern.dsr.engine import build_plan

    held = (
        req.type == "erasure"
        and req.subject_id is not None
        and holds.is_held(session, req.subject_id)
    )
    return build_plan(
        session,
        load_models(),
        type=req.type,
        subject_id=req.subject_id,
        corrections=req.corrections or {},
        held=held,
    )


def plan(session: Session, request_id: uuid.UUID) -> PlanOut:
    """The plan of a request: the stored one once processing began, else a fresh dry run."""
    req = get_request(session, request_id)
    stored = _steps(session, request_id)
    if stored:
        excs = sorted({s.exception for s in stored if s.exception and s.rows})
        return PlanOut(
            request_id=req.id,
            type=req.type,
            subject_found=req.subject_id is not None,
            steps=stored,
            exceptions=list(req.outcome.get("exceptions", excs)),
        )
    p = plan_for(session, req)
    return PlanOut(
        request_id=req.id,
        type=req.type,
        subject_found=req.subject_id is not None,
        steps=[
            StepOut(
                seq=i,
                table=s.table,
                action=s.action,
                columns=s.columns,
                rows=s.rows,
                exception=s.exception,
                status="planned",
            )
            for i, s in enumerate(p.steps, 1)
        ],
        exceptions=p.exceptions,
    )


def report(
    session: Session,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """On-time rate and median handling time of completed requests, counts of the rest.

    Covers the requests received in ``[since, until]`` (either end open when ``None``).
    """
    now = now or utcnow()
    stmt = select(
        DsrRequest.state,
        DsrRequest.type,
        DsrRequest.received_at,
        DsrRequest.due_at,
        DsrRequest.completed_at,
        DsrRequest.extended_at,
    )
    if since is not None:
        stmt = stmt.where(DsrRequest.received_at >= since)
    if until is not None:
        stmt = stmt.where(DsrRequest.received_at <= until)
    by_state: dict[str, int] = {}
    by_type: dict[str, int] = {}
    hours: list[float] = []
    total = on_time = overdue = extended = 0
    for state, type_, received, due, completed, ext in session.execute(stmt):
        total += 1
        by_state[state] = by_state.get(state, 0) + 1
        by_type[type_] = by_type.get(type_, 0) + 1
        extended += ext is not None
        if state == "completed" and completed is not None:
            hours.append((completed - received).total_seconds() / 3600)
            on_time += completed < due
        elif state in OPEN_STATES and now >= due:
            overdue += 1
    return Report(
        total=total,
        by_state=by_state,
        by_type=by_type,
        completed=len(hours),
        on_time=on_time,
        on_time_rate=(on_time / len(hours)) if hours else None,
        median_handling_hours=statistics.median(hours) if hours else None,
        open_overdue=overdue,
        extended=extended,
    )


def _outcome(state: str, outcome: Mapping[str, Any]) -> str:
    if state == "completed":
        if outcome.get("no_data_held"):
            return "completed: no data held"
        package = outcome.get("package")
        if isinstance(package, Mapping):
            return f"completed: package of {package.get('rows', 0)} row(s)"
        return "completed"
    if state == "failed":
        return f"failed: {outcome.get('error', 'unknown error')}"
    if state == "rejected":
        return "rejected"
    return "open: " + state.replace("_", " ")


def _on_time(state: str, due: dt.datetime, completed: dt.datetime | None, now: dt.datetime) -> str:
    if state == "completed" and completed is not None:
        return "yes" if completed < due else "no"
    if state == "rejected":
        return "not applicable"
    return "overdue" if now >= due else "open"


def register(
    session: Session,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    now: dt.datetime | None = None,
    batch: int = 500,
) -> Iterator[RegisterEntry]:
    """The register of requests received in ``[since, until]``, oldest first, streamed.

    Ids, types, dates, states and outcomes only: no identifier values, no subject ids. The
    first deadline of an extended request is the one its ``dsr.extend`` audit row recorded.
    """
    from govern.domains.core import AuditLog

    now = now or utcnow()
    # columns, not entities: the register never loads (or decrypts) corrections
    stmt = select(
        DsrRequest.id,
        DsrRequest.type,
        DsrRequest.jurisdiction,
        DsrRequest.channel,
        DsrRequest.received_at,
        DsrRequest.due_at,
        DsrRequest.extended_at,
        DsrRequest.extension_reason,
        DsrRequest.state,
        DsrRequest.subject_id,
        DsrRequest.outcome,
        DsrRequest.completed_at,
    ).order_by(DsrRequest.received_at, DsrRequest.id)
    if since is not None:
        stmt = stmt.where(DsrRequest.received_at >= since)
    if until is not None:
        stmt = stmt.where(DsrRequest.received_at <= until)
    result = session.execute(stmt.execution_options(yield_per=batch))
    for chunk in result.partitions():
        extended = [str(r.id) for r in chunk if r.extended_at is not None]
        first: dict[str, str] = {}
        if extended:
            rows = session.execute(
                select(AuditLog.target_id, AuditLog.details)
                .where(
                    AuditLog.target_type == "dsr_request",
                    AuditLog.action == "dsr.extend",
                    AuditLog.target_id.in_(extended),
                )
                .order_by(AuditLog.id)
            )
            for target, details in rows:
                first.setdefault(str(target), str((details or {}).get("from")))
        for r in chunk:
            outcome = dict(r.outcome or {})
            was_extended = r.extended_at is not None
            deadline = r.due_at
            if was_extended and str(r.id) in first:
                deadline = dt.datetime.fromisoformat(first[str(r.id)])
            yield RegisterEntry(
                request_id=r.id,
                type=r.type,
                jurisdiction=r.jurisdiction,
                channel=r.channel,
                received_at=r.received_at,
                deadline=deadline,
                extended_deadline=r.due_at if was_extended else None,
                extended_at=r.extended_at,
                extension_reason=r.extension_reason,
                state=r.state,
                data_held=r.subject_id is not None,
                outcome=_outcome(r.state, outcome),
                exceptions=[str(e) for e in outcome.get("exceptions", [])],
                completed_at=r.completed_at,
                on_time=_on_time(r.state, r.due_at, r.completed_at, now),
            )


def restricted_subject_ids(table: str | None = None) -> Select[tuple[uuid.UUID]]:
    """A SELECT of subjects whose data is restricted (everywhere, or in ``table``)."""
    stmt = select(Restriction.subject_id).where(Restriction.lifted_at.is_(None))
    if table is not None:
        stmt = stmt.where(or_(Restriction.table_name.is_(None), Restriction.table_name == table))
    return stmt


def exclude_restricted(
    stmt: Select[Any], subject_column: ColumnElement[Any], table: str | None = None
) -> Select[Any]:
    """``stmt`` without rows of restricted subjects: the query helper for ordinary processing.

    ``exclude_restricted(select(Order), Order.subject_id, "orders")``
    """
    return stmt.where(
        or_(subject_column.is_(None), subject_column.not_in(restricted_subject_ids(table)))
    )


def is_restricted(session: Session, subject_id: uuid.UUID, table: str | None = None) -> bool:
    return (
        session.scalar(
            restricted_subject_ids(table).where(Restriction.subject_id == subject_id).limit(1)
        )
        is not None
    )


def lift_restrictions(
    session: Session, subject_id: uuid.UUID, *, actor: str, reason: str, tables: Sequence[str] = ()
) -> int:
    """Lift restrictions of a subject (Art. 18(3): the subject is told before)."""
    from sqlalchemy import update

    cond = and_(Restriction.subject_id == subject_id, Restriction.lifted_at.is_(None))
    if tables:
        cond = and_(cond, Restriction.table_name.in_(tables))
    n = int(
        session.execute(update(Restriction).where(cond).values(lifted_at=utcnow())).rowcount  # type: ignore[attr-defined]
    )
    audit.record(
        session,
        actor=actor,
        action="dsr.restriction.lift",
        target_type="subject",
        target_id=str(subject_id),
        details={"restrictions": n, "reason": reason},
    )
    return n


def dsr_map(metadata: MetaData | None = None) -> DsrMap:
    """The data map with each table's DSR actions, plus linked tables that have none."""
    from govern.datamap import data_map
    from govern.datamap.actions import actions_for, manual_locations, validate_actions
    from govern.db import load_models

    md = metadata if metadata is not None else load_models()
    tables, unmapped = [], []
    for e in data_map(md):
        if not e.subject_link:
            continue
        a = actions_for(e.name)
        if a is None:
            unmapped.append(e.name)
            continue
        tables.append(
            MapEntry(
                table=e.name,
                domain=e.domain,
                subject_link=e.subject_link,
                categories=sorted({c for col in e.columns for c in col.categories}),
                erasure=a.describe_erasure(),
                exception=(f"{a.exception.article}: {a.exception.reason}" if a.exception else None),
                rectifiable=list(a.rectifiable),
                portable=a.portable,
                access=a.access,
            )
        )
    manual = [
        ManualOut(name=m.name, description=m.description, owner=m.owner, rights=list(m.rights))
        for m in manual_locations()
    ]
    return DsrMap(tables=tables, manual=manual, unmapped=unmapped, problems=validate_actions(md))


def export_package(
    session: Session, request_id: uuid.UUID, *, out: Path | None = None
) -> ExportOut:
    """The package of an access or portability request, checksum-verified; copied to ``out``."""
    import shutil

    from govern.dsr.engine import file_sha256
    from govern.dsr.models import DsrExport

    req = get_request(session, request_id)
    if req.type not in ("access", "portability"):
        raise UsageError(f"request {req.id} is a {req.type} request: it has no package")
    exp = session.scalars(
        select(DsrExport).where(DsrExport.request_id == req.id).order_by(DsrExport.id.desc())
    ).first()
    if exp is None:
        state = "no data held" if req.subject_id is None and req.state == "completed" else req.state
        raise UsageError(f"request {req.id} has no package ({state})")
    path = Path(exp.path)
    if not path.is_file() or file_sha256(path) != exp.sha256:
        raise UsageError(f"the package of request {req.id} is missing or altered: {path}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        path = out
    return ExportOut(
        request_id=req.id,
        path=str(path),
        sha256=exp.sha256,
        size_bytes=exp.size_bytes,
        tables=exp.tables,
        rows=exp.rows,
    )


def check_deadlines(
    session: Session,
    *,
    due_soon: dt.timedelta = dt.timedelta(days=7),
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Emit ``govern.dsr.due_soon`` and ``govern.dsr.overdue`` once per open request.

    Workers call this on every pass; a request's ``notified`` map remembers what was sent,
    and an extension re-arms the due-soon notice for the new deadline.
    """
    now = now or utcnow()
    sent = {"due_soon": 0, "overdue": 0}
    stmt = (
        select(DsrRequest)
        .where(DsrRequest.state.in_(OPEN_STATES), DsrRequest.due_at <= now + due_soon)
        .order_by(DsrRequest.due_at)
        .with_for_update(skip_locked=True)
    )
    for req in session.scalars(stmt):
        notified = dict(req.notified or {})
        what = "overdue" if now >= req.due_at else "due_soon"
        key = f"{what}:{req.due_at.isoformat()}"
        if key in notified:
            continue
        lifecycle_event(session, req, what)
        notified[key] = now.isoformat()
        req.notified = notified
        sent[what] += 1
    session.flush()
    return sent
