"""One function per section of the audit bundle.

Each takes the :class:`ExportContext` and the bundle writer, writes its files and returns a
:class:`Section` for the report. A capability that this version of govern does not have
returns an explicit "not available in this version" section (and writes a status file
saying so) instead of anything that could be mistaken for evidence. To wire a capability
in, replace its function's body; :data:`SECTIONS` keeps the order of the bundle.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from govern.audit.bundle import BundleWriter

NOT_AVAILABLE = "not available in this version"
Status = Literal["included", "empty", "not available in this version"]


class Point(BaseModel):
    label: str
    value: float


class Series(BaseModel):
    name: str
    points: list[Point]


class Chart(BaseModel):
    """Data for one inline SVG chart in ``report.html``."""

    title: str
    kind: Literal["bar", "line"]
    unit: str
    series: list[Series]


class Section(BaseModel):
    key: str
    title: str
    status: Status
    files: list[str] = Field(default_factory=list)
    summary: list[str] = Field(default_factory=list)
    figures: dict[str, Any] = Field(default_factory=dict)
    charts: list[Chart] = Field(default_factory=list)
    pending_charts: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Controller:
    """Art. 30(1)(a): the controller and the data protection officer."""

    name: str | None
    contact: str | None
    dpo: str | None


@dataclass(frozen=True)
class ExportContext:
    session: Session
    controller: Controller
    period_from: dt.datetime | None
    period_to: dt.datetime
    now: dt.datetime
    consent_verify_key: str | None = None
    retention_policies: str | None = None


SECURITY_MEASURES = [
    "Passwords stored as Argon2id hashes (m=19 MiB, t=2); legacy demo passwords and "
    "outdated schemes are scanned for by `govern credentials scan` and `govern doctor`.",
    "Append-only audit log of governance actions, written in the same transaction as the action.",
    "Legal holds block erasure and purging of held subjects' data (Art. 17(3)(e)).",
    "Schema migrations are checksummed; drift and edited revisions are reported by "
    "`govern doctor`.",
    "Audit bundles are signed with Ed25519 and every file is hashed with SHA-256.",
]


def _activities(limits: dict[str, str]) -> list[dict[str, Any]]:
    """One processing activity per domain, from the data map; ``limits`` maps a table to its
    retention policies' erasure time limits."""
    from govern.datamap import data_map
    from govern.db import DOMAINS

    entries = data_map()
    out = []
    for domain in DOMAINS:
        tables = [e for e in entries if e.domain == domain]
        if not tables:
            continue
        categories = sorted({c for e in tables for col in e.columns for c in col.categories})
        subject_tables = sorted(e.name for e in tables if e.subject_link)
        out.append(
            {
                "activity": f"{domain} domain",
                "purposes": sorted({e.description for e in tables}),
                "purposes_source": "table descriptions in the data map; consent purposes "
                "are listed under consent_purposes",
                "categories_of_data_subjects": ["data subjects (table subjects)"]
                if subject_tables
                else [],
                "categories_of_personal_data": categories,
                "tables": [e.name for e in tables],
                "owners": sorted({e.owner for e in tables}),
                "stewards": sorted({e.steward for e in tables}),
                "recipients": sorted({f"internal: {e.owner}" for e in tables}),
                "transfers_to_third_countries": "none recorded in govern",
                "transfer_safeguards": "none recorded in govern",
                "erasure_time_limits": {
                    e.name: limits.get(e.name, "no retention policy: kept while the purpose lasts")
                    for e in tables
                    if e.columns
                },
                "security_measures": SECURITY_MEASURES,
            }
        )
    return out


