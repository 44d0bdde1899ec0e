"""One typed function per CLI command, settings first.

The first line of each docstring is the command's help text. Host services can call
these directly; they return result models and raise :class:`govern.errors.GovernError`.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from govern.config import Settings, env_example
from govern.doctor import DoctorReport, run_doctor
from govern.errors import UsageError
from govern.migrations.schemas import CheckReport, HistoryReport, MigrateResult, StatusReport
from govern.results import TextResult, WrittenFiles
from govern.seeding.schemas import SeedResult

if TYPE_CHECKING:
    import datetime as dt
    import uuid

    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from govern.audit.export import ExportResult as AuditExportResult
    from govern.audit.export import VerifyResult
    from govern.audit.sections import Controller
    from govern.consent.schemas import (
        AppendResult,
        CatalogResult,
        CheckpointOut,
        ConsentDecision,
        ConsentRecordOut,
        ExportResult,
        History,
        NoticeTextOut,
        PurposeList,
        VerifyReport,
    )
    from govern.credentials import PurgeResult, RotateResult
    from govern.credentials import ScanReport as CredentialScanReport
    from govern.crypto.keyring import Keyring
    from govern.dsr import (
        DsrMap,
        ExportOut,
        PlanOut,
        ProcessResult,
        Report,
        RequestDetail,
        RequestList,
        RequestOut,
        SubmitResult,
        WorkCalendar,
        WorkResult,
    )
    from govern.events.schemas import CdcStatusReport, RelayReport, ReplayResult
    from govern.holds import HoldList, HoldOut
    from govern.keys.scan import ScanReport
    from govern.keys.schemas import KeyChange, KeyList, ReencryptResult, RewrapResult
    from govern.keys.service import Progress
    from govern.retention.alerts import AlertChannel
    from govern.retention.policy import PolicySet
    from govern.retention.schemas import (
        AlertList,
        ApprovalOut,
        PlanReport,
        PolicyList,
        PolicyOut,
        PurgeOut,
        RollbackOut,
        RunList,
        RunReport,
        ScheduleOut,
    )
    from govern.seeding import GenerateResult


def _url(settings: Settings) -> str:
    return settings.database_url.get_secret_value()


KeyUse = Literal["none", "required", "if_configured"]


@contextmanager
def _engine(
    settings: Settings, *, keys: KeyUse = "none", create_keys: bool = True
) -> Iterator[Engine]:
    """One command's engine, disposed afterwards; driver errors become one-line DatabaseErrors.

    ``keys`` binds the keyring as a host service does at start-up: ``"required"`` always
    (commands that seal or open protected columns; needs the KEK), ``"if_configured"`` only
    when a KEK is set (commands that work without one until they meet a sealed value).
    ``create_keys=False`` never writes the first data keys (read paths).
    """
    from govern.db import create_engine, describe_db_error, is_driver_error

    engine = create_engine(_url(settings))
    try:
        if keys == "required" or (keys == "if_configured" and settings.has_kek):
            _bind_keys(engine, settings, create=create_keys)
        yield engine
    except Exception as exc:
        if is_driver_error(engine, exc):
            raise describe_db_error(_url(settings), exc) from None
        raise
    finally:
        engine.dispose()


def _bind_keys(engine: Engine, settings: Settings, *, create: bool) -> Keyring:
    from govern.keys import attach, bind_keyring, load_keyring, provider_from_settings

    if create:
        return attach(engine, settings)
    from govern.db import transaction

    with transaction(engine) as session:
        keyring = load_keyring(session, provider_from_settings(settings), create=False)
    return bind_keyring(engine, keyring)


@contextmanager
def _session(
    settings: Settings, *, keys: KeyUse = "none", create_keys: bool = True, write: bool = False
) -> Iterator[Session]:
    """One transaction for one command: committed on success, rolled back on any error.

    ``write`` takes SQLite's write lock first (``BEGIN IMMEDIATE``), as every command that
    changes the database must: they read before they write, and a deferred transaction fails
    its first write at once when a worker or scheduler committed meanwhile. ``keys`` and
    ``create_keys`` are those of :func:`_engine`.
    """
    from govern.db import transaction, write_transaction

    with (
        _engine(settings, keys=keys, create_keys=create_keys) as engine,
        (write_transaction if write else transaction)(engine) as session,
    ):
        yield session


def _parse_uuid(value: str, what: str) -> uuid.UUID:
    """A UUID from user input, or a :class:`UsageError` naming what was expected."""
    import uuid

    from govern.errors import UsageError

    try:
        return uuid.UUID(value)
    except ValueError:
        raise UsageError(f"{what} must be a UUID, got {value[:40]!r}") from None


def migrate_up(
    settings: Settings, domains: Sequence[str] | None = None, to: str | None = None
) -> MigrateResult:
    """Upgrade domains (default: all, in dependency order) to head or to a revision."""
    from govern import migrations

    return migrations.upgrade(_url(settings), domains, to)


def migrate_down(
    settings: Settings, domain: str, to: str | None = None, cascade: bool = False
) -> MigrateResult:
    """Roll back one domain by one revision, or to a revision or base."""
    from govern import migrations

    return migrations.downgrade(_url(settings), domain, to, cascade=cascade)


def migrate_status(settings: Settings) -> StatusReport:
    """Show each domain's current revision, head and pending count."""
    from govern import migrations

    return migrations.status(_url(settings))


def migrate_history(settings: Settings, domain: str | None = None) -> HistoryReport:
    """List the revisions of every domain (or one), marking those applied."""
    from govern import migrations

    return migrations.history(_url(settings), domain)


def migrate_sql(settings: Settings, domains: Sequence[str] | None = None) -> TextResult:
    """Print the SQL of a full upgrade for a DBA to review, without touching the database."""
    from govern import migrations

    return TextResult(text=migrations.offline_sql(_url(settings), domains))


def migrate_check(settings: Settings) -> CheckReport:
    """Find drift, irreversible revisions, split heads and applied files edited since."""
    from govern import migrations

    return migrations.check(_url(settings))


def doctor(settings: Settings) -> DoctorReport:
    """Audit settings, database, migrations and checksums; exit 1 naming each failure."""
    return run_doctor(settings)


