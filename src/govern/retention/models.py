"""Retention bookkeeping tables (core domain): sign-offs, runs, checkpoints, quarantine, alerts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Unicode,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from govern.datamap import governed, not_personal, sealed_copies
from govern.db import CoreBase
from govern.types.utc import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")
SCHEDULER_JOBS_TABLE = "retention_scheduler_jobs"

_POLICY = not_personal("a retention policy's name")
_TABLE = not_personal("the name of a governed table")
_OWNER = {"owner": "team-governance", "steward": "dpo@example.com"}


class PolicyVersion(CoreBase):
    """Each policy version seen by approve or run, by content hash, with its full text."""

    __tablename__ = "retention_policy_versions"
    __table_args__ = {
        "info": governed(
            **_OWNER,
            subject_link=None,
            description="Retention policy versions by content hash, as approved or run.",
        )
    }

    policy_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(
        JSON, info=not_personal("the policy's declaration: tables, columns, durations")
    )
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Approval(CoreBase):
    """Who signed off which version of a policy, and when."""

    __tablename__ = "retention_approvals"
    __table_args__ = (
        Index(None, "policy_name", "content_hash"),
        {
            "info": governed(
                **_OWNER,
                subject_link=None,
                description="Sign-offs of retention policy versions.",
            )
        },
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    policy_name: Mapped[str] = mapped_column(String(64), info=_POLICY)
    content_hash: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str] = mapped_column(String(150))
    note: Mapped[str | None] = mapped_column(
        String(1000), info=not_personal("the approver's remark about the policy")
    )
    approved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Run(CoreBase):
    """One execution of a policy: frozen cutoff, plan, progress checkpoint, outcome."""

    __tablename__ = "retention_runs"
    __table_args__ = (
        Index(None, "policy_name", "started_at"),
        {
            "info": governed(
                **_OWNER,
                subject_link=None,
                description="Retention runs: plan, checkpoint, counts, status, overrides.",
            )
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    policy_name: Mapped[str] = mapped_column(String(64), info=_POLICY)
    content_hash: Mapped[str] = mapped_column(String(64))
    table_name: Mapped[str] = mapped_column(String(64), info=_TABLE)
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    cutoff: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    planned_rows: Mapped[int] = mapped_column(BigInteger)
    processed_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    cascaded_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    batches: Mapped[int] = mapped_column(Integer, default=0)
    last_key: Mapped[str | None] = mapped_column(
        String(200), info=not_personal("a surrogate primary key, JSON-encoded")
    )
    restore_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    triggered_by: Mapped[str] = mapped_column(String(150))
    override_by: Mapped[str | None] = mapped_column(String(150))
    override_reason: Mapped[str | None] = mapped_column(
        String(500), info=not_personal("why an operator overrode a safety limit")
    )
    error: Mapped[str | None] = mapped_column(
        String(500), info=not_personal("an error class and message, never row values")
    )
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class RunBatch(CoreBase):
    """The checkpoint of one committed batch: its key range and row count."""

    __tablename__ = "retention_run_batches"
    __table_args__ = {
        "info": governed(
            **_OWNER,
            subject_link=None,
            description="Committed batches of retention runs (key ranges and counts).",
        )
    }

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("retention_runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    lo_key: Mapped[str | None] = mapped_column(
        String(200), info=not_personal("a surrogate primary key, JSON-encoded")
    )
    hi_key: Mapped[str | None] = mapped_column(
        String(200), info=not_personal("a surrogate primary key, JSON-encoded")
    )
    rows: Mapped[int] = mapped_column(BigInteger)
    committed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QuarantineRow(CoreBase):
    """A row a run removed or anonymised, as JSON of its stored values, until purged.

    Binary values (envelopes, blind indexes) are hex of the stored bytes: still sealed.

    ``expires_at`` ends the restore window (the run's ``restore_until``; not indexed: purge
    finds expired runs first, then their rows by ``run_id``); archived rows
    (``archive_then_delete``) have none and stay until purged explicitly.
    """

    __tablename__ = "retention_quarantine"
    __table_args__ = (
        Index(None, "run_id", "table_name", "batch", "row_key"),
        {
            "info": governed(
                **_OWNER,
                subject_link="subject_id",
                description="Rows removed by retention runs, restorable until the window ends.",
            )
        },
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("retention_runs.id"))
    batch: Mapped[int] = mapped_column(Integer)
    table_name: Mapped[str] = mapped_column(String(64), info=_TABLE)
    row_key: Mapped[str] = mapped_column(
        String(200), info=not_personal("the row's surrogate primary key as text")
    )
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    row: Mapped[Any] = mapped_column(
        JSON,
        info=sealed_copies(
            "user.content.private", "user.behavior", "user.device", source_table="table_name"
        ),
    )
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Alert(CoreBase):
    """An alert raised by retention (breaker tripped, run failed or missed, unusual volume)."""

    __tablename__ = "retention_alerts"
    __table_args__ = {
        "info": governed(
            **_OWNER,
            subject_link=None,
            description="Retention alerts: kind, policy, run and a message without row values.",
        )
    }

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    policy_name: Mapped[str | None] = mapped_column(String(64), info=_POLICY)
    run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    message: Mapped[str] = mapped_column(
        String(500), info=not_personal("counts, limits and names, never row values")
    )
    details: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, info=not_personal("counts and limits")
    )
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Lease(CoreBase):
    """Who runs a policy right now (SQLite; PostgreSQL uses an advisory lock)."""

    __tablename__ = "retention_leases"
    __table_args__ = {
        "info": governed(
            **_OWNER,
            subject_link=None,
            description="Per-policy run leases so that a policy runs once at a time.",
        )
    }

    policy_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SchedulerJob(CoreBase):
    """APScheduler 3's SQLAlchemy job store table, migrated with govern's schema."""

    __tablename__ = SCHEDULER_JOBS_TABLE
    __table_args__ = {
        "info": governed(
            **_OWNER,
            subject_link=None,
            description="APScheduler job store: one pickled job per scheduled policy.",
        )
    }

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(
        LargeBinary, info=not_personal("a pickled job: function reference and policy name")
    )