def ropa(ctx: ExportContext, out: BundleWriter) -> Section:
    """Art. 30(1) record of processing activities, as JSON and CSV."""
    from govern.consent import list_purposes
    from govern.retention import load_policies

    c = ctx.controller
    limits: dict[str, str] = {}
    for pol in load_policies(ctx.retention_policies).policies:
        limit = f"{pol.action} after {pol.period} (policy {pol.name})"
        limits[pol.table] = f"{limits[pol.table]}; {limit}" if pol.table in limits else limit
    activities = _activities(limits)
    purposes = [
        {
            "purpose": p.key,
            "name": p.name,
            "description": p.description,
            "legal_basis": str(p.legal_basis),
            "categories_of_personal_data": p.data_categories,
            "recipients": p.third_parties,
            "sale_or_sharing": p.sale_or_sharing,
            "erasure_time_limit_days": p.retention_days,
        }
        for p in list_purposes(ctx.session)
    ]
    doc = {
        "controller": {
            "name": c.name or "not configured",
            "contact": c.contact or "not configured",
        },
        "data_protection_officer": {"contact": c.dpo or "not configured"},
        "generated_at": ctx.now.isoformat(),
        "activities": activities,
        "consent_purposes": purposes,
    }
    out.add_json("ropa/ropa.json", doc)
    with out.text("ropa/purposes.csv") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        cols = list(purposes[0]) if purposes else ["purpose"]
        writer.writerow(cols)
        for row in purposes:
            writer.writerow(
                ["; ".join(v) if isinstance(v, list) else v for v in (row[k] for k in cols)]
            )
    with out.text("ropa/ropa.csv") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        cols = [k for k in activities[0] if k != "security_measures"] if activities else []
        writer.writerow(["controller", "controller_contact", "dpo_contact", *cols])
        for a in activities:
            writer.writerow(
                [
                    c.name or "",
                    c.contact or "",
                    c.dpo or "",
                    *("; ".join(a[k]) if isinstance(a[k], list) else a[k] for k in cols),
                ]
            )
    missing = [
        label
        for label, value in (
            ("controller name (GOVERN_CONTROLLER_NAME)", c.name),
            ("controller contact (GOVERN_CONTROLLER_CONTACT)", c.contact),
            ("DPO contact (GOVERN_DPO_CONTACT)", c.dpo),
        )
        if not value
    ]
    summary = [
        f"{len(activities)} processing activities from the data map; "
        f"{len(purposes)} consent purpose(s) from the consent catalog."
    ]
    if missing:
        summary.append("Not configured: " + ", ".join(missing) + ".")
    summary.append(
        f"Erasure time limits from {len(limits)} table(s) with retention policies; other "
        "tables keep data while their purpose lasts and are erased on request."
    )
    cats = sum(len(a["categories_of_personal_data"]) for a in activities)
    chart = Chart(
        title="Personal-data categories per domain",
        kind="bar",
        unit="categories",
        series=[
            Series(
                name="categories",
                points=[
                    Point(
                        label=a["activity"].split()[0], value=len(a["categories_of_personal_data"])
                    )
                    for a in activities
                ],
            )
        ],
    )
    return Section(
        key="ropa",
        title="Record of processing activities (Art. 30(1))",
        status="included",
        files=["ropa/ropa.json", "ropa/ropa.csv", "ropa/purposes.csv"],
        summary=summary,
        figures={"processing activities": len(activities), "personal-data categories": cats},
        charts=[chart],
    )


# --- capabilities that are not in this version ---------------------------------------


def _weekly(weeks: dict[str, Counter[str]], names: tuple[str, ...]) -> list[Series]:
    labels = sorted(weeks)
    return [
        Series(name=n, points=[Point(label=w, value=weeks[w][n]) for w in labels]) for n in names
    ]


def consent(ctx: ExportContext, out: BundleWriter) -> Section:
    """Consent ledger extract for the period (CSV, streamed) and the ledger's verification."""
    from govern.consent import export_lines, verify

    weeks: dict[str, Counter[str]] = {}
    events: Counter[str] = Counter()
    n = 0
    lines = export_lines(ctx.session, "csv", since=ctx.period_from, until=ctx.period_to)
    with out.text("consent/ledger.csv") as fh:
        header: list[str] | None = None
        for line in lines:
            fh.write(line)
            row = next(csv.reader([line]))
            if header is None:
                header = row
                continue
            n += 1
            rec = dict(zip(header, row, strict=False))
            when = dt.datetime.fromisoformat(rec["occurred_at"]).isocalendar()
            week = f"{when.year}-W{when.week:02d}"
            weeks.setdefault(week, Counter())[rec["event"]] += 1
            events[rec["event"]] += 1
    report = verify(ctx.session, ctx.consent_verify_key)
    out.add("consent/verify.json", report.model_dump_json(indent=2) + "\n")
    summary = [
        f"{n} ledger records in the period: "
        + (", ".join(f"{c} {e}" for e, c in sorted(events.items())) or "none")
        + ".",
        "Ledger verification: "
        + ("passed" if report.ok else f"FAILED ({len(report.findings)} finding(s))")
        + f" over {report.records} records, {report.subjects} chains and "
        f"{report.checkpoints} signed checkpoints"
        + (" (key pinned)." if report.key_pinned else " (checkpoint key not pinned)."),
    ]
    charts = []
    if n:
        charts.append(
            Chart(
                title="Consents given and withdrawn per week",
                kind="bar",
                unit="records",
                series=_weekly(weeks, ("given", "withdrawn")),
            )
        )
    return Section(
        key="consent",
        title="Consent ledger",
        status="included" if n else "empty",
        files=["consent/ledger.csv", "consent/verify.json"],
        summary=summary,
        figures={"consent records in period": n, "ledger verified": "yes" if report.ok else "NO"},
        charts=charts,
    )