def docs_erd(settings: Settings, domain: str | None = None, fmt: str = "mermaid") -> TextResult:
    """Print an entity-relationship diagram (Mermaid or Graphviz dot)."""
    from govern.datamap.docs import erd
    from govern.db import load_models

    return TextResult(text=erd(load_models(), domain, fmt))


def docs_ownership(settings: Settings) -> TextResult:
    """Print the ownership table: owners, stewards and personal-data columns per table."""
    from govern.datamap.docs import ownership
    from govern.db import load_models

    return TextResult(text=ownership(load_models()))


def generated_docs() -> dict[str, str]:
    """``{relative path: content}`` of every generated document committed under docs/."""
    from govern.datamap.docs import erd, ownership
    from govern.db import DOMAINS, load_models

    md = load_models()
    out = {"docs/ownership.md": ownership(md), "docs/erd/all.mmd": erd(md, None, "mermaid")}
    out["docs/erd/all.dot"] = erd(md, None, "dot")
    for d in DOMAINS:
        out[f"docs/erd/{d}.mmd"] = erd(md, d, "mermaid")
    out[".env.example"] = env_example()
    return out


def docs_write(settings: Settings, root: str = ".") -> WrittenFiles:
    """Regenerate the committed ERDs, ownership table and .env.example under a checkout."""
    written = []
    for rel, text in generated_docs().items():
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(rel)
    return WrittenFiles(files=written)


def config_example(settings: Settings | None = None) -> TextResult:
    """Print a .env.example generated from the settings schema."""
    return TextResult(text=env_example())


class ShownSettings(BaseModel):
    database_url: str
    kek: str
    consent_signing_key: str = "(not set)"
    consent_verify_key: str = "(not set)"
    others: dict[str, str] = {}

    def text_lines(self) -> list[str]:
        return [
            f"GOVERN_DATABASE_URL={self.database_url}",
            f"GOVERN_KEK={self.kek}",
            f"GOVERN_CONSENT_SIGNING_KEY={self.consent_signing_key}",
            f"GOVERN_CONSENT_VERIFY_KEY={self.consent_verify_key}",
        ] + [f"{k}={v}" for k, v in self.others.items()]


def _shown(value: object) -> str:
    from pydantic import SecretStr

    if value is None:
        return "(not set)"
    return "(set, hidden)" if isinstance(value, SecretStr) else str(value)


_SHOWN_APART = ("database_url", "kek", "consent_signing_key", "consent_verify_key")


def config_show(settings: Settings) -> ShownSettings:
    """Show the effective settings with every secret hidden."""
    return ShownSettings(
        database_url=settings.url_for_display,
        kek="(set, hidden)" if settings.kek is not None else "(not set)",
        consent_signing_key=(
            "(set, hidden)" if settings.consent_signing_key is not None else "(not set)"
        ),
        consent_verify_key=settings.consent_verify_key or "(not set)",
        others={
            f"GOVERN_{name.upper()}": _shown(getattr(settings, name))
            for name in Settings.model_fields
            if name not in _SHOWN_APART
        },
    )


def keys_generate_kek(settings: Settings | None = None) -> TextResult:
    """Print a new random key-encryption key for GOVERN_KEK (store it in your secret manager)."""
    return TextResult(text=base64.b64encode(secrets.token_bytes(32)).decode())


class QuickstartStep(BaseModel):
    """One step of the quickstart: ``done``, ``skipped`` (with why) or ``failed``."""

    name: str
    status: str
    detail: str


class QuickstartResult(BaseModel):
    database: str
    migrate: MigrateResult
    steps: list[QuickstartStep]
    files: dict[str, str]
    doctor: DoctorReport

    @property
    def ok(self) -> bool:
        return self.doctor.ok and all(s.status != "failed" for s in self.steps)

    def text_lines(self) -> list[str]:
        lines = [f"govern quickstart on {self.database}", "", "migrations:"]
        lines += ["  " + line for line in self.migrate.text_lines()]
        lines += ["", "steps:"]
        lines += [f"  {s.status:<8} {s.name}: {s.detail}" for s in self.steps]
        if self.files:
            lines += ["", "files:"] + [f"  {k}: {v}" for k, v in self.files.items()]
        lines += ["", "doctor:"] + ["  " + line for line in self.doctor.text_lines()]
        return lines


def _local_signing_key(settings: Settings) -> tuple[bytes | None, str]:
    """The audit signing key for the quickstart, and where it came from.

    Production uses GOVERN_AUDIT_SIGNING_KEY. For a local SQLite file only, the quickstart
    creates ``<database>.audit-signing.key`` (mode 0600) next to it once and reuses it, so
    that a first run needs no settings; ``govern audit export`` itself never does this.
    """
    import os

    if settings.audit_signing_key is not None:
        return base64.b64decode(settings.audit_signing_key.get_secret_value()), "setting"
    db = _sqlite_path(settings)
    if db is None:
        return None, "GOVERN_AUDIT_SIGNING_KEY is not set"
    key_file = db.with_name(db.name + ".audit-signing.key")
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    raw = base64.b64decode(key_file.read_text().strip())
    return raw, str(key_file)


def _sqlite_path(settings: Settings) -> Path | None:
    from sqlalchemy.engine import make_url

    url = make_url(_url(settings))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


QUICKSTART_REQUESTS = (("access", "alan"), ("erasure", "linus"))
"""The quickstart's data-subject requests: (type, demo subject's seed key)."""


