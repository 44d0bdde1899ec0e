"""The migration commands as plain functions: upgrade, downgrade, status, history, sql, check.

Each takes a database URL (the CLI passes ``settings.database_url``) and returns a result
model. Alembic is imported inside the functions that use it, so ``import govern`` stays fast.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError

from govern.db import DOMAIN_DEPENDS_ON, DOMAINS, create_engine, describe_db_error
from govern.errors import (
    DependentDomainError,
    MigrationError,
    UnknownDomainError,
    UnknownRevisionError,
    UsageError,
)
from govern.migrations import checksums
from govern.migrations.paths import SCRIPT_LOCATION, domain_dirs
from govern.migrations.schemas import (
    CheckReport,
    DomainStatus,
    Finding,
    HistoryReport,
    MigrateResult,
    Revision,
    StatusReport,
    Step,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

FILE_TEMPLATE = "%%(rev)s_%%(slug)s"


def alembic_config(url: str, *, connection: Connection | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for govern's migrations; no alembic.ini needed.

    Use it with Alembic's own commands or with pytest-alembic::

        from alembic import command
        command.upgrade(govern.migrations.alembic_config("sqlite:///app.db"), "heads")
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option(
        "version_locations", os.pathsep.join(str(p) for p in domain_dirs().values())
    )
    cfg.set_main_option("file_template", FILE_TEMPLATE)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _script(cfg: Config) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(cfg)


def domain_of(script: Script) -> str:
    return Path(str(script.path)).parent.name


def _check_domain(domain: str) -> str:
    if domain not in DOMAINS:
        raise UnknownDomainError(f"unknown domain {domain!r}; domains: {', '.join(DOMAINS)}")
    return domain


def domain_chain(sd: ScriptDirectory, domain: str) -> list[Script]:
    """The revisions of one domain, base first."""
    revs = [r for r in sd.walk_revisions() if domain_of(r) == domain]
    by_down: dict[str | None, list[Script]] = {}
    ids = {r.revision for r in revs}
    for r in revs:
        downs = r.down_revision if isinstance(r.down_revision, tuple) else (r.down_revision,)
        inner: list[str | None] = [d for d in downs if d in ids] or [None]
        for d in inner:
            by_down.setdefault(d, []).append(r)
    ordered: list[Script] = []
    frontier = sorted(by_down.get(None, []), key=lambda r: r.revision)
    seen: set[str] = set()
    while frontier:
        r = frontier.pop(0)
        if r.revision in seen:
            continue
        seen.add(r.revision)
        ordered.append(r)
        frontier.extend(sorted(by_down.get(r.revision, []), key=lambda x: x.revision))
    return ordered


def _resolved_dependencies(sd: ScriptDirectory, rev: Script) -> set[str]:
    deps = rev.dependencies
    if not deps:
        return set()
    names = (deps,) if isinstance(deps, str) else tuple(deps)
    out: set[str] = set()
    for name in names:
        for r in sd.get_revisions(name):
            if r is not None:
                out.add(r.revision)
    return out


@contextlib.contextmanager
def _connect(url: str) -> Iterator[tuple[Engine, Connection]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            yield engine, conn
    except DBAPIError as exc:
        raise describe_db_error(url, exc) from None
    finally:
        engine.dispose()


def _applied(sd: ScriptDirectory, conn: Connection) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(conn).get_current_heads()
    conn.rollback()
    if not heads:
        return set()
    applied: set[str] = set()
    for rev in sd.iterate_revisions(heads, "base"):
        applied.add(rev.revision)
    return applied


def _display(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _status(sd: ScriptDirectory, url: str, applied: set[str]) -> StatusReport:
    domains = []
    for d in DOMAINS:
        chain = domain_chain(sd, d)
        done = [r for r in chain if r.revision in applied]
        domains.append(
            DomainStatus(
                domain=d,
                current=done[-1].revision if done else None,
                head=chain[-1].revision if chain else "base",
                pending=len(chain) - len(done),
                depends_on=list(DOMAIN_DEPENDS_ON[d]),
            )
        )
    return StatusReport(database=_display(url), domains=domains)


def status(url: str) -> StatusReport:
    """Each domain's current revision, head and number of pending revisions."""
    cfg = alembic_config(url)
    sd = _script(cfg)
    with _connect(url) as (_, conn):
        return _status(sd, url, _applied(sd, conn))