def _week(when: dt.datetime) -> str:
    iso = when.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


REGISTER_COLUMNS = (
    "request_id",
    "type",
    "jurisdiction",
    "channel",
    "received_at",
    "deadline",
    "extended_deadline",
    "extended_at",
    "extension_reason",
    "state",
    "data_held",
    "outcome",
    "exceptions",
    "completed_at",
    "on_time",
)


def dsr(ctx: ExportContext, out: BundleWriter) -> Section:
    """Data subject request register: deadlines, extensions, outcomes, on-time rate.

    The register is streamed twice from ``govern.dsr.register`` (CSV, then JSON), so its size
    does not bound memory; only per-week counters are kept.
    """
    from govern import dsr as dsr_service
    from govern.dsr.schemas import RegisterEntry

    def entries() -> Iterator[RegisterEntry]:
        return dsr_service.register(
            ctx.session, since=ctx.period_from, until=ctx.period_to, now=ctx.now
        )

    received: Counter[str] = Counter()
    completed: Counter[str] = Counter()
    on_time: Counter[str] = Counter()
    n = 0
    with out.text("dsr/register.csv") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(REGISTER_COLUMNS)
        for e in entries():
            n += 1
            received[_week(e.received_at)] += 1
            if e.state == "completed" and e.completed_at is not None:
                completed[_week(e.completed_at)] += 1
                on_time[_week(e.completed_at)] += e.on_time == "yes"
            row = e.model_dump(mode="json")
            row["exceptions"] = "; ".join(row["exceptions"])
            row["data_held"] = "yes" if row["data_held"] else "no"
            writer.writerow(["" if row[c] is None else row[c] for c in REGISTER_COLUMNS])
    with out.text("dsr/register.json") as fh:
        fh.write("[")
        for i, e in enumerate(entries()):
            fh.write(("," if i else "") + "\n  " + e.model_dump_json())
        fh.write("\n]\n" if n else "]\n")
    stats = dsr_service.report(ctx.session, since=ctx.period_from, until=ctx.period_to, now=ctx.now)
    weeks = sorted(set(received) | set(completed))
    out.add_json(
        "dsr/statistics.json",
        {
            "period_from": ctx.period_from.isoformat() if ctx.period_from else None,
            "period_to": ctx.period_to.isoformat(),
            "basis": "requests received in the period; on time = completed before the "
            "deadline in force (the extended one, if extended)",
            **stats.model_dump(mode="json"),
            "weekly": [
                {
                    "week": w,
                    "received": received[w],
                    "completed": completed[w],
                    "completed_on_time": on_time[w],
                }
                for w in weeks
            ],
        },
    )
    rate = "-" if stats.on_time_rate is None else f"{stats.on_time_rate:.0%}"
    summary = [
        f"{stats.total} request(s) received in the period: "
        + (", ".join(f"{c} {t}" for t, c in sorted(stats.by_type.items())) or "none")
        + ".",
        f"{stats.completed} completed, {stats.on_time} on time ({rate}); "
        f"{stats.open_overdue} open and overdue; {stats.extended} extended.",
        "The register holds request ids, types, dates, states and outcomes; "
        "no identifiers of the people who asked.",
    ]
    charts = []
    if n:
        charts.append(
            Chart(
                title="DSR volume per week",
                kind="bar",
                unit="requests",
                series=[
                    Series(
                        name="received", points=[Point(label=w, value=received[w]) for w in weeks]
                    ),
                    Series(
                        name="completed",
                        points=[Point(label=w, value=completed[w]) for w in weeks],
                    ),
                ],
            )
        )
        done = [w for w in weeks if completed[w]]
        if done:
            charts.append(
                Chart(
                    title="DSR on-time rate per week (completed requests)",
                    kind="bar",
                    unit="%",
                    series=[
                        Series(
                            name="on time",
                            points=[
                                Point(label=w, value=round(100 * on_time[w] / completed[w], 1))
                                for w in done
                            ],
                        )
                    ],
                )
            )
    return Section(
        key="dsr",
        title="Data subject requests",
        status="included" if n else "empty",
        files=["dsr/register.csv", "dsr/register.json", "dsr/statistics.json"],
        summary=summary,
        figures={"DSR requests in period": n, "DSR on-time rate": rate},
        charts=charts,
    )