def _quickstart_requests(settings: Settings, files: dict[str, str]) -> list[QuickstartStep]:
    """Submit, verify, approve and process an access and an erasure request for demo subjects.

    Verification and approval happen in-process (``verified=True``, as for a request from an
    authenticated session); processing runs the same checkpointed steps as ``govern dsr work``.
    """
    from govern import dsr
    from govern.db import write_transaction
    from govern.seeding import seed_id

    out_dir = Path(settings.dsr_export_dir).resolve()
    steps: list[QuickstartStep] = []
    with _engine(settings, keys="required") as engine:
        submitted: list[tuple[str, uuid.UUID]] = []
        with write_transaction(engine) as session:
            for kind, who in QUICKSTART_REQUESTS:
                out = dsr.submit(
                    session,
                    type=kind,
                    identifiers={"subject_id": str(seed_id("core", "subjects", who))},
                    calendar=_calendar(settings),
                    actor="quickstart",
                    channel="quickstart",
                    verified=True,
                )
                dsr.approve(session, out.request.id, actor="quickstart", reason="quickstart demo")
                submitted.append((kind, out.request.id))
        for kind, rid in submitted:
            result = dsr.process_request(engine, rid, export_dir=out_dir, worker="quickstart")
            detail = f"request {rid} {result.state}, {result.steps_run} step(s)"
            if result.exceptions:
                detail += f", {len(result.exceptions)} legal exception(s) recorded"
            if result.export_path:
                files[f"{kind} package"] = result.export_path
                detail += ", package written"
            steps.append(
                QuickstartStep(
                    name=f"process {kind} request",
                    status="done" if result.ok else "failed",
                    detail=detail,
                )
            )
    return steps


def _local_kek(settings: Settings) -> tuple[Settings, str | None]:
    """Settings with a KEK for the quickstart, and the key file it created or reused.

    Without GOVERN_KEK or GOVERN_KEK_FILE, and only for a local SQLite file, the quickstart
    keeps a KEK in ``<database>.kek`` (mode 0600) next to it, like the signing key; any
    other command still refuses to run without a configured KEK.
    """
    import os

    db = _sqlite_path(settings)
    if settings.has_kek or db is None:
        return settings, None
    key_file = db.with_name(db.name + ".kek")
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    return settings.model_copy(update={"kek_file": key_file}), str(key_file)


def _quickstart_retention_plan(settings: Settings) -> QuickstartStep:
    """Simulate every retention policy: the same selection a run uses; changes nothing."""
    from govern.retention import load_policies
    from govern.retention import service as retention_service

    policies = load_policies(settings.retention_policies)
    with _session(settings, keys="required") as session:
        plans = retention_service.plan(session, policies)
    rows = sum(p.rows + p.cascaded_rows for p in plans)
    approved = sum(1 for p in plans if p.approved)
    return QuickstartStep(
        name="simulate retention",
        status="done",
        detail=f"{len(plans)} polic(ies), {approved} approved: {rows} row(s) would be "
        "removed or anonymised now (nothing changed; `govern retention plan`)",
    )


def quickstart(settings: Settings) -> QuickstartResult:
    """Migrate, seed the demo, export and verify a signed audit bundle; print what was done."""
    from govern.audit.export import export_bundle, verify

    migrated = migrate_up(settings)
    steps = [QuickstartStep(name="migrate", status="done", detail="every domain at head")]
    files: dict[str, str] = {"database": settings.url_for_display}
    settings, kek_file = _local_kek(settings)
    if kek_file is not None:
        files["key-encryption key"] = f"{kek_file} (local development only)"
    seeded = seed(settings, None, "demo")
    steps.append(
        QuickstartStep(
            name="seed demo environment",
            status="done",
            detail=f"{seeded.changes} change(s) across {len(seeded.tables)} tables",
        )
    )
    recorded = next((t for t in seeded.tables if t.table == "consent records"), None)
    if recorded is not None:
        steps.append(
            QuickstartStep(
                name="record consents",
                status="done",
                detail=f"{recorded.inserted} new decision(s) in the consent ledger "
                f"({recorded.unchanged} already there), through govern.consent",
            )
        )
    steps += _quickstart_requests(settings, files)
    steps.append(_quickstart_retention_plan(settings))
    key, source = _local_signing_key(settings)
    if key is None:
        steps.append(QuickstartStep(name="export audit bundle", status="skipped", detail=source))
    else:
        db = _sqlite_path(settings)
        out = (db.parent if db else Path.cwd()) / "govern-audit.zip"
        with _session(settings, keys="required") as session:
            result = export_bundle(
                session,
                out,
                signing_key=key,
                controller=_controller(settings),
                retention_policies=settings.retention_policies,
            )
        files["audit bundle"] = str(out)
        files["report"] = f"{out} (report.html inside)"
        if source != "setting":
            files["audit signing key"] = f"{source} (local development only)"
        steps.append(
            QuickstartStep(
                name="export audit bundle",
                status="done",
                detail=f"{result.files} files, signed by key {result.key_id}",
            )
        )
        checked = verify(out, result.public_key)
        steps.append(
            QuickstartStep(
                name="verify audit bundle",
                status="done" if checked.ok else "failed",
                detail=f"{checked.files_checked} files match, signature ok"
                if checked.ok
                else "; ".join(checked.text_lines()),
            )
        )
    return QuickstartResult(
        database=settings.url_for_display,
        migrate=migrated,
        steps=steps,
        files=files,
        doctor=run_doctor(settings),
    )


# Keys and encryption (issue 3) ----------------------------------------------------------
def keys_list(settings: Settings) -> KeyList:
    """List data keys with their state and age (never their material)."""
    from govern.db import transaction
    from govern.keys import list_keys
    from govern.keys.schemas import KeyList

    with _engine(settings) as engine, transaction(engine) as session:
        return KeyList(keys=list_keys(session))


def keys_rotate(settings: Settings) -> KeyChange:
    """Create a new primary data key; new writes use it, old values stay readable."""
    from govern.db import write_transaction
    from govern.keys import rotate
    from govern.keys.schemas import KeyChange

    with _engine(settings) as engine:
        keyring = _bind_keys(engine, settings, create=True)
        with write_transaction(engine) as session:
            return KeyChange(action="rotated to", key=rotate(session, keyring))


def keys_reencrypt(
    settings: Settings,
    batch_size: int = 1000,
    progress: Progress | None = None,
    pause: float = 0.0,
) -> ReencryptResult:
    """Re-seal values under old data keys with the primary, in resumable batches."""
    from govern.keys import reencrypt
    from govern.keys.service import check_reencrypt_args

    check_reencrypt_args(batch_size, pause)  # before anything is opened or created
    with _engine(settings) as engine:
        keyring = _bind_keys(engine, settings, create=True)
        return reencrypt(engine, keyring, batch_size=batch_size, progress=progress, pause=pause)


