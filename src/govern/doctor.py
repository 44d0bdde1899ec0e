"""``govern doctor``: a runtime audit of settings, database and migrations.

Checks are plain functions ``(settings) -> list[CheckResult]``; capabilities add theirs
to :data:`CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from govern.config import Settings
from govern.errors import GovernError


class CheckResult(BaseModel):
    name: str
    ok: bool
    detail: str


class DoctorReport(BaseModel):
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def text_lines(self) -> list[str]:
        return [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]


def _settings(settings: Settings) -> list[CheckResult]:
    kek = "set" if settings.kek is not None else "not set (only key commands need it)"
    return [
        CheckResult(
            name="settings", ok=True, detail=f"database {settings.url_for_display}; KEK {kek}"
        )
    ]


def _database(settings: Settings) -> list[CheckResult]:
    from govern.db import check_connection, create_engine

    engine = create_engine(settings.database_url.get_secret_value())
    try:
        check_connection(engine)
    except GovernError as exc:
        return [CheckResult(name="database", ok=False, detail=str(exc))]
    finally:
        engine.dispose()
    return [CheckResult(name="database", ok=True, detail="reachable")]


def _migrations(settings: Settings) -> list[CheckResult]:
    from govern import migrations

    url = settings.database_url.get_secret_value()
    try:
        report = migrations.status(url)
        findings = migrations.check(url).findings
    except GovernError as exc:
        return [CheckResult(name="migrations", ok=False, detail=str(exc))]
    out = []
    for d in report.domains:
        ok = d.pending == 0
        detail = f"at head {d.head}" if ok else f"{d.pending} pending (run `govern migrate up`)"
        out.append(CheckResult(name=f"migrations {d.domain}", ok=ok, detail=detail))
    sums = [f for f in findings if f.kind == "checksum"]
    out.append(
        CheckResult(
            name="migration checksums",
            ok=not sums,
            detail="; ".join(f.detail for f in sums) or "every applied file matches",
        )
    )
    drift = [f for f in findings if f.kind == "drift"]
    out.append(
        CheckResult(
            name="schema drift",
            ok=not drift,
            detail="; ".join(f.detail for f in drift[:5]) or "models match the database",
        )
    )
    return out


def _event_sinks(settings: Settings) -> list[CheckResult]:
    """Each configured event sink: failing (last error) or keeping up (backlog)."""
    if settings.sinks_file is None:
        return []
    from sqlalchemy.exc import DBAPIError

    from govern.db import create_engine, transaction
    from govern.events.relay import status
    from govern.events.sinks import load_sinks

    try:
        sinks = load_sinks(settings.sinks_file)
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            with transaction(engine) as session:
                report = status(session, sinks)
        finally:
            engine.dispose()
    except GovernError as exc:
        return [CheckResult(name="event sinks", ok=False, detail=str(exc))]
    except DBAPIError:
        return [CheckResult(name="event sinks", ok=False, detail="outbox tables not readable")]
    return [
        CheckResult(
            name=f"event sink {s.sink}",
            ok=s.last_error is None,
            detail=(f"last error: {s.last_error}; " if s.last_error else "")
            + f"position {s.position}, backlog {s.backlog}",
        )
        for s in report.sinks
    ]


CHECKS: list[Callable[[Settings], list[CheckResult]]] = [
    _settings,
    _database,
    _migrations,
    _event_sinks,
]


def _retention(settings: Settings) -> list[CheckResult]:
    from govern.retention.doctor import check

    return check(settings)


CHECKS.append(_retention)


def run_doctor(settings: Settings) -> DoctorReport:
    results: list[CheckResult] = []
    for check in CHECKS:
        results += check(settings)
        if check is _database and not results[-1].ok:
            break
    return DoctorReport(checks=results)
