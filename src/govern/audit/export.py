"""``govern audit export`` and ``govern audit verify``: the signed evidence bundle."""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy.orm import Session

from govern.audit.bundle import BundleWriter, key_id, public_key_b64, seal, verify_bundle
from govern.audit.report import render
from govern.audit.sections import NOT_AVAILABLE, SECTIONS, Controller, ExportContext, Section
from govern.errors import UsageError


class SectionOut(BaseModel):
    key: str
    title: str
    status: str
    files: list[str]


class ExportResult(BaseModel):
    path: str
    files: int
    manifest_sha256: str
    key_id: str
    public_key: str
    sections: list[SectionOut]

    def text_lines(self) -> list[str]:
        lines = [f"wrote {self.path} ({self.files} files, signed by key {self.key_id})"]
        for s in self.sections:
            lines.append(f"  {s.status:<31} {s.title}")
        lines.append(f"verify with: govern audit verify {self.path} --public-key {self.public_key}")
        return lines


class VerifyResult(BaseModel):
    path: str
    signature_ok: bool
    key_id: str
    pinned: bool
    files_checked: int
    altered: list[str]
    missing: list[str]
    unlisted: list[str]

    @property
    def ok(self) -> bool:
        return self.signature_ok and not (self.altered or self.missing or self.unlisted)

    def text_lines(self) -> list[str]:
        if self.signature_ok:
            how = "pinned key" if self.pinned else "key embedded in the bundle (not pinned)"
            lines = [f"signature ok: manifest signed by {self.key_id} ({how})"]
        else:
            lines = ["FAIL signature: manifest.json is not signed by the expected key"]
        lines += [f"FAIL altered: {p}" for p in self.altered]
        lines += [f"FAIL missing: {p}" for p in self.missing]
        lines += [f"FAIL not in manifest: {p}" for p in self.unlisted]
        if self.ok:
            lines.append(f"all {self.files_checked} files match manifest.json")
        return lines


def _period_label(start: dt.datetime | None, end: dt.datetime) -> str:
    return f"{start.date().isoformat() if start else 'beginning'} to {end.date().isoformat()}"


def export_bundle(
    session: Session,
    out: Path,
    *,
    signing_key: bytes,
    controller: Controller,
    period_from: dt.datetime | None = None,
    period_to: dt.datetime | None = None,
    now: dt.datetime | None = None,
    consent_verify_key: str | None = None,
    retention_policies: str | None = None,
) -> ExportResult:
    """Write the signed audit bundle to ``out`` (written to a temporary file, then renamed).

    Reads only; the caller's transaction gives every section the same snapshot on
    PostgreSQL. A failure leaves no partial bundle behind.
    """
    from govern import __version__

    stamp = now or dt.datetime.now(dt.UTC)
    end = period_to or stamp
    if period_from is not None and period_from > end:
        raise UsageError("the period's start is after its end")
    ctx = ExportContext(
        session, controller, period_from, end, stamp, consent_verify_key, retention_policies
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    pub = public_key_b64(signing_key)
    try:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            writer = BundleWriter(zf)
            sections: list[Section] = [fn(ctx, writer) for fn in SECTIONS]
            writer.add(
                "report.html",
                render(
                    sections=sections,
                    controller_name=controller.name,
                    period=_period_label(period_from, end),
                    generated_at=stamp.strftime("%Y-%m-%d %H:%M UTC"),
                    govern_version=__version__,
                    key_id=key_id(pub),
                ),
            )
            digest = seal(
                zf,
                writer,
                signing_key,
                {
                    "created_at": stamp.isoformat(),
                    "govern_version": __version__,
                    "period": {
                        "from": period_from.isoformat() if period_from else None,
                        "to": end.isoformat(),
                    },
                    "sections": {s.key: s.status for s in sections},
                },
            )
            files = len(writer.members)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(
        path=str(out),
        files=files,
        manifest_sha256=digest,
        key_id=key_id(pub),
        public_key=pub,
        sections=[
            SectionOut(key=s.key, title=s.title, status=s.status, files=s.files) for s in sections
        ],
    )


def verify(path: Path, public_key: str | None = None) -> VerifyResult:
    """Check a bundle's signature and every file's SHA-256, naming what does not match."""
    v = verify_bundle(path, public_key)
    return VerifyResult(
        path=str(path),
        signature_ok=v.signature_ok,
        key_id=v.key_id,
        pinned=v.pinned,
        files_checked=v.files_checked,
        altered=v.altered,
        missing=v.missing,
        unlisted=v.unlisted,
    )


__all__ = ["NOT_AVAILABLE", "ExportResult", "VerifyResult", "export_bundle", "verify"]
