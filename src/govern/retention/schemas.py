"""Results of retention commands: each renders as text lines or as one JSON document."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel


class PolicyPlan(BaseModel):
    """What a policy would do now: computed by the same selection a run uses."""

    policy: str
    table: str
    action: str
    content_hash: str
    approved: bool
    cutoff: dt.datetime
    rows: int
    cascaded_rows: int
    oldest: dt.datetime | dt.date | None
    newest: dt.datetime | dt.date | None
    sample_keys: list[Any]
    excluded_by_holds: int
    excluded_by_references: int
    table_rows: int
    share_of_table: float
    previous_median: int | None
    limits_tripped: list[str]

    def text_line(self) -> str:
        state = "approved" if self.approved else "NOT APPROVED (simulation only)"
        line = (
            f"{self.policy}: {self.action} {self.rows} of {self.table_rows} row(s) in "
            f"{self.table} ({self.share_of_table:.1%}), older than {self.cutoff:%Y-%m-%d %H:%M}"
        )
        if self.cascaded_rows:
            line += f", +{self.cascaded_rows} cascaded"
        line += f"; held {self.excluded_by_holds}, referenced {self.excluded_by_references}; "
        line += state
        if self.limits_tripped:
            line += "; WOULD TRIP: " + "; ".join(self.limits_tripped)
        return line


class PlanReport(BaseModel):
    policies: list[PolicyPlan]

    def text_lines(self) -> list[str]:
        return [p.text_line() for p in self.policies] or ["no retention policies"]


class RunOut(BaseModel):
    id: uuid.UUID | None
    policy: str
    table: str
    action: str
    status: str
    planned_rows: int
    processed_rows: int
    cascaded_rows: int
    batches: int
    cutoff: dt.datetime | None
    restore_until: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    override_by: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("completed", "skipped", "rolled_back", "purged")

    def text_line(self) -> str:
        rid = str(self.id) if self.id else "-"
        line = (
            f"{rid} {self.policy}: {self.status}, {self.processed_rows}/{self.planned_rows} row(s)"
            f" in {self.batches} batch(es)"
        )
        if self.cascaded_rows:
            line += f", +{self.cascaded_rows} cascaded"
        if self.detail:
            line += f"; {self.detail}"
        return line

    def text_lines(self) -> list[str]:
        return [self.text_line()]


class RunReport(BaseModel):
    runs: list[RunOut]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    def text_lines(self) -> list[str]:
        return [r.text_line() for r in self.runs] or ["no retention runs"]


class ApprovalOut(BaseModel):
    policy: str
    content_hash: str
    approved_by: str
    note: str | None
    approved_at: dt.datetime

    def text_lines(self) -> list[str]:
        return [
            f"approved {self.policy} version {self.content_hash[:12]} by {self.approved_by} "
            f"at {self.approved_at:%Y-%m-%d %H:%M}"
        ]


class PolicyOut(BaseModel):
    name: str
    table: str
    action: str
    period: str
    grace: str
    owner: str
    purpose: str
    schedule: str
    content_hash: str
    approved: bool
    approved_by: str | None
    approved_at: dt.datetime | None
    last_run_status: str | None
    body: dict[str, Any]

    def text_line(self) -> str:
        state = f"approved by {self.approved_by}" if self.approved else "NOT APPROVED"
        last = f", last run {self.last_run_status}" if self.last_run_status else ""
        return (
            f"{self.name}: {self.action} {self.table} after {self.period} "
            f"(owner {self.owner}, {self.schedule!r}); {state}{last}"
        )

    def text_lines(self) -> list[str]:
        return [self.text_line()]


class PolicyList(BaseModel):
    source: str
    policies: list[PolicyOut]

    def text_lines(self) -> list[str]:
        return [f"policies from {self.source}:"] + [p.text_line() for p in self.policies]


class RollbackOut(BaseModel):
    run_id: uuid.UUID
    policy: str
    restored: dict[str, int]

    def text_lines(self) -> list[str]:
        parts = ", ".join(f"{n} in {t}" for t, n in self.restored.items()) or "nothing"
        return [f"rolled back run {self.run_id} ({self.policy}): restored {parts}"]


class PurgeOut(BaseModel):
    purged_rows: int
    runs: list[uuid.UUID]

    def text_lines(self) -> list[str]:
        return [f"purged {self.purged_rows} quarantined row(s) of {len(self.runs)} run(s)"]


class AlertOut(BaseModel):
    id: int
    kind: str
    policy: str | None
    run_id: uuid.UUID | None
    message: str
    details: dict[str, Any]
    raised_at: dt.datetime

    def text_line(self) -> str:
        return (
            f"{self.raised_at:%Y-%m-%d %H:%M:%S} {self.kind} {self.policy or '-'}: {self.message}"
        )


class AlertList(BaseModel):
    alerts: list[AlertOut]

    def text_lines(self) -> list[str]:
        return [a.text_line() for a in self.alerts] or ["no retention alerts"]


class ScheduleOut(BaseModel):
    jobs: list[str]
    skipped: list[str]
    ran_for_seconds: float | None

    def text_lines(self) -> list[str]:
        lines = [f"scheduled {j}" for j in self.jobs]
        lines += [f"not scheduled {s}" for s in self.skipped]
        return lines or ["no approved retention policies to schedule"]


class RunList(BaseModel):
    """Recent runs, for reading: listing never fails because a run did."""

    runs: list[RunOut]

    def text_lines(self) -> list[str]:
        return [r.text_line() for r in self.runs] or ["no retention runs"]