def keys_retire(settings: Settings, key_id: int) -> KeyChange:
    """Retire a data key and destroy its material; refused while any value uses it."""
    from govern.keys import retire
    from govern.keys.schemas import KeyChange

    with _session(settings, keys="required", write=True) as session:
        return KeyChange(action="retired", key=retire(session, key_id))


def keys_rewrap(settings: Settings) -> RewrapResult:
    """Rewrap every key under GOVERN_KEK (old KEK in GOVERN_KEK_PREVIOUS); data untouched."""
    from govern.db import write_transaction
    from govern.keys import load_keyring, provider_from_settings, rewrap
    from govern.keys.schemas import RewrapResult

    with _engine(settings) as engine, write_transaction(engine) as session:
        keyring = load_keyring(session, provider_from_settings(settings), create=False)
        counts = rewrap(session, keyring)
        return RewrapResult(kek_fingerprint=keyring.kek_fingerprint, **counts)


def scan_encryption(settings: Settings, sample: int = 200) -> ScanReport:
    """Check every personal column is protected and stored values are envelopes or tokens."""
    from govern.db import transaction
    from govern.keys import bind_keyring, load_keyring, provider_from_settings
    from govern.keys import scan_encryption as scan

    if sample < 0:
        raise UsageError("--sample must be 0 or more")
    with _engine(settings) as engine:
        keyring = None
        if settings.has_kek and _has_key_tables(engine):
            with transaction(engine) as session:
                keyring = load_keyring(session, provider_from_settings(settings), create=False)
            bind_keyring(engine, keyring)
        return scan(engine, keyring, sample=sample)


def _has_key_tables(engine: Engine) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(engine).has_table("data_keys"))


def hold_add(
    settings: Settings, subjects: Sequence[str], reason: str, by: str, case: str | None = None
) -> HoldOut:
    """Place a legal hold on one or more subjects: their data is never erased or purged."""
    from govern import holds

    ids = [_parse_uuid(s, "--subject") for s in subjects]
    with _session(settings, write=True) as session:
        return holds.add_hold(session, subject_ids=ids, reason=reason, actor=by, case_ref=case)


def hold_release(settings: Settings, hold_id: str, by: str, note: str | None = None) -> HoldOut:
    """Release a legal hold."""
    from govern import holds

    hid = _parse_uuid(hold_id, "HOLD_ID")
    with _session(settings, write=True) as session:
        return holds.release_hold(session, hid, actor=by, note=note)


def hold_list(settings: Settings, all_: bool = False, subject: str | None = None) -> HoldList:
    """List legal holds (active ones unless --all)."""
    from govern import holds

    sid = _parse_uuid(subject, "--subject") if subject else None
    with _session(settings) as session:
        return holds.HoldList(holds=holds.list_holds(session, active_only=not all_, subject_id=sid))


# --- seeds, credentials and the audit bundle (issue 8) --------------------------------


def seed(
    settings: Settings,
    domains: Sequence[str] | None = None,
    env: str = "demo",
    scale: int | None = None,
) -> SeedResult:
    """Load the seed fixtures of an environment (idempotent: a second run changes nothing)."""
    from govern import seeding

    password = settings.seed_password.get_secret_value() if settings.seed_password else None
    plan = seeding.load_plan(env, domains)  # a broken fixture fails before any connection
    with _session(settings, keys="required", write=True) as session:
        result = seeding.apply_plan(session, plan, seed_password=password)
        if scale:
            result.generated = seeding.generate_events(session, scale)
    return result


def seed_generate_events(
    settings: Settings, count: int, seed: int = 0, days: int = 90
) -> GenerateResult:
    """Generate COUNT realistic analytics events for the seeded subjects, set-based."""
    from govern import seeding

    with _session(settings, keys="required", write=True) as session:
        return seeding.generate_events(session, count, seed=seed, days=days)


def credentials_scan(settings: Settings) -> CredentialScanReport:
    """Find accounts with a legacy demo password or an outdated hash scheme; exit 1 if any."""
    from govern import credentials

    with _session(settings, keys="required") as session:
        return credentials.scan(session)


def credentials_purge_demo(
    settings: Settings, by: str, include_outdated: bool = False
) -> PurgeResult:
    """Invalidate accounts with demo passwords: new unknown hash, forced reset, audit entry."""
    from govern import credentials

    with _session(settings, keys="required", write=True) as session:
        return credentials.purge_demo(session, actor=by, include_outdated=include_outdated)


def credentials_rotate(
    settings: Settings, by: str, accounts: Sequence[str] | None = None
) -> RotateResult:
    """Give service accounts new random passwords and print them, once."""
    from govern import credentials

    with _session(settings, keys="required", write=True) as session:
        return credentials.rotate(session, actor=by, usernames=accounts)


def _controller(settings: Settings) -> Controller:
    from govern.audit.sections import Controller

    return Controller(
        name=settings.controller_name,
        contact=settings.controller_contact,
        dpo=settings.dpo_contact,
    )


def _parse_when(value: str | None, what: str, end_of_day: bool) -> dt.datetime | None:
    import datetime as dt_

    from govern.errors import UsageError

    if value is None:
        return None
    try:
        if len(value) == 10:
            day = dt_.date.fromisoformat(value)
            start = dt_.datetime.combine(day, dt_.time(), dt_.UTC)
            return start + dt_.timedelta(days=1, microseconds=-1) if end_of_day else start
        stamp = dt_.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{what} must be a date (2025-01-31) or an ISO date-time") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt_.UTC)


def audit_export(
    settings: Settings, out: str, date_from: str | None = None, date_to: str | None = None
) -> AuditExportResult:
    """Write the signed audit bundle (records, registers, evidence, SBOM, report.html)."""
    from govern.audit.export import export_bundle
    from govern.errors import ConfigError

    if settings.audit_signing_key is None:
        raise ConfigError(
            "GOVERN_AUDIT_SIGNING_KEY is not set: generate one with `govern audit keygen`"
        )
    key = base64.b64decode(settings.audit_signing_key.get_secret_value())
    start = _parse_when(date_from, "--from", end_of_day=False)
    end = _parse_when(date_to, "--to", end_of_day=True)
    with _session(settings, keys="required") as session:
        return export_bundle(
            session,
            Path(out),
            signing_key=key,
            controller=_controller(settings),
            period_from=start,
            period_to=end,
            consent_verify_key=_consent_verify_key(settings),
            retention_policies=settings.retention_policies,
        )


