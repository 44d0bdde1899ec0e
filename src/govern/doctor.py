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
    kek = "set" if settings.has_kek else "not set (protected columns need it)"
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


def _credentials(settings: Settings) -> list[CheckResult]:
    """Legacy demo passwords are a failure; outdated hash schemes are reported with them."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    from govern import credentials
    from govern.db import create_engine, transaction
    from govern.keys import attach

    if not settings.has_kek:
        return [
            CheckResult(
                name="credentials",
                ok=True,
                detail="not checked: password hashes are encrypted and GOVERN_KEK is not set",
            )
        ]
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        if not inspect(engine).has_table("accounts"):
            return [CheckResult(name="credentials", ok=True, detail="no accounts table yet")]
        attach(engine, settings)
        with transaction(engine) as session:
            report = credentials.scan(session)
    except DBAPIError as exc:
        return [CheckResult(name="credentials", ok=False, detail=type(exc).__name__)]
    except GovernError as exc:
        return [CheckResult(name="credentials", ok=False, detail=str(exc))]
    finally:
        engine.dispose()
    if not report.findings:
        return [
            CheckResult(
                name="credentials",
                ok=True,
                detail=f"{report.accounts_scanned} account(s), no demo passwords or weak hashes",
            )
        ]
    names = ", ".join(sorted({f.username for f in report.findings})[:5])
    kinds = sorted({f.kind for f in report.findings})
    return [
        CheckResult(
            name="credentials",
            ok=False,
            detail=f"{len(report.findings)} finding(s) ({', '.join(kinds)}) on {names}; "
            "run `govern credentials purge-demo`",
        )
    ]


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


# Encryption (issue 3) -----------------------------------------------------------------
def _encryption(settings: Settings) -> list[CheckResult]:
    """KEK present and right, primary data key not too old, coverage scan clean."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    from govern.db import create_engine, load_models, transaction
    from govern.keys import (
        bind_keyring,
        list_keys,
        load_keyring,
        protected_columns,
        provider_from_settings,
        scan_encryption,
    )

    engine = create_engine(settings.database_url.get_secret_value())
    try:
        if not inspect(engine).has_table("data_keys"):
            return []
        out = []
        n = len(protected_columns(load_models()))
        keyring = None
        if not settings.has_kek:
            # A new database has protected columns but nothing sealed yet: nothing is
            # unreadable, so the missing KEK is a warning until the first key or value exists.
            with transaction(engine) as session:
                has_keys = bool(list_keys(session))
            report = scan_encryption(engine, None, sample=0)
            stored = sum(c.rows for c in report.columns)
            sealed = has_keys or stored > 0
            out.append(
                CheckResult(
                    name="encryption key",
                    ok=not sealed,
                    detail=(
                        f"GOVERN_KEK is not set but {stored} protected value(s) and "
                        f"{n} protected columns exist: set it (`govern keys generate-kek`)"
                        if sealed
                        else f"GOVERN_KEK is not set: nothing sealed yet, but writing the {n} "
                        "protected columns will need it (`govern keys generate-kek`)"
                    ),
                )
            )
        else:
            try:
                with transaction(engine) as session:
                    keyring = load_keyring(session, provider_from_settings(settings), create=False)
                bind_keyring(engine, keyring)
                out.append(
                    CheckResult(
                        name="encryption key",
                        ok=True,
                        detail=f"KEK {keyring.kek_fingerprint} opens "
                        f"{len(keyring.data_key_ids())} data key(s)",
                    )
                )
            except GovernError as exc:
                out.append(CheckResult(name="encryption key", ok=False, detail=str(exc)))
        with transaction(engine) as session:
            keys = list_keys(session)
        primary = [k for k in keys if k.purpose == "data" and k.state == "primary"]
        max_age = settings.key_max_age_days
        if not primary:
            out.append(CheckResult(name="data key age", ok=True, detail="no data key yet"))
        else:
            age = primary[0].age_days
            out.append(
                CheckResult(
                    name="data key age",
                    ok=age <= max_age,
                    detail=f"primary data key {primary[0].id} is {age} day(s) old (max {max_age})"
                    + ("" if age <= max_age else ": run `govern keys rotate` then `reencrypt`"),
                )
            )
        report = scan_encryption(engine, keyring, sample=50)
        problems = report.problems()
        out.append(
            CheckResult(
                name="encryption coverage",
                ok=not problems,
                detail="; ".join(problems[:5])
                or f"{len(report.columns)} protected column(s), stored values well-formed",
            )
        )
        return out
    except DBAPIError:
        return []
    finally:
        engine.dispose()


CHECKS: list[Callable[[Settings], list[CheckResult]]] = [
    _settings,
    _database,
    _migrations,
    _credentials,
    _event_sinks,
    _encryption,
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
