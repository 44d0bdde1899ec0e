"""Pydantic models in and out of the DSR service; each renders as text or JSON."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field, SecretStr

REQUEST_TYPES: tuple[str, ...] = (
    "access",
    "portability",
    "erasure",
    "rectification",
    "restriction",
    "objection",
)

STATES: tuple[str, ...] = (
    "received",
    "identity_pending",
    "verified",
    "approved",
    "rejected",
    "in_progress",
    "awaiting_action",
    "completed",
    "failed",
)

TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"identity_pending", "verified", "rejected"}),
    "identity_pending": frozenset({"verified", "rejected"}),
    "verified": frozenset({"approved", "rejected"}),
    "approved": frozenset({"in_progress", "rejected"}),
    "in_progress": frozenset({"completed", "failed", "awaiting_action"}),
    "awaiting_action": frozenset({"approved", "rejected"}),
    "failed": frozenset({"approved", "rejected"}),
    "rejected": frozenset(),
    "completed": frozenset(),
}
"""The state machine: every allowed ``from -> to``; anything else is refused."""

OPEN_STATES: frozenset[str] = frozenset(STATES) - {"rejected", "completed"}


def _when(t: dt.datetime | None) -> str:
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M UTC")


class TransitionOut(BaseModel):
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None
    occurred_at: dt.datetime


class StepOut(BaseModel):
    seq: int
    table: str | None
    action: str
    columns: list[str]
    rows: int
    exception: str | None
    status: str
    rows_affected: int | None = None
    done_by: str | None = None

    def text_line(self) -> str:
        if self.action == "manual":
            how = f"confirmed by {self.done_by}" if self.done_by else "done by an operator"
            return f"{self.seq:>3} {self.status:<8} manual     {self.table} ({how})"
        cols = f" [{', '.join(self.columns)}]" if self.columns else ""
        exc = f" exception {self.exception}" if self.exception else ""
        done = "" if self.rows_affected is None else f", {self.rows_affected} done"
        return (
            f"{self.seq:>3} {self.status:<8} {self.action:<10} {self.table or '-'}"
            f" ({self.rows} row(s){done}){cols}{exc}"
        )


class RequestOut(BaseModel):
    """A request as shown to operators: no identifier values, no code hash."""

    id: uuid.UUID
    type: str
    state: str
    jurisdiction: str
    channel: str
    subject_found: bool
    received_at: dt.datetime
    due_at: dt.datetime
    extended: bool
    assigned_to: str | None
    decision_reason: str | None
    identifier_kinds: list[str]
    completed_at: dt.datetime | None
    outcome: dict[str, Any]
    overdue: bool

    def text_line(self) -> str:
        late = " OVERDUE" if self.overdue else ""
        return (
            f"{self.id} {self.type:<13} {self.state:<16} due {_when(self.due_at)}{late}"
            f" ({self.jurisdiction}, {self.channel})"
        )

    def text_lines(self) -> list[str]:
        return [self.text_line()]


class RequestDetail(BaseModel):
    request: RequestOut
    transitions: list[TransitionOut]
    steps: list[StepOut]

    def text_lines(self) -> list[str]:
        r = self.request
        lines = [
            r.text_line(),
            f"  received {_when(r.received_at)}; extended: {'yes' if r.extended else 'no'}",
            f"  identifiers: {', '.join(r.identifier_kinds) or 'none'}; "
            f"data held: {'yes' if r.subject_found else 'none found'}",
        ]
        if r.assigned_to:
            lines.append(f"  assigned to {r.assigned_to}")
        lines.append("  transitions:")
        lines += [
            f"    {_when(t.occurred_at)} {t.from_state or '-'} -> {t.to_state} by {t.actor}"
            + (f": {t.reason}" if t.reason else "")
            for t in self.transitions
        ]
        if self.steps:
            lines.append("  steps:")
            lines += ["  " + s.text_line() for s in self.steps]
        for exc in r.outcome.get("exceptions", []):
            lines.append(f"  exception: {exc}")
        return lines


class SubmitResult(BaseModel):
    """A new request; ``verification_code`` is returned once, for delivery to the subject."""

    request: RequestOut
    verification_code: SecretStr | None = Field(default=None, exclude=True)

    def text_lines(self) -> list[str]:
        lines = self.request.text_lines()
        if self.request.state == "identity_pending":
            lines.append("  a verification code was issued (deliver it to the subject)")
        return lines


class RequestList(BaseModel):
    requests: list[RequestOut]

    def text_lines(self) -> list[str]:
        return [r.text_line() for r in self.requests] or ["no requests"]


class PlanOut(BaseModel):
    """What processing a request reads and changes, step by step."""

    request_id: uuid.UUID
    type: str
    subject_found: bool
    steps: list[StepOut]
    exceptions: list[str]

    def text_lines(self) -> list[str]:
        head = f"plan for {self.type} request {self.request_id}"
        if not self.subject_found:
            return [head, "  no data held about this person: nothing to read or change"]
        return (
            [head]
            + ["  " + s.text_line() for s in self.steps]
            + [f"  exception: {e}" for e in self.exceptions]
        )


class ProcessResult(BaseModel):
    request_id: uuid.UUID
    state: str
    steps_run: int
    steps_total: int
    export_path: str | None = None
    exceptions: list[str] = []
    awaiting_step: int | None = None
    """The manual step the request now waits at (state ``awaiting_action``)."""
    awaiting_location: str | None = None

    @property
    def ok(self) -> bool:
        # waiting for an operator is where the worker is meant to stop, not a failure
        return self.state in ("completed", "awaiting_action")

    def text_lines(self) -> list[str]:
        lines = [
            f"{self.request_id}: {self.state} ({self.steps_run} step(s) run now,"
            f" {self.steps_total} planned)"
        ]
        if self.awaiting_step is not None:
            lines.append(
                f"  waiting at manual step {self.awaiting_step} ({self.awaiting_location}):"
                f" confirm with govern dsr confirm {self.request_id}"
                f" --step {self.awaiting_step} --by NAME"
            )
        if self.export_path:
            lines.append(f"  package: {self.export_path}")
        lines += [f"  exception: {e}" for e in self.exceptions]
        return lines


class WorkResult(BaseModel):
    worker: str
    processed: list[ProcessResult]

    def text_lines(self) -> list[str]:
        if not self.processed:
            return [f"worker {self.worker}: no requests to process"]
        return [f"worker {self.worker}: {len(self.processed)} request(s)"] + [
            line for p in self.processed for line in p.text_lines()
        ]


class ExportOut(BaseModel):
    request_id: uuid.UUID
    path: str
    sha256: str
    size_bytes: int
    tables: int
    rows: int

    def text_lines(self) -> list[str]:
        return [
            f"wrote {self.path}: {self.tables} table(s), {self.rows} row(s),"
            f" {self.size_bytes} bytes, sha256 {self.sha256}"
        ]


class Report(BaseModel):
    """Counts, on-time rate and handling times over the requests received in a window."""

    total: int
    by_state: dict[str, int]
    by_type: dict[str, int]
    completed: int
    on_time: int
    on_time_rate: float | None
    median_handling_hours: float | None
    open_overdue: int
    extended: int

    def text_lines(self) -> list[str]:
        rate = "-" if self.on_time_rate is None else f"{self.on_time_rate:.1%}"
        med = "-" if self.median_handling_hours is None else f"{self.median_handling_hours:.1f} h"
        return [
            f"requests: {self.total} ({self.completed} completed, {self.open_overdue} open overdue,"
            f" {self.extended} extended)",
            f"on time: {self.on_time}/{self.completed} ({rate}); median handling time {med}",
            "by state: " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_state.items())),
            "by type: " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_type.items())),
        ]


class RegisterEntry(BaseModel):
    """One line of the DSR register for auditors: ids, types, dates and outcomes only.

    ``deadline`` is the first deadline; ``extended_deadline`` the one after the extension (if
    any). ``on_time`` is ``yes``/``no`` for completed requests, ``overdue`` or ``open`` for open
    ones and ``rejected`` for refused ones.
    """

    request_id: uuid.UUID
    type: str
    jurisdiction: str
    channel: str
    received_at: dt.datetime
    deadline: dt.datetime
    extended_deadline: dt.datetime | None
    extended_at: dt.datetime | None
    extension_reason: str | None
    state: str
    data_held: bool
    outcome: str
    exceptions: list[str]
    completed_at: dt.datetime | None
    on_time: str


class MapEntry(BaseModel):
    table: str
    domain: str
    subject_link: str
    categories: list[str]
    erasure: str
    exception: str | None
    rectifiable: list[str]
    portable: bool
    access: bool

    def text_line(self) -> str:
        exc = f"; exception {self.exception}" if self.exception else ""
        return f"{self.table} ({self.domain}) via {self.subject_link}: erasure {self.erasure}{exc}"


class ManualOut(BaseModel):
    """A manual location: personal data outside the database, handled by an operator."""

    name: str
    description: str
    owner: str
    rights: list[str]

    def text_line(self) -> str:
        return (
            f"{self.name} (manual, owner {self.owner}): {self.description};"
            f" rights {', '.join(self.rights)}"
        )


class DsrMap(BaseModel):
    tables: list[MapEntry]
    manual: list[ManualOut] = []
    unmapped: list[str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.unmapped and not self.problems

    def text_lines(self) -> list[str]:
        lines = [t.text_line() for t in self.tables]
        lines += [m.text_line() for m in self.manual]
        lines += [f"UNMAPPED {t}: links to subjects but has no DSR actions" for t in self.unmapped]
        lines += [f"PROBLEM {p}" for p in self.problems]
        return lines