def _consent_verify_key(settings: Settings) -> str | None:
    """The public key consent checkpoints must carry: pinned, or that of the signing key."""
    from govern.consent import public_key_of

    if settings.consent_verify_key is not None:
        return settings.consent_verify_key
    if settings.consent_signing_key is not None:
        return public_key_of(settings.consent_signing_key_bytes())
    return None


def audit_verify(settings: Settings, path: str, public_key: str | None = None) -> VerifyResult:
    """Check a bundle's signature and every file's hash; exit 1 naming any altered file."""
    import binascii

    from govern.audit.bundle import public_key_b64
    from govern.audit.export import verify
    from govern.errors import UsageError

    if public_key is not None:
        try:
            ok = len(base64.b64decode(public_key, validate=True)) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise UsageError("--public-key must be base64 of a 32-byte Ed25519 public key")
    elif settings.audit_signing_key is not None:
        public_key = public_key_b64(base64.b64decode(settings.audit_signing_key.get_secret_value()))
    if not Path(path).is_file():
        raise UsageError(f"no such file: {path}")
    return verify(Path(path), public_key)


class SigningKey(BaseModel):
    """A new audit signing key pair: the private half goes to GOVERN_AUDIT_SIGNING_KEY."""

    private_key: str
    public_key: str

    def text_lines(self) -> list[str]:
        return [
            f"GOVERN_AUDIT_SIGNING_KEY={self.private_key}",
            f"public key (give it to auditors for --public-key): {self.public_key}",
        ]


def audit_keygen(settings: Settings | None = None) -> SigningKey:
    """Print a new Ed25519 audit signing key and its public key (store the private one safely)."""
    from govern.audit.bundle import public_key_b64

    seed_bytes = secrets.token_bytes(32)
    return SigningKey(
        private_key=base64.b64encode(seed_bytes).decode(), public_key=public_key_b64(seed_bytes)
    )


# --- events: govern cdc relay | status | replay ------------------------------------------


def cdc_relay(
    settings: Settings,
    sink: str | None = None,
    follow: bool = False,
    batch_size: int = 1000,
    lease_seconds: float = 30.0,
    poll_interval: float = 1.0,
) -> RelayReport:
    """Deliver the event outbox to the configured sinks, in order, at least once."""
    from govern.db import create_engine
    from govern.events.relay import relay
    from govern.events.sinks import load_sinks

    sinks = load_sinks(settings.sinks_file)
    engine = create_engine(_url(settings))
    try:
        return relay(
            engine,
            sinks,
            sink=sink,
            follow=follow,
            batch_size=batch_size,
            lease_seconds=lease_seconds,
            poll_interval=poll_interval,
        )
    finally:
        engine.dispose()


def cdc_status(settings: Settings) -> CdcStatusReport:
    """Show each sink's position, backlog and last error."""
    from govern.events.relay import status
    from govern.events.sinks import load_sinks

    sinks = load_sinks(settings.sinks_file)
    with _session(settings) as session:
        return status(session, sinks)


def cdc_replay(settings: Settings, sink: str, from_id: int) -> ReplayResult:
    """Rewind a sink so that the next relay delivers again every event from an outbox id on."""
    from govern.events.relay import replay
    from govern.events.sinks import load_sinks

    sinks = load_sinks(settings.sinks_file)
    with _session(settings, write=True) as session:
        return replay(session, sinks, sink, from_id)


# ----------------------------------------------------------------------------- consent ledger


def _timestamp(value: str | None, name: str) -> dt.datetime | None:
    from govern.errors import InvalidTimestampError

    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidTimestampError(f"{name} is not an ISO-8601 timestamp") from None


def _verify_key(settings: Settings) -> str | None:
    if settings.consent_verify_key is not None:
        return settings.consent_verify_key
    if settings.consent_signing_key is not None:
        from govern.consent import public_key_of

        return public_key_of(settings.consent_signing_key_bytes())
    return None


def consent_load(settings: Settings, path: str) -> CatalogResult:
    """Load notices (with versions and localised texts) and purposes from a TOML or JSON file."""
    import json
    import tomllib

    from pydantic import ValidationError

    from govern import consent
    from govern.errors import ConsentError, UsageError

    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode()) if file.suffix == ".toml" else json.loads(raw)
        catalog = consent.Catalog.model_validate(data)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise ConsentError(f"{path}: {where}: {first['msg']}") from None
        raise ConsentError(f"{path} is not valid {file.suffix.lstrip('.') or 'JSON'}") from None
    with _session(settings, keys="if_configured", create_keys=False, write=True) as session:
        return consent.load_catalog(session, catalog)


def consent_purposes(settings: Settings) -> PurposeList:
    """List the purposes: legal basis, notice and current notice version."""
    from govern import consent
    from govern.consent.schemas import PurposeList

    with _session(settings, keys="if_configured", create_keys=False) as session:
        return PurposeList(purposes=consent.list_purposes(session))


def consent_notice(
    settings: Settings, notice: str, locale: str | None = None, version: int | None = None
) -> NoticeTextOut:
    """Show a notice's text in a locale, following the fallback chain (fr-CA, fr, default)."""
    from govern import consent

    with _session(settings, keys="if_configured", create_keys=False) as session:
        return consent.notice_text(session, notice, locale, version)


def _consent_record(
    settings: Settings,
    event: str,
    subject: str,
    purpose: str,
    *,
    notice_version: int | None = None,
    locale: str | None = None,
    method: str = "api",
    jurisdiction: str | None = None,
    at: str | None = None,
    expires: str | None = None,
    tcf: str | None = None,
    idempotency_key: str | None = None,
    subject_id: str | None = None,
    source_ip: str | None = None,
    user_agent: str | None = None,
) -> ConsentRecordOut:
    """Append one consent decision (given, refused, withdrawn, revoked) to the ledger."""
    from govern import consent
    from govern.consent.service import consent_in

    item = consent_in(
        subject=subject,
        purpose=purpose,
        event=event,
        notice_version=notice_version,
        locale=locale,
        method=method,
        jurisdiction=jurisdiction,
        occurred_at=_timestamp(at, "--at"),
        expires_at=_timestamp(expires, "--expires"),
        tcf_string=tcf,
        idempotency_key=idempotency_key,
        subject_id=subject_id,
        source_ip=source_ip,
        user_agent=user_agent,
    )
    with _session(settings, keys="if_configured", create_keys=False, write=True) as session:
        return consent.append(session, item)