def history(url: str | None = None, domain: str | None = None) -> HistoryReport:
    """The revisions of one or every domain, base first, marking those applied to ``url``."""
    cfg = alembic_config(url or "sqlite://")
    sd = _script(cfg)
    applied: set[str] = set()
    if url is not None:
        with _connect(url) as (_, conn):
            applied = _applied(sd, conn)
    domains = [_check_domain(domain)] if domain else list(DOMAINS)
    revs = []
    for d in domains:
        for r in domain_chain(sd, d):
            down = r.down_revision if isinstance(r.down_revision, str) else None
            revs.append(
                Revision(
                    domain=d,
                    revision=r.revision,
                    down_revision=down,
                    depends_on=sorted(_resolved_dependencies(sd, r)),
                    message=r.doc or "",
                    filename=Path(str(r.path)).name,
                    applied=r.revision in applied,
                )
            )
    return HistoryReport(revisions=revs)


def _run(cfg: Config, fn: Any, target: str, conn: Connection) -> list[Step]:
    steps: list[Step] = []
    cfg.attributes["connection"] = conn
    cfg.attributes["steps"] = steps
    try:
        fn(cfg, target)
    except DBAPIError as exc:
        raise describe_db_error(cfg.get_main_option("sqlalchemy.url") or "", exc) from None
    except Exception as exc:
        from alembic.util import CommandError

        if isinstance(exc, CommandError):
            raise MigrationError(str(exc).splitlines()[0]) from None
        raise
    conn.commit()
    return steps


def _resolve_revision(sd: ScriptDirectory, rev: str, domain: str | None) -> tuple[str, str]:
    matches = [r for d in DOMAINS for r in domain_chain(sd, d) if r.revision == rev]
    if not matches:
        where = f" in domain {domain!r}" if domain else ""
        raise UnknownRevisionError(f"unknown revision {rev!r}{where}; see `govern migrate history`")
    found = domain_of(matches[0])
    if domain is not None and found != domain:
        raise UnknownRevisionError(f"revision {rev!r} belongs to domain {found!r}, not {domain!r}")
    return found, rev


def upgrade(url: str, domains: Sequence[str] | None = None, to: str | None = None) -> MigrateResult:
    """Upgrade the given domains (default: all, in dependency order) to head or to ``to``."""
    from alembic import command

    for d in domains or ():
        _check_domain(d)
    cfg = alembic_config(url)
    sd = _script(cfg)
    if to is not None:
        if domains and len(domains) > 1:
            raise UsageError("--to names one revision: give at most one --domain with it")
        dom, rev = _resolve_revision(sd, to, domains[0] if domains else None)
        targets = [(dom, rev)]
    else:
        chosen = set(domains) if domains else set(DOMAINS)
        targets = [(d, f"{d}@head") for d in DOMAINS if d in chosen and domain_chain(sd, d)]
    steps: list[Step] = []
    with _connect(url) as (_, conn):
        for _dom, target in targets:
            steps += _run(cfg, command.upgrade, target, conn)
        return MigrateResult(
            database=_display(url), steps=steps, status=_status(sd, url, _applied(sd, conn))
        )


def downgrade(
    url: str, domain: str, to: str | None = None, *, cascade: bool = False
) -> MigrateResult:
    """Roll back one domain (default: one revision) and leave the other domains intact.

    Refuses with :class:`DependentDomainError` when an applied revision of another
    domain depends on a revision being removed, unless ``cascade`` is set, in which
    case those domains are rolled back first, just far enough.
    """
    from alembic import command

    _check_domain(domain)
    cfg = alembic_config(url)
    sd = _script(cfg)
    chain = domain_chain(sd, domain)
    with _connect(url) as (_, conn):
        applied = _applied(sd, conn)
        done = [r for r in chain if r.revision in applied]
        if to is None:
            keep = len(done) - 1 if done else 0
        elif to == "base":
            keep = 0
        else:
            _resolve_revision(sd, to, domain)
            ids = [r.revision for r in done]
            if to not in ids:
                raise UsageError(f"revision {to!r} is not applied; nothing to roll back to")
            keep = ids.index(to) + 1
        removed = {r.revision for r in done[keep:]}
        steps: list[Step] = []
        if removed:
            dependents = _dependents(sd, applied, removed, domain)
            if dependents and not cascade:
                names = ", ".join(sorted(dependents))
                raise DependentDomainError(
                    f"cannot roll back {domain!r}: applied domain(s) {names} depend on it; "
                    "roll them back first or pass --cascade"
                )
            for dep_domain, first in sorted(dependents.items()):
                dep_chain = [r.revision for r in domain_chain(sd, dep_domain)]
                idx = dep_chain.index(first)
                target = dep_chain[idx - 1] if idx > 0 else "base"
                steps += downgrade(url, dep_domain, target, cascade=True).steps
            target = done[keep - 1].revision if keep > 0 else f"{domain}@base"
            steps += _run(cfg, command.downgrade, target, conn)
        return MigrateResult(
            database=_display(url), steps=steps, status=_status(sd, url, _applied(sd, conn))
        )


