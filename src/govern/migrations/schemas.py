"""Results of the migration commands (rendered as text or JSON by the CLI)."""

from __future__ import annotations

from pydantic import BaseModel


class DomainStatus(BaseModel):
    domain: str
    current: str | None
    head: str
    pending: int
    depends_on: list[str]

    @property
    def at_head(self) -> bool:
        return self.pending == 0


class StatusReport(BaseModel):
    database: str
    domains: list[DomainStatus]

    def text_lines(self) -> list[str]:
        lines = [f"database: {self.database}"]
        for d in self.domains:
            state = "up to date" if d.at_head else f"{d.pending} pending"
            lines.append(
                f"{d.domain:<10} current={d.current or 'base':<16} head={d.head:<16} {state}"
            )
        return lines


class Step(BaseModel):
    domain: str
    revision: str
    direction: str
    message: str


class MigrateResult(BaseModel):
    database: str
    steps: list[Step]
    status: StatusReport

    def text_lines(self) -> list[str]:
        lines = [
            f"{s.direction:<4} {s.domain:<10} {s.revision:<16} {s.message}" for s in self.steps
        ]
        if not self.steps:
            lines.append("nothing to do")
        return lines + self.status.text_lines()


class Revision(BaseModel):
    domain: str
    revision: str
    down_revision: str | None
    depends_on: list[str]
    message: str
    filename: str
    applied: bool


class HistoryReport(BaseModel):
    revisions: list[Revision]

    def text_lines(self) -> list[str]:
        return [
            f"{'*' if r.applied else ' '} {r.domain:<10} {r.down_revision or 'base':<16} -> "
            f"{r.revision:<16} {r.message}"
            for r in self.revisions
        ]


class Finding(BaseModel):
    kind: str
    domain: str | None
    detail: str


class CheckReport(BaseModel):
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings

    def text_lines(self) -> list[str]:
        if self.ok:
            return ["ok: no drift, every revision reversible, one head per domain, checksums match"]
        return [f"{f.kind}: {f.domain + ': ' if f.domain else ''}{f.detail}" for f in self.findings]