def consent_grant(settings: Settings, subject: str, purpose: str, **kw: Any) -> ConsentRecordOut:
    """Record that a subject gave consent for a purpose."""
    return _consent_record(settings, "given", subject, purpose, **kw)


def consent_withdraw(settings: Settings, subject: str, purpose: str, **kw: Any) -> ConsentRecordOut:
    """Record that a subject withdrew consent for a purpose."""
    return _consent_record(settings, "withdrawn", subject, purpose, **kw)


def consent_gpc(
    settings: Settings, subject: str, jurisdiction: str | None = None, at: str | None = None
) -> AppendResult:
    """Record a Global Privacy Control signal: an objection to every sale/sharing purpose."""
    from govern import consent
    from govern.consent.schemas import AppendResult

    with _session(settings, keys="if_configured", create_keys=False, write=True) as session:
        records = consent.record_gpc(
            session, subject, jurisdiction=jurisdiction, occurred_at=_timestamp(at, "--at")
        )
        return AppendResult(records=records)


def consent_check(
    settings: Settings, subject: str, purpose: str, at: str | None = None
) -> ConsentDecision:
    """Answer whether a subject's data may be processed for a purpose now (or --at a moment)."""
    from govern import consent

    with _session(settings, keys="if_configured", create_keys=False) as session:
        return consent.check(session, subject, purpose, _timestamp(at, "--at"))


def consent_history(settings: Settings, subject: str, purpose: str | None = None) -> History:
    """List a subject's consent records in chain order."""
    from govern import consent
    from govern.consent.schemas import History

    with _session(settings, keys="if_configured", create_keys=False) as session:
        return History(records=consent.history(session, subject, purpose))


def consent_expire(settings: Settings) -> AppendResult:
    """Append an expired record for every given consent whose validity has run out."""
    from govern import consent
    from govern.consent.schemas import AppendResult

    with _session(settings, keys="if_configured", create_keys=False, write=True) as session:
        return AppendResult(records=consent.expire_due(session))


def consent_checkpoint(settings: Settings) -> CheckpointOut:
    """Sign the consent chains' heads with GOVERN_CONSENT_SIGNING_KEY (run periodically)."""
    from govern import consent

    key = settings.consent_signing_key_bytes()
    with _session(settings, keys="if_configured", create_keys=False, write=True) as session:
        return consent.create_checkpoint(session, key)


def consent_verify(settings: Settings) -> VerifyReport:
    """Recompute every hash, link, chain head, projection row and checkpoint; exit 1 on findings."""
    from govern import consent

    with _session(settings, keys="if_configured", create_keys=False) as session:
        return consent.verify(session, _verify_key(settings))


