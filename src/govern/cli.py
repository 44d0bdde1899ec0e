"""The ``govern`` command line: parse, build Settings, call govern.command, render, exit.

Exit status: 0 success, 1 a check found problems, 2 bad usage or input. A user's
mistake is one line on stderr and no traceback (``--traceback`` shows one).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from govern import command
from govern.errors import GovernError

Handler = Callable[[argparse.Namespace, Any], Any]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


_ROWS_PER_TX = (
    "Run consecutive steps in one transaction while their planned rows add up to at most N"
    " (0: each step with work alone; default GOVERN_DSR_ROWS_PER_TRANSACTION, 1000)."
)


def _help(fn: Callable[..., Any]) -> str:
    return (fn.__doc__ or "").strip().splitlines()[0]


def _common() -> argparse.ArgumentParser:
    p = _Parser(add_help=False)
    p.add_argument("--json", action="store_true", help="Print one JSON document on stdout.")
    p.add_argument("--traceback", action="store_true", help="Show a traceback on errors.")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog="govern",
        description="Data governance and GDPR consent for your database.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"govern {_version()}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    top.required = True

    def leaf(sub: Any, name: str, fn: Callable[..., Any], handler: Handler) -> _Parser:
        p: _Parser = sub.add_parser(name, help=_help(fn), description=_help(fn), parents=[common])
        p.set_defaults(handler=handler, fn=fn)
        return p

    leaf(top, "quickstart", command.quickstart, lambda a, s: command.quickstart(s))
    leaf(top, "doctor", command.doctor, lambda a, s: command.doctor(s))

    mig = top.add_parser("migrate", help="Run and inspect the domain migrations.")
    msub = mig.add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True)
    p = leaf(msub, "up", command.migrate_up, lambda a, s: command.migrate_up(s, a.domain, a.to))
    p.add_argument("--domain", action="append", help="A domain to upgrade (repeatable).")
    p.add_argument("--to", help="Target revision (with at most one --domain).")
    p = leaf(
        msub,
        "down",
        command.migrate_down,
        lambda a, s: command.migrate_down(s, a.domain, a.to, a.cascade),
    )
    p.add_argument("--domain", required=True, help="The domain to roll back.")
    p.add_argument("--to", help="A revision of that domain, or 'base' (default: one revision).")
    p.add_argument(
        "--cascade", action="store_true", help="Also roll back domains that depend on it."
    )
    leaf(msub, "status", command.migrate_status, lambda a, s: command.migrate_status(s))
    p = leaf(
        msub, "history", command.migrate_history, lambda a, s: command.migrate_history(s, a.domain)
    )
    p.add_argument("--domain", help="Only this domain.")
    p = leaf(msub, "sql", command.migrate_sql, lambda a, s: command.migrate_sql(s, a.domain))
    p.add_argument("--domain", action="append", help="A domain to include (repeatable).")
    leaf(msub, "check", command.migrate_check, lambda a, s: command.migrate_check(s))

    docs = top.add_parser("docs", help="Generate ERDs and ownership documentation.")
    dsub = docs.add_subparsers(
        dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True
    )
    p = leaf(dsub, "erd", command.docs_erd, lambda a, s: command.docs_erd(s, a.domain, a.format))
    p.add_argument("--domain", help="Only this domain (and the tables its keys reach).")
    p.add_argument("--format", default="mermaid", help="mermaid (default) or dot.")
    leaf(dsub, "ownership", command.docs_ownership, lambda a, s: command.docs_ownership(s))
    p = leaf(dsub, "write", command.docs_write, lambda a, s: command.docs_write(s, a.root))
    p.add_argument("--root", default=".", help="The checkout to write into (default: here).")

    cfg = top.add_parser("config", help="Inspect settings.")
    csub = cfg.add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True)
    leaf(csub, "show", command.config_show, lambda a, s: command.config_show(s))
    leaf(csub, "example", command.config_example, lambda a, s: command.config_example(s))

    hold = top.add_parser("hold", help="Place, release and list legal holds.")
    hsub = hold.add_subparsers(
        dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True
    )
    p = leaf(
        hsub,
        "add",
        command.hold_add,
        lambda a, s: command.hold_add(s, a.subject, a.reason, a.by, a.case),
    )
    p.add_argument("--subject", action="append", required=True, help="Subject id (repeatable).")
    p.add_argument("--reason", required=True, help="The legal ground for the hold.")
    p.add_argument("--by", required=True, help="Who places the hold.")
    p.add_argument("--case", help="A case reference covering several subjects.")
    p = leaf(
        hsub,
        "release",
        command.hold_release,
        lambda a, s: command.hold_release(s, a.hold_id, a.by, a.note),
    )
    p.add_argument("hold_id", metavar="HOLD_ID")
    p.add_argument("--by", required=True, help="Who releases the hold.")
    p.add_argument("--note", help="Why the hold is lifted.")
    p = leaf(hsub, "list", command.hold_list, lambda a, s: command.hold_list(s, a.all, a.subject))
    p.add_argument("--all", action="store_true", help="Include released holds.")
    p.add_argument("--subject", help="Only holds covering this subject.")

    dsr = top.add_parser("dsr", help="Data-subject requests: intake, deadlines, processing.")
    rsub = dsr.add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True)
    p = leaf(
        rsub,
        "submit",
        command.dsr_submit,
        lambda a, s: command.dsr_submit(
            s,
            a.type,
            a.by,
            a.email,
            a.subject,
            a.external_ref,
            a.jurisdiction,
            a.channel,
            a.correct or (),
            a.verified,
            a.code_out,
            a.purpose or (),
        ),
    )
    p.add_argument(
        "type",
        metavar="TYPE",
        help="access, portability, erasure, rectification, restriction, objection.",
    )
    p.add_argument("--by", required=True, help="Who records the request (operator or channel).")
    p.add_argument("--email", help="The requester's email address.")
    p.add_argument("--subject", help="The requester's subject id.")
    p.add_argument("--external-ref", help="The requester's id in the host service.")
    p.add_argument("--jurisdiction", default="gdpr", help="gdpr (default) or ccpa.")
    p.add_argument("--channel", default="web", help="How the request arrived (web, email, ...).")
    p.add_argument(
        "--correct", action="append", help="Rectification: table.column=value (repeatable)."
    )
    p.add_argument(
        "--purpose",
        action="append",
        help="Objection: a consent purpose objected to (repeatable; none: every purpose).",
    )
    p.add_argument("--verified", action="store_true", help="Identity already verified at intake.")
    p.add_argument("--code-out", help="Write the one-time verification code to this file (0600).")
    p = leaf(
        rsub,
        "verify",
        command.dsr_verify,
        lambda a, s: command.dsr_verify(s, a.request_id, a.by, a.code, a.resend_to),
    )
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--by", required=True, help="Who checks the code.")
    p.add_argument("--code", help="The code the requester sent back.")
    p.add_argument("--resend-to", help="Issue a new code into this file instead.")
    p = leaf(
        rsub,
        "list",
        command.dsr_list,
        lambda a, s: command.dsr_list(s, a.state, a.type, a.due_within, a.overdue),
    )
    p.add_argument("--state", help="Only requests in this state.")
    p.add_argument("--type", help="Only requests of this type.")
    p.add_argument(
        "--due-within", type=int, metavar="DAYS", help="Open requests due within N days."
    )
    p.add_argument("--overdue", action="store_true", help="Open requests past their deadline.")
    p = leaf(rsub, "show", command.dsr_show, lambda a, s: command.dsr_show(s, a.request_id))
    p.add_argument("request_id", metavar="REQUEST_ID")
    p = leaf(
        rsub,
        "approve",
        command.dsr_approve,
        lambda a, s: command.dsr_approve(s, a.request_id, a.by, a.reason),
    )
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--by", required=True, help="Who approves.")
    p.add_argument("--reason", help="Why (recorded).")
    p = leaf(
        rsub,
        "confirm",
        command.dsr_confirm,
        lambda a, s: command.dsr_confirm(s, a.request_id, a.step, a.by, a.note),
    )
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument(
        "--step", type=int, required=True, metavar="SEQ", help="The manual step's number."
    )
    p.add_argument("--by", required=True, help="Who did the manual work.")
    p.add_argument("--note", help="What was done (kept in the audit log).")
    p = leaf(
        rsub,
        "deny",
        command.dsr_deny,
        lambda a, s: command.dsr_deny(s, a.request_id, a.by, a.reason),
    )
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--by", required=True, help="Who denies.")
    p.add_argument("--reason", required=True, help="Why (recorded and told to the subject).")
    p = leaf(
        rsub,
        "extend",
        command.dsr_extend,
        lambda a, s: command.dsr_extend(s, a.request_id, a.by, a.reason),
    )
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--by", required=True, help="Who extends.")
    p.add_argument("--reason", required=True, help="Why more time is needed (told to the subject).")
    p = leaf(rsub, "plan", command.dsr_plan, lambda a, s: command.dsr_plan(s, a.request_id))
    p.add_argument("request_id", metavar="REQUEST_ID")
    p = leaf(
        rsub,
        "process",
        command.dsr_process,
        lambda a, s: command.dsr_process(s, a.request_id, a.worker, a.rows_per_transaction),
    )
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--worker", help="Worker name recorded on steps (default host:pid).")
    p.add_argument("--rows-per-transaction", type=int, metavar="N", help=_ROWS_PER_TX)
    p = leaf(
        rsub,
        "work",
        command.dsr_work,
        lambda a, s: command.dsr_work(s, a.once, a.worker, a.limit, a.rows_per_transaction),
    )
    p.add_argument("--once", action="store_true", help="Stop when the queue is empty.")
    p.add_argument("--worker", help="Worker name recorded on steps (default host:pid).")
    p.add_argument("--limit", type=int, help="Stop after this many requests.")
    p.add_argument("--rows-per-transaction", type=int, metavar="N", help=_ROWS_PER_TX)
    p = leaf(
        rsub, "export", command.dsr_export, lambda a, s: command.dsr_export(s, a.request_id, a.out)
    )
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--out", help="Copy the package (zip) to this file.")
    p = leaf(rsub, "report", command.dsr_report, lambda a, s: command.dsr_report(s, a.days))
    p.add_argument("--days", type=int, help="Only requests received in the last N days.")
    leaf(rsub, "map", command.dsr_map, lambda a, s: command.dsr_map(s))
    _retention(top, leaf)

    keys = top.add_parser("keys", help="Manage encryption keys.")
    ksub = keys.add_subparsers(
        dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True
    )
    leaf(ksub, "generate-kek", command.keys_generate_kek, lambda a, s: command.keys_generate_kek(s))

    # --- seeds, credentials and the audit bundle (issue 8) ---
    p = leaf(
        top,
        "seed",
        command.seed,
        lambda a, s: (
            command.seed_generate_events(s, a.count, a.seed, a.days)
            if a.sub == "generate-events"
            else command.seed(s, a.domain, a.env, a.scale)
        ),
    )
    p.add_argument("--domain", action="append", help="A domain to seed (repeatable; default all).")
    p.add_argument("--env", default="demo", help="demo (default), sandbox or staging.")
    p.add_argument(
        "--scale", type=int, help="Also generate this many analytics events (not idempotent)."
    )
    ssub = p.add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=_Parser)
    g = leaf(ssub, "generate-events", command.seed_generate_events, p.get_default("handler"))
    g.add_argument("count", type=int, metavar="COUNT")
    g.add_argument("--seed", type=int, default=0, help="Random seed (default 0).")
    g.add_argument("--days", type=int, default=90, help="Spread over this many days (default 90).")

    cred = top.add_parser("credentials", help="Scan, purge and rotate account credentials.")
    crsub = cred.add_subparsers(
        dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True
    )
    leaf(crsub, "scan", command.credentials_scan, lambda a, s: command.credentials_scan(s))
    p = leaf(
        crsub,
        "purge-demo",
        command.credentials_purge_demo,
        lambda a, s: command.credentials_purge_demo(s, a.by, a.outdated),
    )
    p.add_argument("--by", default="govern-cli", help="Who purges (for the audit log).")
    p.add_argument("--outdated", action="store_true", help="Also invalidate outdated hash schemes.")
    p = leaf(
        crsub,
        "rotate",
        command.credentials_rotate,
        lambda a, s: command.credentials_rotate(s, a.by, a.account),
    )
    p.add_argument("--by", default="govern-cli", help="Who rotates (for the audit log).")
    p.add_argument("--account", action="append", help="A service account (repeatable).")

    aud = top.add_parser("audit", help="Export and verify signed audit bundles.")
    asub = aud.add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True)
    p = leaf(
        asub,
        "export",
        command.audit_export,
        lambda a, s: command.audit_export(s, a.out, a.date_from, a.date_to),
    )
    p.add_argument("--out", required=True, help="The bundle to write (FILE.zip).")
    p.add_argument("--from", dest="date_from", help="Start of the period (date or date-time).")
    p.add_argument("--to", dest="date_to", help="End of the period (inclusive date).")
    p = leaf(
        asub,
        "verify",
        command.audit_verify,
        lambda a, s: command.audit_verify(s, a.path, a.public_key),
    )
    p.add_argument("path", metavar="FILE.zip")
    p.add_argument("--public-key", help="The signer's public key (base64) to pin.")
    leaf(asub, "keygen", command.audit_keygen, lambda a, s: command.audit_keygen(s))
    cdc = top.add_parser("cdc", help="Relay the event outbox to sinks and inspect them.")
    cdsub = cdc.add_subparsers(
        dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True
    )
    p = leaf(
        cdsub,
        "relay",
        command.cdc_relay,
        lambda a, s: command.cdc_relay(
            s, a.sink, a.follow, a.batch_size, a.lease_seconds, a.interval
        ),
    )
    p.add_argument("--sink", help="Only this sink (default: every configured sink).")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="Drain once and exit (default).")
    mode.add_argument("--follow", action="store_true", help="Keep relaying until interrupted.")
    p.add_argument("--batch-size", type=int, default=1000, help="Events per batch.")
    p.add_argument(
        "--lease-seconds", type=float, default=30.0, help="How long a sink's lease lasts."
    )
    p.add_argument("--interval", type=float, default=1.0, help="Seconds between polls (--follow).")
    leaf(cdsub, "status", command.cdc_status, lambda a, s: command.cdc_status(s))
    p = leaf(
        cdsub,
        "replay",
        command.cdc_replay,
        lambda a, s: command.cdc_replay(s, a.sink, getattr(a, "from")),
    )
    p.add_argument("--sink", required=True, help="The sink to rewind.")
    p.add_argument("--from", type=int, required=True, help="The first outbox id to deliver again.")
    # Keys and encryption (issue 3) -------------------------------------------------------
    leaf(ksub, "list", command.keys_list, lambda a, s: command.keys_list(s))
    leaf(ksub, "rotate", command.keys_rotate, lambda a, s: command.keys_rotate(s))
    p = leaf(ksub, "reencrypt", command.keys_reencrypt, _reencrypt)
    p.add_argument(
        "--batch-size", type=int, default=1000, help="Values per committed batch (default 1000)."
    )
    p.add_argument(
        "--pause",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="Sleep between committed batches, to spare a busy database (0-3600, default 0).",
    )
    p = leaf(ksub, "retire", command.keys_retire, lambda a, s: command.keys_retire(s, a.key_id))
    p.add_argument("key_id", metavar="KEY", type=int, help="The id of the data key to retire.")
    leaf(ksub, "rewrap", command.keys_rewrap, lambda a, s: command.keys_rewrap(s))
    scan = top.add_parser("scan", help="Check protection of personal data.")
    ssub = scan.add_subparsers(
        dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True
    )
    p = leaf(
        ssub,
        "encryption",
        command.scan_encryption,
        lambda a, s: command.scan_encryption(s, a.sample),
    )
    p.add_argument(
        "--sample", type=int, default=200, help="Newest values per column to decrypt (default 200)."
    )
    leaf(
        ksub,
        "generate-consent-key",
        command.keys_generate_consent_key,
        lambda a, s: command.keys_generate_consent_key(s),
    )
    _consent_commands(top, leaf)
    return parser


def _reencrypt(args: argparse.Namespace, settings: Any) -> Any:
    """``keys reencrypt`` with a rich progress bar on a terminal, silent when piped."""
    if args.json or not sys.stderr.isatty():
        return command.keys_reencrypt(settings, args.batch_size, pause=args.pause)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("re-sealing values", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return command.keys_reencrypt(settings, args.batch_size, progress, args.pause)


def _record_args(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "notice_version": a.notice_version,
        "locale": a.locale,
        "method": a.method,
        "jurisdiction": a.jurisdiction,
        "at": a.at,
        "expires": a.expires,
        "tcf": a.tcf,
        "idempotency_key": a.idempotency_key,
        "subject_id": a.subject_id,
        "source_ip": a.source_ip,
        "user_agent": a.user_agent,
    }


def _consent_commands(top: Any, leaf: Callable[..., _Parser]) -> None:
    con = top.add_parser("consent", help="Record, check, verify and export consent decisions.")
    csub = con.add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True)
    p = leaf(csub, "load", command.consent_load, lambda a, s: command.consent_load(s, a.file))
    p.add_argument("file", help="A TOML or JSON file with notices and purposes.")
    leaf(csub, "purposes", command.consent_purposes, lambda a, s: command.consent_purposes(s))
    p = leaf(
        csub,
        "notice",
        command.consent_notice,
        lambda a, s: command.consent_notice(s, a.notice, a.locale, a.version),
    )
    p.add_argument("notice", help="The notice key.")
    p.add_argument("--locale", help="Locale to show (falls back: fr-CA, fr, default).")
    p.add_argument("--version", type=int, help="Notice version (default: current).")
    for name, fn in (("grant", command.consent_grant), ("withdraw", command.consent_withdraw)):
        p = leaf(
            csub,
            name,
            fn,
            lambda a, s, fn=fn: fn(s, a.subject, a.purpose, **_record_args(a)),
        )
        p.add_argument("--subject", required=True, help="Pseudonymous subject reference.")
        p.add_argument("--purpose", required=True, help="Purpose key.")
        p.add_argument(
            "--notice-version", type=int, help="Notice version shown (default: current)."
        )
        p.add_argument("--locale", help="Locale requested; the text actually shown is recorded.")
        p.add_argument(
            "--method",
            default="api",
            help="web_form, mobile_app, api (default), import or gpc.",
        )
        p.add_argument("--jurisdiction", help="ISO 3166 code, e.g. FR or US-CA.")
        p.add_argument("--at", help="Event time, ISO-8601 with timezone (default: now).")
        p.add_argument("--expires", help="Expiry, ISO-8601 with timezone.")
        p.add_argument("--tcf", help="IAB TCF v2 TC string, stored verbatim.")
        p.add_argument("--idempotency-key", help="Client key; a repeat is refused.")
        p.add_argument("--subject-id", help="govern subject UUID whose key seals IP and agent.")
        p.add_argument("--source-ip", help="Source IP address (sealed; needs GOVERN_KEK).")
        p.add_argument("--user-agent", help="User agent (sealed; needs GOVERN_KEK).")
    p = leaf(
        csub,
        "gpc",
        command.consent_gpc,
        lambda a, s: command.consent_gpc(s, a.subject, a.jurisdiction, a.at),
    )
    p.add_argument("--subject", required=True, help="Pseudonymous subject reference.")
    p.add_argument("--jurisdiction", help="ISO 3166 code, e.g. US-CA.")
    p.add_argument("--at", help="Signal time, ISO-8601 with timezone (default: now).")
    p = leaf(
        csub,
        "check",
        command.consent_check,
        lambda a, s: command.consent_check(s, a.subject, a.purpose, a.at),
    )
    p.add_argument("--subject", required=True, help="Pseudonymous subject reference.")
    p.add_argument("--purpose", required=True, help="Purpose key.")
    p.add_argument("--at", help="Answer for this past moment (ISO-8601 with timezone).")
    p = leaf(
        csub,
        "history",
        command.consent_history,
        lambda a, s: command.consent_history(s, a.subject, a.purpose),
    )
    p.add_argument("--subject", required=True, help="Pseudonymous subject reference.")
    p.add_argument("--purpose", help="Only this purpose.")
    leaf(csub, "expire", command.consent_expire, lambda a, s: command.consent_expire(s))
    leaf(csub, "checkpoint", command.consent_checkpoint, lambda a, s: command.consent_checkpoint(s))
    leaf(csub, "verify", command.consent_verify, lambda a, s: command.consent_verify(s))
    p = leaf(
        csub,
        "export",
        command.consent_export,
        lambda a, s: command.consent_export(s, a.format, a.output, a.subject, a.since, a.until),
    )
    p.add_argument("--format", default="kantara", help="kantara (default), iso27560 or csv.")
    p.add_argument("--output", required=True, help="File to write (streamed).")
    p.add_argument("--subject", help="Only this subject.")
    p.add_argument("--since", help="Records appended at or after (ISO-8601 with timezone).")
    p.add_argument("--until", help="Records appended before (ISO-8601 with timezone).")


def _retention(top: Any, leaf: Callable[..., _Parser]) -> None:
    """``govern retention ...``: policies, sign-off, simulation, runs, rollback, scheduler."""
    ret = top.add_parser("retention", help="Retention policies: plan, approve, run, roll back.")
    rsub = ret.add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=_Parser, required=True)

    def policies_opt(p: _Parser) -> None:
        p.add_argument("--policies", help="Policy file (TOML); default GOVERN_RETENTION_POLICIES.")

    p = leaf(
        rsub, "list", command.retention_list, lambda a, s: command.retention_list(s, a.policies)
    )
    policies_opt(p)
    p = leaf(
        rsub,
        "show",
        command.retention_show,
        lambda a, s: command.retention_show(s, a.policy, a.policies),
    )
    p.add_argument("policy", metavar="POLICY")
    policies_opt(p)
    p = leaf(
        rsub,
        "plan",
        command.retention_plan,
        lambda a, s: command.retention_plan(s, a.policy, a.policies),
    )
    p.add_argument("--policy", help="Only this policy.")
    policies_opt(p)
    p = leaf(
        rsub,
        "approve",
        command.retention_approve,
        lambda a, s: command.retention_approve(s, a.policy, a.by, a.note, a.policies),
    )
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("--by", required=True, help="Who signs off this version.")
    p.add_argument("--note", help="A remark recorded with the approval.")
    policies_opt(p)
    p = leaf(
        rsub,
        "run",
        command.retention_run,
        lambda a, s: command.retention_run(
            s,
            a.policy,
            a.by,
            a.override,
            a.override_by,
            a.policies,
            show_progress=not a.json and sys.stderr.isatty(),
        ),
    )
    p.add_argument("--policy", help="Only this policy (default: every approved policy).")
    p.add_argument("--by", default="cli", help="Who runs it (recorded).")
    p.add_argument("--override", metavar="REASON", help="Run despite a tripped safety limit.")
    p.add_argument("--override-by", metavar="NAME", help="Who takes responsibility for it.")
    policies_opt(p)
    p = leaf(
        rsub,
        "runs",
        command.retention_runs,
        lambda a, s: command.retention_runs(s, a.policy, a.limit),
    )
    p.add_argument("--policy", help="Only this policy.")
    p.add_argument("--limit", type=int, default=20, help="How many (default 20).")
    p = leaf(
        rsub,
        "rollback",
        command.retention_rollback,
        lambda a, s: command.retention_rollback(s, a.run_id, a.by),
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--by", required=True, help="Who rolls it back (recorded).")
    p = leaf(
        rsub,
        "purge-quarantine",
        command.retention_purge_quarantine,
        lambda a, s: command.retention_purge_quarantine(s, a.by, a.run),
    )
    p.add_argument("--by", default="cli", help="Who purges (recorded).")
    p.add_argument("--run", help="Purge this run's rows now, window or not (e.g. an archive).")
    p = leaf(
        rsub,
        "docs",
        command.retention_docs,
        lambda a, s: command.retention_docs(s, a.output, a.policies),
    )
    p.add_argument("--output", help="Write to this file instead of stdout.")
    policies_opt(p)
    p = leaf(
        rsub, "alerts", command.retention_alerts, lambda a, s: command.retention_alerts(s, a.limit)
    )
    p.add_argument("--limit", type=int, default=50, help="How many (default 50).")
    p = leaf(
        rsub,
        "schedule",
        command.retention_schedule,
        lambda a, s: command.retention_schedule(s, a.seconds, a.policies),
    )
    p.add_argument("--for", dest="seconds", type=float, help="Stop after this many seconds.")
    policies_opt(p)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("govern")
    except PackageNotFoundError:
        return "unknown"


def render(result: Any, as_json: bool) -> str:
    if as_json:
        data = result.model_dump(mode="json") if hasattr(result, "model_dump") else result
        return json.dumps(data, indent=2, sort_keys=False)
    return "\n".join(result.text_lines())


def exit_status(result: Any) -> int:
    ok = getattr(result, "ok", True)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="govern: %(levelname)s %(message)s")
    try:
        from govern.config import load_settings

        settings = load_settings()
        result = args.handler(args, settings)
    except GovernError as exc:
        if args.traceback:
            raise
        print(f"govern: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("govern: interrupted", file=sys.stderr)
        return 130
    print(render(result, args.json))
    return exit_status(result)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