def retention(ctx: ExportContext, out: BundleWriter) -> Section:
    """Retention evidence: policy versions and approvals, runs, counts, rollbacks, alerts."""
    from govern.retention import load_policies
    from govern.retention import service as retention_service

    policies = load_policies(ctx.retention_policies)
    listed = [retention_service.policy_out(ctx.session, p) for p in policies.policies]
    out.add_json(
        "retention/policies.json",
        {"source": policies.source, "policies": [p.model_dump(mode="json") for p in listed]},
    )

    def in_period(when: dt.datetime | None) -> bool:
        if when is None:
            return False
        return (ctx.period_from is None or when >= ctx.period_from) and when <= ctx.period_to

    runs = [
        r
        for r in retention_service.list_runs(ctx.session, limit=1_000_000)
        if in_period(r.started_at)
    ]
    out.add_json("retention/runs.json", [r.model_dump(mode="json") for r in runs])
    alerts = [
        a
        for a in retention_service.list_alerts(ctx.session, limit=1_000_000)
        if in_period(a.raised_at)
    ]
    out.add_json("retention/alerts.json", [a.model_dump(mode="json") for a in alerts])
    volumes: Counter[str] = Counter()
    for r in runs:
        if r.started_at is not None:
            volumes[_week(r.started_at)] += r.processed_rows
    rows = sum(r.processed_rows for r in runs)
    approved = sum(1 for p in listed if p.approved)
    rolled_back = sum(1 for r in runs if r.status == "rolled_back")
    summary = [
        f"{len(listed)} polic(ies) from {policies.source}; {approved} approved in their "
        "current version (unapproved or edited policies can only be simulated).",
        f"{len(runs)} run(s) in the period touched {rows} row(s); {rolled_back} rolled back; "
        f"{len(alerts)} alert(s).",
    ]
    charts = []
    if volumes:
        weeks = sorted(volumes)
        charts.append(
            Chart(
                title="Retention volumes per week",
                kind="bar",
                unit="rows",
                series=[
                    Series(
                        name="rows processed",
                        points=[Point(label=w, value=volumes[w]) for w in weeks],
                    )
                ],
            )
        )
    return Section(
        key="retention",
        title="Retention",
        status="included" if listed else "empty",
        files=["retention/policies.json", "retention/runs.json", "retention/alerts.json"],
        summary=summary,
        figures={"retention runs in period": len(runs), "rows removed by retention": rows},
        charts=charts,
    )


def encryption(ctx: ExportContext, out: BundleWriter) -> Section:
    """Encryption coverage of personal columns and the key inventory (no key material)."""
    from govern.crypto.keyring import holder
    from govern.keys import list_keys
    from govern.keys.scan import scan_encryption

    engine = ctx.session.get_bind()
    keyring = holder(engine.dialect).keyring
    report = scan_encryption(engine, keyring)  # type: ignore[arg-type]
    out.add("encryption/coverage.json", report.model_dump_json(indent=2) + "\n")
    keys = list_keys(ctx.session)
    out.add_json("encryption/keys.json", [k.model_dump(mode="json") for k in keys])
    covered = sum(1 for c in report.columns if c.ok)
    summary = [
        f"{len(report.columns)} protected personal-data columns; {covered} fully sealed; "
        f"{len(report.gaps)} personal column(s) stored unprotected.",
        f"{len(keys)} key(s) in the inventory (ids, purposes, states, ages; no key material).",
    ]
    summary += report.problems()[:10]
    return Section(
        key="encryption",
        title="Encryption and keys",
        status="included",
        files=["encryption/coverage.json", "encryption/keys.json"],
        summary=summary,
        figures={"personal columns unprotected": len(report.gaps)},
    )


# --- what this version has ------------------------------------------------------------


