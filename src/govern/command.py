"""One typed function per CLI command, settings first.

The first line of each docstring is the command's help text. Host services can call
these directly; they return result models and raise :class:`govern.errors.GovernError`.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from govern.config import Settings, env_example
from govern.doctor import DoctorReport, run_doctor
from govern.migrations.schemas import CheckReport, HistoryReport, MigrateResult, StatusReport
from govern.results import TextResult, WrittenFiles

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.orm import Session

    from govern.events.schemas import CdcStatusReport, RelayReport, ReplayResult
    from govern.holds import HoldList, HoldOut
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

    def text_lines(self) -> list[str]:
        return [f"GOVERN_DATABASE_URL={self.database_url}", f"GOVERN_KEK={self.kek}"]


def config_show(settings: Settings) -> ShownSettings:
    """Show the effective settings with every secret hidden."""
    return ShownSettings(
        database_url=settings.url_for_display,
        kek="(set, hidden)" if settings.kek is not None else "(not set)",
    )


def keys_generate_kek(settings: Settings | None = None) -> TextResult:
    """Print a new random key-encryption key for GOVERN_KEK (store it in your secret manager)."""
    return TextResult(text=base64.b64encode(secrets.token_bytes(32)).decode())


class QuickstartResult(BaseModel):
    database: str
    migrate: MigrateResult
    doctor: DoctorReport

    def text_lines(self) -> list[str]:
        lines = [f"govern quickstart on {self.database}", "", "migrations:"]
        lines += ["  " + line for line in self.migrate.text_lines()]
        lines += ["", "doctor:"] + ["  " + line for line in self.doctor.text_lines()]
        return lines


def quickstart(settings: Settings) -> QuickstartResult:
    """Migrate the database (default ./govern.db) and show the status of every domain."""
    migrated = migrate_up(settings)
    return QuickstartResult(
        database=settings.url_for_display, migrate=migrated, doctor=run_doctor(settings)
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
    with _session(settings) as session:
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
    with _session(settings) as session:
        return service.rollback(session, rid, actor=by)


def retention_purge_quarantine(
    settings: Settings, by: str = "cli", run_id: str | None = None
) -> PurgeOut:
    """Delete quarantined rows past their restore window (or one run's, with --run)."""
    from govern.retention import service

    rid = _parse_uuid(run_id, "--run") if run_id else None
    with _session(settings) as session:
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
