"""Pydantic schemas in and out of the consent ledger's service functions."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) legal bases, named as in the W3C Data Privacy Vocabulary (DPV)."""

    CONSENT = "Consent"
    CONTRACT = "Contract"
    LEGAL_OBLIGATION = "LegalObligation"
    VITAL_INTEREST = "VitalInterest"
    PUBLIC_INTEREST = "PublicInterest"
    LEGITIMATE_INTEREST = "LegitimateInterest"

    @property
    def dpv(self) -> str:
        return f"dpv:{self.value}"

    @property
    def gdpr_article(self) -> str:
        letter = "abcdef"[list(LegalBasis).index(self)]
        return f"dpv-gdpr:A6-1-{letter}"


class ConsentEvent(StrEnum):
    """What happened to a consent, after the W3C DPV consent statuses."""

    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @property
    def dpv(self) -> str:
        return f"dpv:Consent{self.value.capitalize()}"


class CollectionMethod(StrEnum):
    WEB_FORM = "web_form"
    MOBILE_APP = "mobile_app"
    API = "api"
    IMPORT = "import"
    GPC = "gpc"


class Reason(StrEnum):
    """Why a check allowed or denied processing."""

    GRANTED = "granted"
    LEGAL_BASIS = "legal_basis"
    NO_RECORD = "no_record"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"
    EXPIRED = "expired"
    STALE_NOTICE = "stale_notice"
    OBJECTION = "objection"


RECONSENT_REASONS = frozenset({Reason.EXPIRED, Reason.STALE_NOTICE})
ALLOWED_REASONS = frozenset({Reason.GRANTED, Reason.LEGAL_BASIS})

_KEY = r"^[a-z][a-z0-9_.-]{0,99}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class NoticeTextIn(_In):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1)


class NoticeVersionIn(_In):
    """A new version of a notice; ``texts`` maps BCP 47 locales to texts."""

    version: int | None = Field(default=None, ge=1, description="default: the next number")
    material_change: bool = False
    published_at: dt.datetime | None = None
    texts: dict[str, NoticeTextIn] = Field(min_length=1)


class NoticeIn(_In):
    key: str = Field(pattern=_KEY)
    title: str = Field(min_length=1, max_length=200)
    default_locale: str = "en"
    controller: str = Field(min_length=1, max_length=200)
    controller_contact: str = Field(min_length=1, max_length=200)
    controller_email: str = Field(min_length=3, max_length=320)
    controller_phone: str = Field(min_length=1, max_length=64)
    controller_address: str = Field(min_length=1, max_length=500)
    policy_url: str = Field(min_length=1, max_length=500)
    versions: list[NoticeVersionIn] = Field(default_factory=list)


class PurposeIn(_In):
    key: str = Field(pattern=_KEY)
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    legal_basis: LegalBasis = LegalBasis.CONSENT
    data_categories: list[str] = Field(default_factory=list)
    retention_days: int | None = Field(default=None, ge=1)
    consent_validity_days: int | None = Field(default=None, ge=1)
    sale_or_sharing: bool = False
    third_parties: list[str] = Field(default_factory=list)
    notice: str = Field(pattern=_KEY)


class Catalog(_In):
    """Notices (with versions and texts) and purposes, as loaded from a TOML or JSON file."""

    notices: list[NoticeIn] = Field(default_factory=list)
    purposes: list[PurposeIn] = Field(default_factory=list)


