"""One typed function per CLI command, settings first.

The first line of each docstring is the command's help text. Host services can call
these directly; they return result models and raise :class:`govern.errors.GovernError`.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from govern.config import Settings, env_example
from govern.doctor import DoctorReport, run_doctor
from govern.migrations.schemas import CheckReport, HistoryReport, MigrateResult, StatusReport
from govern.results import TextResult, WrittenFiles
from govern.seeding.schemas import SeedResult

if TYPE_CHECKING:
    import datetime as dt
    import uuid

    from sqlalchemy.orm import Session

    from govern.audit.export import ExportResult, VerifyResult
    from govern.audit.sections import Controller
    from govern.credentials import PurgeResult, RotateResult, ScanReport
    from govern.events.schemas import CdcStatusReport, RelayReport, ReplayResult
    from govern.holds import HoldList, HoldOut
    from govern.seeding import GenerateResult


def _url(settings: Settings) -> str:
    return settings.database_url.get_secret_value()


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """One transaction for one command: committed on success, rolled back on any error."""
    from sqlalchemy.exc import DBAPIError

    from govern.db import create_engine, describe_db_error, transaction

    engine = create_engine(_url(settings))
    try:
        with transaction(engine) as session:
            yield session
    except DBAPIError as exc:
        raise describe_db_error(_url(settings), exc) from None
    finally:
        engine.dispose()


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
    others: dict[str, str] = {}

    def text_lines(self) -> list[str]:
        lines = [f"GOVERN_DATABASE_URL={self.database_url}", f"GOVERN_KEK={self.kek}"]
        return lines + [f"{k}={v}" for k, v in self.others.items()]


def _shown(value: object) -> str:
    from pydantic import SecretStr

    if value is None:
        return "(not set)"
    return "(set, hidden)" if isinstance(value, SecretStr) else str(value)


def config_show(settings: Settings) -> ShownSettings:
    """Show the effective settings with every secret hidden."""
    return ShownSettings(
        database_url=settings.url_for_display,
        kek="(set, hidden)" if settings.kek is not None else "(not set)",
        others={
            f"GOVERN_{name.upper()}": _shown(getattr(settings, name))
            for name in Settings.model_fields
            if name not in ("database_url", "kek")
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


QUICKSTART_PENDING = (
    ("record consents", "consent ledger"),
    ("submit and process an access and an erasure request", "data subject request queue"),
    ("simulate retention", "retention policies"),
)
"""Quickstart steps whose capability this version lacks; each is reported as skipped."""


def quickstart(settings: Settings) -> QuickstartResult:
    """Migrate, seed the demo, export and verify a signed audit bundle; print what was done."""
    from govern.audit.export import export_bundle, verify

    migrated = migrate_up(settings)
    steps = [QuickstartStep(name="migrate", status="done", detail="every domain at head")]
    files: dict[str, str] = {"database": settings.url_for_display}
    seeded = seed(settings, None, "demo")
    steps.append(
        QuickstartStep(
            name="seed demo environment",
            status="done",
            detail=f"{seeded.changes} change(s) across {len(seeded.tables)} tables",
        )
    )
    for name, capability in QUICKSTART_PENDING:
        steps.append(
            QuickstartStep(
                name=name, status="skipped", detail=f"not available in this version ({capability})"
            )
        )
    key, source = _local_signing_key(settings)
    if key is None:
        steps.append(QuickstartStep(name="export audit bundle", status="skipped", detail=source))
    else:
        db = _sqlite_path(settings)
        out = (db.parent if db else Path.cwd()) / "govern-audit.zip"
        with _session(settings) as session:
            result = export_bundle(session, out, signing_key=key, controller=_controller(settings))
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


def hold_add(
    settings: Settings, subjects: Sequence[str], reason: str, by: str, case: str | None = None
) -> HoldOut:
    """Place a legal hold on one or more subjects: their data is never erased or purged."""
    from govern import holds

    ids = [_parse_uuid(s, "--subject") for s in subjects]
    with _session(settings) as session:
        return holds.add_hold(session, subject_ids=ids, reason=reason, actor=by, case_ref=case)


def hold_release(settings: Settings, hold_id: str, by: str, note: str | None = None) -> HoldOut:
    """Release a legal hold."""
    from govern import holds

    hid = _parse_uuid(hold_id, "HOLD_ID")
    with _session(settings) as session:
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
    with _session(settings) as session:
        result = seeding.seed(session, env, domains, seed_password=password)
        if scale:
            result.generated = seeding.generate_events(session, scale)
    return result


def seed_generate_events(
    settings: Settings, count: int, seed: int = 0, days: int = 90
) -> GenerateResult:
    """Generate COUNT realistic analytics events for the seeded subjects, set-based."""
    from govern import seeding

    with _session(settings) as session:
        return seeding.generate_events(session, count, seed=seed, days=days)


def credentials_scan(settings: Settings) -> ScanReport:
    """Find accounts with a legacy demo password or an outdated hash scheme; exit 1 if any."""
    from govern import credentials

    with _session(settings) as session:
        return credentials.scan(session)


def credentials_purge_demo(
    settings: Settings, by: str, include_outdated: bool = False
) -> PurgeResult:
    """Invalidate accounts with demo passwords: new unknown hash, forced reset, audit entry."""
    from govern import credentials

    with _session(settings) as session:
        return credentials.purge_demo(session, actor=by, include_outdated=include_outdated)


def credentials_rotate(
    settings: Settings, by: str, accounts: Sequence[str] | None = None
) -> RotateResult:
    """Give service accounts new random passwords and print them, once."""
    from govern import credentials

    with _session(settings) as session:
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
) -> ExportResult:
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
    with _session(settings) as session:
        return export_bundle(
            session,
            Path(out),
            signing_key=key,
            controller=_controller(settings),
            period_from=start,
            period_to=end,
        )


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
    with _session(settings) as session:
        return replay(session, sinks, sink, from_id)