def _dependents(
    sd: ScriptDirectory, applied: set[str], removed: set[str], domain: str
) -> dict[str, str]:
    """``{other_domain: earliest applied revision that depends on a removed one}``."""
    out: dict[str, str] = {}
    for d in DOMAINS:
        if d == domain:
            continue
        for r in domain_chain(sd, d):
            if r.revision in applied and _resolved_dependencies(sd, r) & removed:
                out.setdefault(d, r.revision)
    return out


def offline_sql(url: str, domains: Sequence[str] | None = None) -> str:
    """The SQL that ``upgrade`` would run from an empty database, for a DBA to review."""
    from alembic import command
    from alembic.config import Config

    for d in domains or ():
        _check_domain(d)
    buf = io.StringIO()
    base = alembic_config(url)
    cfg = Config(output_buffer=buf)
    for key in ("script_location", "path_separator", "version_locations", "sqlalchemy.url"):
        cfg.set_main_option(key, (base.get_main_option(key) or "").replace("%", "%%"))
    chosen = set(domains) if domains else set(DOMAINS)
    # Offline mode cannot follow depends_on into another branch; upgrade heads in one pass.
    if chosen == set(DOMAINS):
        command.upgrade(cfg, "heads", sql=True)
    else:
        for d in DOMAINS:
            if d in chosen:
                command.upgrade(cfg, f"{d}@head", sql=True)
    return buf.getvalue()


def _downgrade_problem(path: Path) -> str | None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "downgrade":
            body = [
                s
                for s in node.body
                if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
                and not isinstance(s, ast.Pass)
            ]
            return None if body else "has an empty downgrade()"
    return "has no downgrade()"


def _describe_diff(diff: Any) -> str:
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(_describe_diff(d) for d in diff)
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        return f"{kind} {diff[1].name}"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {diff[2]}.{diff[3].name}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        obj = diff[1]
        return f"{kind} {getattr(obj, 'name', obj)} on {getattr(obj.table, 'name', '?')}"
    if kind in ("add_fk", "remove_fk"):
        return f"{kind} on {diff[1].parent.name}"
    if kind.startswith("modify_"):
        return f"{kind} {diff[2]}.{diff[3]}"
    return str(kind)


def check(url: str) -> CheckReport:
    """Drift, irreversible revisions, split heads and edited applied files; empty when clean."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from govern.db import load_models
    from govern.migrations.environment import include_object_for

    cfg = alembic_config(url)
    sd = _script(cfg)
    findings: list[Finding] = []
    for d in DOMAINS:
        chain = domain_chain(sd, d)
        ids = {r.revision for r in chain}
        downs: set[str] = set()
        for r in chain:
            dr = r.down_revision
            downs.update((dr,) if isinstance(dr, str) else (dr or ()))
            problem = _downgrade_problem(Path(str(r.path)))
            if problem:
                findings.append(
                    Finding(kind="irreversible", domain=d, detail=f"{r.revision} {problem}")
                )
        heads = sorted(ids - downs)
        if len(heads) > 1:
            findings.append(
                Finding(
                    kind="multiple-heads", domain=d, detail=f"heads {', '.join(heads)}; merge them"
                )
            )
    with _connect(url) as (_, conn):
        applied = _applied(sd, conn)
        report = _status(sd, url, applied)
        for ds in report.domains:
            if ds.pending:
                findings.append(
                    Finding(
                        kind="pending",
                        domain=ds.domain,
                        detail=f"{ds.pending} revision(s) not applied",
                    )
                )
        metadata = load_models()
        mc = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "target_metadata": metadata,
                "include_object": include_object_for(frozenset(metadata.tables), None),
            },
        )
        if not any(ds.pending for ds in report.domains):
            for diff in compare_metadata(mc, metadata):
                findings.append(Finding(kind="drift", domain=None, detail=_describe_diff(diff)))
        recorded = checksums.recorded(conn)
        conn.rollback()
    for rev_id in sorted(applied):
        script = sd.get_revision(rev_id)
        if script is None:
            findings.append(
                Finding(
                    kind="unknown-applied",
                    domain=None,
                    detail=f"{rev_id} is applied but has no file",
                )
            )
            continue
        path = Path(str(script.path))
        want = recorded.get(rev_id)
        if want is None:
            findings.append(
                Finding(
                    kind="checksum",
                    domain=domain_of(script),
                    detail=f"{path.name} has no recorded checksum",
                )
            )
        elif want != checksums.file_sha256(path):
            findings.append(
                Finding(
                    kind="checksum",
                    domain=domain_of(script),
                    detail=f"{path.name} was edited after it was applied",
                )
            )
    return CheckReport(findings=findings)