class ConsentIn(_In):
    """One decision to append. Timestamps must be timezone-aware and not in the future."""

    subject: str = Field(min_length=1, max_length=128)
    purpose: str
    event: ConsentEvent
    notice_version: int | None = Field(default=None, ge=1, description="default: current")
    locale: str | None = Field(default=None, description="locale shown; default the notice's")
    method: CollectionMethod = CollectionMethod.API
    jurisdiction: str | None = Field(default=None, pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
    occurred_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    tcf_string: str | None = Field(default=None, max_length=20000)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class NoticeVersionOut(_Out):
    notice: str
    version: int
    material_change: bool
    published_at: dt.datetime
    locales: list[str]

    def text_lines(self) -> list[str]:
        flag = " (material change)" if self.material_change else ""
        return [f"notice {self.notice} v{self.version}{flag}: {', '.join(self.locales)}"]


class NoticeTextOut(_Out):
    notice: str
    version: int
    requested_locale: str
    locale: str
    title: str
    body: str

    def text_lines(self) -> list[str]:
        return [f"{self.title} [{self.notice} v{self.version}, {self.locale}]", "", self.body]


class PurposeOut(_Out):
    key: str
    name: str
    description: str
    legal_basis: LegalBasis
    data_categories: list[str]
    retention_days: int | None
    consent_validity_days: int | None
    sale_or_sharing: bool
    third_parties: list[str]
    notice: str
    notice_version: int | None


class PurposeList(_Out):
    purposes: list[PurposeOut]

    def text_lines(self) -> list[str]:
        if not self.purposes:
            return ["no purposes (load some with `govern consent load FILE`)"]
        return [
            f"{p.key}: {p.name} [{p.legal_basis.value}; notice {p.notice} v{p.notice_version}"
            f"{'; sale/sharing' if p.sale_or_sharing else ''}]"
            for p in self.purposes
        ]


class CatalogResult(_Out):
    notices_added: list[str]
    versions_added: list[str]
    purposes_added: list[str]
    unchanged: list[str]

    def text_lines(self) -> list[str]:
        return [
            f"notices added: {', '.join(self.notices_added) or '-'}",
            f"notice versions added: {', '.join(self.versions_added) or '-'}",
            f"purposes added: {', '.join(self.purposes_added) or '-'}",
            f"already present: {', '.join(self.unchanged) or '-'}",
        ]


class ConsentRecordOut(_Out):
    record_id: uuid.UUID
    subject: str
    seq: int
    purpose: str
    event: ConsentEvent
    notice: str
    notice_version: int
    locale: str
    legal_basis: LegalBasis
    method: CollectionMethod
    jurisdiction: str | None
    controller: str
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    expires_at: dt.datetime | None
    tcf_string: str | None
    idempotency_key: str | None
    prev_hash: str | None
    hash: str

    def text_lines(self) -> list[str]:
        exp = f", expires {self.expires_at.isoformat()}" if self.expires_at else ""
        return [
            f"{self.occurred_at.isoformat()} #{self.seq} {self.purpose}: {self.event.value} "
            f"(notice {self.notice} v{self.notice_version}, {self.locale}, "
            f"{self.method.value}{exp}) record {self.record_id} hash {self.hash[:16]}"
        ]


class AppendResult(_Out):
    records: list[ConsentRecordOut]

    def text_lines(self) -> list[str]:
        if not self.records:
            return ["nothing appended (no purpose matched)"]
        return [line for r in self.records for line in r.text_lines()]


class History(_Out):
    records: list[ConsentRecordOut]

    def text_lines(self) -> list[str]:
        return [line for r in self.records for line in r.text_lines()] or ["no records"]


class ConsentDecision(_Out):
    """The answer to "may I process this subject's data for this purpose (at this moment)?"."""

    purpose: str
    allowed: bool
    reason: Reason
    reconsent_needed: bool
    status: ConsentEvent | None
    record_id: uuid.UUID | None
    occurred_at: dt.datetime | None
    expires_at: dt.datetime | None
    notice_version: int | None
    at: dt.datetime

    def text_lines(self) -> list[str]:
        verdict = "allowed" if self.allowed else "denied"
        extra = "; re-consent needed" if self.reconsent_needed else ""
        return [f"{self.purpose}: {verdict} ({self.reason.value}{extra})"]


class BatchDecision(_Out):
    """Decisions for many subjects and one purpose, keyed by subject reference."""

    purpose: str
    at: dt.datetime
    reasons: dict[str, Reason]

    def allowed(self, subject: str) -> bool:
        return self.reasons[subject] in ALLOWED_REASONS

    def text_lines(self) -> list[str]:
        return [f"{s}: {r.value}" for s, r in self.reasons.items()]


class Finding(_Out):
    kind: str
    detail: str
    record_id: uuid.UUID | None = None
    checkpoint: int | None = None


class VerifyReport(_Out):
    records: int
    subjects: int
    checkpoints: int
    key_pinned: bool
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_bad_record(self) -> uuid.UUID | None:
        return next((f.record_id for f in self.findings if f.record_id is not None), None)

    def text_lines(self) -> list[str]:
        head = (
            f"verified {self.records} records in {self.subjects} chains and "
            f"{self.checkpoints} checkpoints"
        )
        key = (
            "" if self.key_pinned else " (checkpoint key not pinned: set GOVERN_CONSENT_VERIFY_KEY)"
        )
        if self.ok:
            return [head + ": ok" + key]
        lines = [head + f": {len(self.findings)} finding(s)" + key]
        if self.first_bad_record is not None:
            lines.append(f"first bad record: {self.first_bad_record}")
        lines += [f"  {f.kind}: {f.detail}" for f in self.findings[:50]]
        return lines


class CheckpointOut(_Out):
    id: int
    created_at: dt.datetime
    record_count: int
    head_count: int
    heads_digest: str
    public_key: str

    def text_lines(self) -> list[str]:
        return [
            f"checkpoint {self.id}: {self.head_count} chain head(s) signed, "
            f"{self.record_count} records; public key {self.public_key}"
        ]


class ExportResult(_Out):
    format: str
    records: int
    path: str

    def text_lines(self) -> list[str]:
        return [f"exported {self.records} record(s) as {self.format} to {self.path}"]
