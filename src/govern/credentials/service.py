"""Finding, invalidating and rotating account credentials, in the caller's transaction.

Scanning costs one Argon2 verification per account and demo password (about 20 ms each at
govern's hashing profile): 100 accounts against the shipped list of 12 take about 25 s of
CPU, spread over the machine's cores. Accounts already forced to reset are skipped, since
their hash can no longer be used to log in without a reset.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from govern.audit import record
from govern.credentials.hashing import (
    SCHEME,
    hash_password,
    identify,
    matches,
    random_password,
)
from govern.credentials.schemas import (
    Finding,
    PurgeResult,
    RotatedSecret,
    RotateResult,
    ScanReport,
)
from govern.domains.core import Account
from govern.errors import UnknownAccountError
from govern.events import emit


def demo_passwords() -> list[str]:
    """The shipped list of legacy demo passwords."""
    text = resources.files("govern.credentials").joinpath("demo_passwords.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _check(account: Account, candidates: Sequence[str]) -> list[Finding]:
    out = []
    scheme = identify(account.password_hash, account.password_scheme)
    for pw in candidates:
        if matches(account.password_hash, pw):
            out.append(
                Finding(
                    username=account.username,
                    account_id=str(account.id),
                    kind="demo_password",
                    detail=f"password is on the legacy demo list ({scheme.name})",
                )
            )
            break
    if scheme.outdated:
        out.append(
            Finding(
                username=account.username,
                account_id=str(account.id),
                kind="outdated_scheme",
                detail=scheme.outdated,
            )
        )
    return out


def scan(session: Session, passwords: Sequence[str] | None = None) -> ScanReport:
    """Find accounts using a known demo password or an outdated hash scheme."""
    candidates = list(passwords) if passwords is not None else demo_passwords()
    # Usernames and hashes are encrypted: filter on plain columns, sort in Python.
    accounts = sorted(
        session.scalars(
            select(Account).where(Account.must_reset.is_(False), Account.disabled_at.is_(None))
        ),
        key=lambda a: a.username,
    )
    workers = max(1, min(len(accounts), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda a: _check(a, candidates), accounts))
    findings = [f for per in results for f in per]
    return ScanReport(
        accounts_scanned=len(accounts), demo_passwords_tried=len(candidates), findings=findings
    )


def purge_demo(session: Session, *, actor: str, include_outdated: bool = False) -> PurgeResult:
    """Invalidate accounts with demo passwords (and outdated hashes, if asked).

    The hash is replaced by one of a random password nobody knows and ``must_reset`` is
    set, so the old password stops working at once; each account gets an audit entry and
    a ``govern.credentials.invalidated`` event, in the caller's transaction.
    """
    report = scan(session)
    kinds = {"demo_password", "outdated_scheme"} if include_outdated else {"demo_password"}
    chosen = [f for f in report.findings if f.kind in kinds]
    done: dict[str, Finding] = {}
    for f in chosen:
        if f.account_id in done:
            continue
        account = session.get_one(Account, uuid.UUID(f.account_id))
        account.password_hash = hash_password(random_password())
        account.password_scheme = SCHEME
        account.must_reset = True
        record(
            session,
            actor=actor,
            action="credentials.purge",
            target_type="account",
            target_id=str(account.id),
            details={"reason": f.kind},
        )
        emit(
            session,
            type="govern.credentials.invalidated",
            aggregate_type="account",
            aggregate_id=account.id,
            data={"reason": f.kind, "must_reset": True},
            subject=str(account.subject_id) if account.subject_id else None,
        )
        done[f.account_id] = f
    session.flush()
    return PurgeResult(invalidated=list(done.values()))


def rotate(session: Session, *, actor: str, usernames: Sequence[str] | None = None) -> RotateResult:
    """Give service accounts (all, or the named ones) new random passwords.

    The new secrets are in the result, and nowhere else: not in the audit log, not in logs.
    """
    if usernames:
        wanted = set(usernames)  # usernames are encrypted: match after decryption
        accounts = [a for a in session.scalars(select(Account)) if a.username in wanted]
    else:
        accounts = list(session.scalars(select(Account).where(Account.is_service.is_(True))))
    accounts.sort(key=lambda a: a.username)
    if usernames:
        found = {a.username for a in accounts}
        missing = sorted(set(usernames) - found)
        if missing:
            raise UnknownAccountError(f"no account named {missing[0]!r}")
        humans = [a.username for a in accounts if not a.is_service]
        if humans:
            raise UnknownAccountError(f"{humans[0]!r} is not a service account")
    rotated = []
    for account in accounts:
        secret = random_password()
        account.password_hash = hash_password(secret)
        account.password_scheme = SCHEME
        account.must_reset = False
        record(
            session,
            actor=actor,
            action="credentials.rotate",
            target_type="account",
            target_id=str(account.id),
            details={"scheme": SCHEME},
        )
        emit(
            session,
            type="govern.credentials.rotated",
            aggregate_type="account",
            aggregate_id=account.id,
            data={"scheme": SCHEME},
        )
        rotated.append(RotatedSecret(username=account.username, secret=secret))
    session.flush()
    return RotateResult(rotated=rotated)
