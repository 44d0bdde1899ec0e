"""Results of the credential commands."""

from __future__ import annotations

from pydantic import BaseModel


class Finding(BaseModel):
    """One account with a problem: ``kind`` is ``demo_password`` or ``outdated_scheme``."""

    username: str
    account_id: str
    kind: str
    detail: str


class ScanReport(BaseModel):
    accounts_scanned: int
    demo_passwords_tried: int
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings

    def text_lines(self) -> list[str]:
        head = (
            f"scanned {self.accounts_scanned} account(s) against "
            f"{self.demo_passwords_tried} known demo password(s)"
        )
        if not self.findings:
            return [head, "no legacy demo passwords or outdated hash schemes"]
        return [head] + [f"FAIL {f.username}: {f.kind} ({f.detail})" for f in self.findings]


class PurgeResult(BaseModel):
    invalidated: list[Finding]

    def text_lines(self) -> list[str]:
        if not self.invalidated:
            return ["nothing to purge"]
        return [
            f"invalidated {f.username} ({f.kind}): password reset forced" for f in self.invalidated
        ]


class RotatedSecret(BaseModel):
    """A new service-account password. Shown once, by ``govern credentials rotate`` only."""

    username: str
    secret: str


class RotateResult(BaseModel):
    rotated: list[RotatedSecret]

    def text_lines(self) -> list[str]:
        if not self.rotated:
            return ["no service accounts to rotate"]
        lines = ["new secrets (shown once; store them in your secret manager now):"]
        lines += [f"  {r.username}: {r.secret}" for r in self.rotated]
        return lines