def consent_export(
    settings: Settings,
    fmt: str,
    output: str,
    subject: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> ExportResult:
    """Write Kantara v1.1 receipts, ISO/IEC TS 27560 JSON lines or CSV, streamed to a file."""
    from govern.consent.receipts import FORMATS, export_lines
    from govern.consent.schemas import ExportResult
    from govern.errors import UsageError

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    start, end = _timestamp(since, "--since"), _timestamp(until, "--until")
    for name, value in (("--since", start), ("--until", end)):
        if value is not None and value.tzinfo is None:
            from govern.errors import InvalidTimestampError

            raise InvalidTimestampError(f"{name} has no timezone")
    count = 0
    try:
        with (
            _session(settings, keys="if_configured", create_keys=False) as session,
            open(output, "w", encoding="utf-8") as out,
        ):
            for line in export_lines(session, fmt, subject=subject, since=start, until=end):  # type: ignore[arg-type]
                out.write(line)
                count += 1
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    return ExportResult(format=fmt, records=count - (1 if fmt == "csv" else 0), path=output)


def keys_generate_consent_key(settings: Settings | None = None) -> TextResult:
    """Print a new Ed25519 signing key for GOVERN_CONSENT_SIGNING_KEY and its public key."""
    from govern.consent import public_key_of

    seed = secrets.token_bytes(32)
    return TextResult(
        text=f"GOVERN_CONSENT_SIGNING_KEY={base64.b64encode(seed).decode()}\n"
        f"GOVERN_CONSENT_VERIFY_KEY={public_key_of(seed)}"
    )


# --- data-subject requests (govern dsr ...) ---------------------------------------------


def _calendar(settings: Settings) -> WorkCalendar:
    from govern.dsr import WorkCalendar, parse_holidays

    return WorkCalendar(settings.dsr_timezone, parse_holidays(settings.dsr_holidays))


def _parse_corrections(items: Sequence[str]) -> dict[str, object]:
    """``table.column=value`` pairs; a value of JSON (object, list, null) is parsed as JSON."""
    import json

    from govern.errors import RectificationError

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise RectificationError("a correction must look like table.column=value")
        parsed: object = value
        if value[:1] in ("{", "[") or value == "null":
            try:
                parsed = json.loads(value)
            except ValueError:
                raise RectificationError(f"{key.strip()} is not valid JSON") from None
        out[key.strip()] = parsed
    return out


def _write_code(path: str, code: str) -> None:
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(code + "\n")


def dsr_submit(
    settings: Settings,
    type: str,
    by: str,
    email: str | None = None,
    subject: str | None = None,
    external_ref: str | None = None,
    jurisdiction: str = "gdpr",
    channel: str = "web",
    corrections: Sequence[str] = (),
    verified: bool = False,
    code_out: str | None = None,
    purposes: Sequence[str] = (),
) -> SubmitResult:
    """Record a data-subject request and issue its verification code (to --code-out)."""
    from govern import dsr
    from govern.errors import UsageError

    if not verified and code_out is None:
        raise UsageError("give --code-out FILE to receive the verification code, or --verified")
    ids = {"email": email or "", "subject_id": subject or "", "external_ref": external_ref or ""}
    with _session(settings, keys="if_configured", write=True) as session:
        result = dsr.submit(
            session,
            type=type,
            identifiers=ids,
            calendar=_calendar(settings),
            actor=by,
            jurisdiction=jurisdiction,
            channel=channel,
            corrections=_parse_corrections(corrections) if corrections else None,
            verified=verified,
            purposes=purposes or None,
        )
        if result.verification_code is not None and code_out is not None:
            _write_code(code_out, result.verification_code.get_secret_value())
    return result


def dsr_verify(
    settings: Settings,
    request_id: str,
    by: str,
    code: str | None = None,
    resend_to: str | None = None,
) -> RequestOut:
    """Check a request's one-time code (attempts are counted), or issue a new one."""
    from govern import dsr
    from govern.errors import UsageError, VerificationError

    rid = _parse_uuid(request_id, "REQUEST_ID")
    if (code is None) == (resend_to is None):
        raise UsageError("give either --code CODE or --resend-to FILE")
    failure: VerificationError | None = None
    with _session(settings, keys="if_configured", write=True) as session:
        if resend_to is not None:
            new = dsr.resend_code(session, rid, actor=by)
            _write_code(resend_to, new.get_secret_value())
            return dsr.show(session, rid).request
        try:
            return dsr.verify(session, rid, code or "", actor=by)
        except VerificationError as exc:
            failure = exc  # commit the counted attempt, then report
    raise failure


def dsr_list(
    settings: Settings,
    state: str | None = None,
    type: str | None = None,
    due_within: int | None = None,
    overdue: bool = False,
) -> RequestList:
    """List requests by deadline; --due-within N days, --overdue, --state, --type."""
    import datetime as dt

    from govern import dsr
    from govern.errors import UsageError

    if state is not None and state not in dsr.STATES:
        raise UsageError(f"unknown state {state!r}; states: {', '.join(dsr.STATES)}")
    if due_within is not None and due_within < 0:
        raise UsageError("--due-within needs a number of days >= 0")
    within = dt.timedelta(days=due_within) if due_within is not None else None
    with _session(settings, keys="if_configured") as session:
        return dsr.RequestList(
            requests=dsr.list_requests(
                session, state=state, type=type, due_within=within, overdue=overdue
            )
        )


def dsr_show(settings: Settings, request_id: str) -> RequestDetail:
    """Show a request: state, deadline, transitions and steps (never identifier values)."""
    from govern import dsr

    with _session(settings, keys="if_configured") as session:
        return dsr.show(session, _parse_uuid(request_id, "REQUEST_ID"))


def dsr_approve(
    settings: Settings, request_id: str, by: str, reason: str | None = None
) -> RequestOut:
    """Approve a verified request (or retry a failed one) for processing."""
    from govern import dsr

    with _session(settings, keys="if_configured", write=True) as session:
        return dsr.approve(session, _parse_uuid(request_id, "REQUEST_ID"), actor=by, reason=reason)


def dsr_confirm(
    settings: Settings, request_id: str, step: int, by: str, note: str | None = None
) -> RequestOut:
    """Confirm that the manual step a request awaits was done; the request is queued again."""
    from govern import dsr

    with _session(settings, keys="if_configured", write=True) as session:
        return dsr.confirm_manual_step(
            session, _parse_uuid(request_id, "REQUEST_ID"), seq=step, actor=by, note=note
        )


def dsr_deny(settings: Settings, request_id: str, by: str, reason: str) -> RequestOut:
    """Reject a request with a recorded reason."""
    from govern import dsr

    with _session(settings, keys="if_configured", write=True) as session:
        return dsr.deny(session, _parse_uuid(request_id, "REQUEST_ID"), actor=by, reason=reason)


def dsr_extend(settings: Settings, request_id: str, by: str, reason: str) -> RequestOut:
    """Extend a deadline once (GDPR to three months, CCPA by 45 days) before it passes."""
    from govern import dsr

    with _session(settings, keys="if_configured", write=True) as session:
        return dsr.extend(
            session,
            _parse_uuid(request_id, "REQUEST_ID"),
            reason=reason,
            actor=by,
            calendar=_calendar(settings),
        )


def dsr_plan(settings: Settings, request_id: str) -> PlanOut:
    """Show what processing a request reads and changes, without changing anything."""
    from govern import dsr

    with _session(settings, keys="if_configured") as session:
        return dsr.plan(session, _parse_uuid(request_id, "REQUEST_ID"))


def _rows_per_transaction(settings: Settings, given: int | None) -> int:
    if given is None:
        return settings.dsr_rows_per_transaction
    if given < 0:
        raise UsageError("--rows-per-transaction must be 0 or more")
    return given


def dsr_process(
    settings: Settings,
    request_id: str,
    worker: str | None = None,
    rows_per_transaction: int | None = None,
) -> ProcessResult:
    """Process one approved request now, step by step (resumes an interrupted one)."""
    from govern import dsr

    rid = _parse_uuid(request_id, "REQUEST_ID")
    budget = _rows_per_transaction(settings, rows_per_transaction)
    out = Path(settings.dsr_export_dir)
    with _engine(settings, keys="if_configured") as engine:
        return dsr.process_request(
            engine, rid, export_dir=out, worker=worker, rows_per_transaction=budget
        )


def dsr_work(
    settings: Settings,
    once: bool = False,
    worker: str | None = None,
    limit: int | None = None,
    rows_per_transaction: int | None = None,
) -> WorkResult:
    """Claim and process approved requests; --once stops when the queue is empty."""
    from govern import dsr

    budget = _rows_per_transaction(settings, rows_per_transaction)
    out = Path(settings.dsr_export_dir)
    with _engine(settings, keys="if_configured") as engine:
        return dsr.work(
            engine,
            export_dir=out,
            worker=worker,
            once=once,
            max_requests=limit,
            rows_per_transaction=budget,
        )


def dsr_export(settings: Settings, request_id: str, out: str | None = None) -> ExportOut:
    """Show (and with --out copy) the checked package of a completed access request."""
    from govern import dsr

    rid = _parse_uuid(request_id, "REQUEST_ID")
    with _session(settings, keys="if_configured") as session:
        return dsr.export_package(session, rid, out=Path(out) if out else None)


def dsr_report(settings: Settings, days: int | None = None) -> Report:
    """Report counts, on-time rate and median handling time (last N days, or all)."""
    import datetime as dt

    from govern import dsr
    from govern.types.utc import utcnow

    since = utcnow() - dt.timedelta(days=days) if days is not None else None
    with _session(settings, keys="if_configured") as session:
        return dsr.report(session, since=since)


def dsr_map(settings: Settings) -> DsrMap:
    """Print the data map: each table's action per right, legal exceptions, manual locations."""
    from govern import dsr

    return dsr.dsr_map()


# --- retention: govern retention plan | run | approve | docs | rollback | ... ----------------


def _policies(settings: Settings, path: str | None) -> PolicySet:
    from govern.retention import load_policies

    return load_policies(path or settings.retention_policies)


def _channels(settings: Settings) -> list[AlertChannel]:
    from govern.retention.alerts import default_channels

    return default_channels(settings.alert_webhook_url)


def retention_list(settings: Settings, policies: str | None = None) -> PolicyList:
    """List retention policies with their version hash, approval and last run."""
    from govern.retention import service
    from govern.retention.schemas import PolicyList

    ps = _policies(settings, policies)
    with _session(settings) as session:
        return PolicyList(
            source=ps.source, policies=[service.policy_out(session, p) for p in ps.policies]
        )


def retention_show(settings: Settings, name: str, policies: str | None = None) -> PolicyOut:
    """Show one retention policy: its declaration, version hash and approval."""
    from govern.retention import service

    ps = _policies(settings, policies)
    with _session(settings) as session:
        return service.policy_out(session, ps.get(name))


def retention_plan(
    settings: Settings, policy: str | None = None, policies: str | None = None
) -> PlanReport:
    """Simulate retention: rows each policy would touch, exclusions and tripped limits."""
    from govern.retention import service
    from govern.retention.schemas import PlanReport

    ps = _policies(settings, policies)
    with _session(settings) as session:
        return PlanReport(policies=service.plan(session, ps, policy))


def retention_approve(
    settings: Settings, policy: str, by: str, note: str | None = None, policies: str | None = None
) -> ApprovalOut:
    """Sign off the current version of a retention policy so that it may run."""
    from govern.retention import service

    ps = _policies(settings, policies)
    with _session(settings, write=True) as session:
        return service.approve(session, ps.get(policy), by=by, note=note)


def retention_run(
    settings: Settings,
    policy: str | None = None,
    by: str = "cli",
    override: str | None = None,
    override_by: str | None = None,
    policies: str | None = None,
    show_progress: bool = False,
) -> RunReport:
    """Run (or resume) approved retention policies in batches; exit 1 if any did not complete."""
    from sqlalchemy.exc import DBAPIError

    from govern.db import create_engine, describe_db_error
    from govern.retention import service
    from govern.retention.runner import execute_run
    from govern.retention.schemas import RunReport

    ps = _policies(settings, policies)
    chosen = ps.select(policy)
    if bool(override) != bool(override_by):
        from govern.errors import UsageError

        raise UsageError("an override needs both --override REASON and --override-by NAME")
    engine = create_engine(_url(settings))
    outs = []
    try:
        if policy is None:
            with _session(settings) as session:
                chosen = [p for p in chosen if service.is_approved(session, p)]
        for p in chosen:
            with _progress(show_progress, p.name) as progress:
                outs.append(
                    execute_run(
                        engine,
                        p,
                        actor=by,
                        channels=_channels(settings),
                        override_by=override_by,
                        override_reason=override,
                        progress=progress,
                    )
                )
    except DBAPIError as exc:
        raise describe_db_error(_url(settings), exc) from None
    finally:
        engine.dispose()
    return RunReport(runs=outs)


@contextmanager
def _progress(show: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on a terminal (stderr); nothing when piped or with --json."""
    if not show:
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def retention_runs(settings: Settings, policy: str | None = None, limit: int = 20) -> RunList:
    """List recent retention runs (newest first)."""
    from govern.retention import service
    from govern.retention.schemas import RunList

    with _session(settings) as session:
        return RunList(runs=service.list_runs(session, policy=policy, limit=limit))


def retention_rollback(settings: Settings, run_id: str, by: str) -> RollbackOut:
    """Restore a run's quarantined rows (inside its restore window), with compensating events."""
    from govern.retention import service

    rid = _parse_uuid(run_id, "RUN_ID")
    with _session(settings, write=True) as session:
        return service.rollback(session, rid, actor=by)


def retention_purge_quarantine(
    settings: Settings, by: str = "cli", run_id: str | None = None
) -> PurgeOut:
    """Delete quarantined rows past their restore window (or one run's, with --run)."""
    from govern.retention import service

    rid = _parse_uuid(run_id, "--run") if run_id else None
    with _session(settings, write=True) as session:
        return service.purge_quarantine(session, actor=by, run_id=rid)


def retention_docs(
    settings: Settings, output: str | None = None, policies: str | None = None
) -> TextResult | WrittenFiles:
    """Write the retention register (Markdown: what, why, how long, owner, approval)."""
    from govern.retention import service

    ps = _policies(settings, policies)
    with _session(settings) as session:
        doc = service.register_markdown(session, ps)
    if output is None:
        return TextResult(text=doc)
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return WrittenFiles(files=[str(path)])


def retention_alerts(settings: Settings, limit: int = 50) -> AlertList:
    """List recent retention alerts (breaker tripped, run failed or missed, unusual volume)."""
    from govern.retention import service
    from govern.retention.schemas import AlertList

    with _session(settings) as session:
        return AlertList(alerts=service.list_alerts(session, limit=limit))


def retention_schedule(
    settings: Settings, seconds: float | None = None, policies: str | None = None
) -> ScheduleOut:
    """Run approved policies on their cron schedules (APScheduler; jobs stored in the database)."""
    from govern.db import create_engine
    from govern.retention import jobs

    ps = _policies(settings, policies)
    engine = create_engine(_url(settings))
    try:
        return jobs.serve(engine, ps, channels=_channels(settings), seconds=seconds)
    finally:
        engine.dispose()