def legal_holds(ctx: ExportContext, out: BundleWriter) -> Section:
    """The legal-hold register: cases, dates and subject counts (no free-text reasons)."""
    from govern.holds.models import LegalHold, LegalHoldSubject

    grouped = select(LegalHoldSubject.hold_id, func.count()).group_by(LegalHoldSubject.hold_id)
    counts: dict[Any, int] = {row[0]: row[1] for row in ctx.session.execute(grouped)}
    holds = list(ctx.session.scalars(select(LegalHold).order_by(LegalHold.created_at)))
    with out.text("holds/legal_holds.csv") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(
            ["hold_id", "case_ref", "created_at", "created_by", "released_at", "subjects"]
        )
        for h in holds:
            writer.writerow(
                [
                    h.id,
                    h.case_ref or "",
                    h.created_at.isoformat(),
                    h.created_by,
                    h.released_at.isoformat() if h.released_at else "",
                    counts.get(h.id, 0),
                ]
            )
    active = sum(1 for h in holds if h.released_at is None)
    return Section(
        key="holds",
        title="Legal holds",
        status="included" if holds else "empty",
        files=["holds/legal_holds.csv"],
        summary=[f"{len(holds)} legal hold(s), {active} active."]
        if holds
        else ["No legal holds have been placed."],
        figures={"active legal holds": active},
    )


def audit_trail(ctx: ExportContext, out: BundleWriter) -> Section:
    """The audit log entries of the period, streamed as JSON lines."""
    from govern.domains.core import AuditLog

    query = select(
        AuditLog.id,
        AuditLog.occurred_at,
        AuditLog.actor,
        AuditLog.action,
        AuditLog.target_type,
        AuditLog.target_id,
        AuditLog.details,
    ).where(AuditLog.occurred_at <= ctx.period_to)
    if ctx.period_from is not None:
        query = query.where(AuditLog.occurred_at >= ctx.period_from)
    query = query.order_by(AuditLog.id).execution_options(yield_per=2000)
    weeks: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    n = 0
    with out.text("audit/audit_log.jsonl") as fh:
        for row in ctx.session.execute(query):
            n += 1
            iso = row.occurred_at.isocalendar()
            weeks[f"{iso.year}-W{iso.week:02d}"] += 1
            actions[row.action.split(".")[0]] += 1
            fh.write(
                json.dumps(
                    {
                        "id": row.id,
                        "occurred_at": row.occurred_at.isoformat(),
                        "actor": row.actor,
                        "action": row.action,
                        "target_type": row.target_type,
                        "target_id": row.target_id,
                        "details": row.details,
                    },
                    default=str,
                )
                + "\n"
            )
    charts = []
    if n:
        charts.append(
            Chart(
                title="Governance actions per week (audit log)",
                kind="bar",
                unit="actions",
                series=[
                    Series(
                        name="actions",
                        points=[Point(label=w, value=c) for w, c in sorted(weeks.items())],
                    )
                ],
            )
        )
    top = ", ".join(f"{a} {c}" for a, c in actions.most_common(5))
    return Section(
        key="audit",
        title="Audit trail",
        status="included" if n else "empty",
        files=["audit/audit_log.jsonl"],
        summary=[f"{n} audit entries in the period" + (f" ({top})." if top else ".")],
        figures={"audit entries in period": n},
        charts=charts,
    )


def datamap_docs(ctx: ExportContext, out: BundleWriter) -> Section:
    """The ERDs and ownership table, generated from the models now."""
    from govern.datamap.docs import erd, ownership
    from govern.db import DOMAINS, load_models

    md = load_models()
    files = {"docs/ownership.md": ownership(md), "docs/erd/all.dot": erd(md, None, "dot")}
    files["docs/erd/all.mmd"] = erd(md, None, "mermaid")
    for d in DOMAINS:
        files[f"docs/erd/{d}.mmd"] = erd(md, d, "mermaid")
    for path, text in files.items():
        out.add(path, text)
    return Section(
        key="docs",
        title="Data map: ERD and ownership",
        status="included",
        files=list(files),
        summary=["Entity-relationship diagrams per domain and the ownership table."],
    )


def software(ctx: ExportContext, out: BundleWriter) -> Section:
    """A CycloneDX 1.5 SBOM of the installed Python environment."""
    from govern.audit.sbom import sbom

    doc = sbom(ctx.now)
    out.add_json("sbom.cdx.json", doc)
    return Section(
        key="sbom",
        title="Software bill of materials",
        status="included",
        files=["sbom.cdx.json"],
        summary=[f"CycloneDX 1.5 SBOM listing {len(doc['components'])} installed packages."],
        figures={"packages in SBOM": len(doc["components"])},
    )


SECTIONS: list[Callable[[ExportContext, BundleWriter], Section]] = [
    ropa,
    consent,
    dsr,
    retention,
    encryption,
    legal_holds,
    audit_trail,
    datamap_docs,
    software,
]
"""The bundle's sections, in order. Capabilities replace their entry when they land."""
