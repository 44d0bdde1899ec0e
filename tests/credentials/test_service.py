"""Scan, purge and rotate on real databases: planted demo passwords are found and fixed."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from govern.credentials import hash_password, matches, purge_demo, rotate, scan
from govern.db import transaction
from govern.domains.core import Account, AuditLog
from govern.errors import UnknownAccountError
from govern.events.models import OutboxEvent
from govern.seeding import seed, seed_id
from tests.helpers import keyed_engine


@pytest.fixture
def seeded(migrated_url: str) -> str:
    engine = keyed_engine(migrated_url)
    with transaction(engine) as session:
        seed(session, "staging", ["core"])
    engine.dispose()
    return migrated_url


def _plant(url: str) -> None:
    engine = keyed_engine(url)
    with transaction(engine) as session:
        smoke = session.get_one(Account, seed_id("core", "accounts", "smoke-1"))
        smoke.password_hash = hash_password("changeme")
        deploy = session.get_one(Account, seed_id("core", "accounts", "svc-deploy"))
        deploy.password_hash = hashlib.sha1(b"a private passphrase").hexdigest()  # noqa: S324
        deploy.password_scheme = "sha1"
    engine.dispose()


def test_scan_and_purge_find_a_bcrypt_demo_password(seeded: str) -> None:
    import bcrypt

    engine = keyed_engine(seeded)
    with transaction(engine) as session:
        smoke = session.get_one(Account, seed_id("core", "accounts", "smoke-1"))
        smoke.password_hash = bcrypt.hashpw(b"changeme", bcrypt.gensalt(rounds=12)).decode()
        smoke.password_scheme = "bcrypt"
    with transaction(engine) as session:
        report = scan(session)
    with transaction(engine) as session:
        purge_demo(session, actor="secops")
    with transaction(engine) as session:
        after = session.get_one(Account, seed_id("core", "accounts", "smoke-1"))
        assert after.must_reset
        assert not matches(after.password_hash, "changeme")
    engine.dispose()
    assert [(f.username, f.kind) for f in report.findings] == [("smoke-1", "demo_password")]
    assert "bcrypt" in report.findings[0].detail


def test_clean_seed_scans_clean(seeded: str) -> None:
    engine = keyed_engine(seeded)
    with transaction(engine) as session:
        report = scan(session)
    engine.dispose()
    assert (report.ok, report.accounts_scanned) == (True, 3)


def test_scan_finds_planted_demo_password_and_weak_scheme(seeded: str) -> None:
    _plant(seeded)
    engine = keyed_engine(seeded)
    with transaction(engine) as session:
        report = scan(session)
    engine.dispose()
    assert not report.ok
    assert sorted((f.username, f.kind) for f in report.findings) == [
        ("smoke-1", "demo_password"),
        ("svc-deploy", "outdated_scheme"),
    ]
    assert "changeme" not in report.model_dump_json()


@pytest.mark.parametrize("include_outdated", [False, True])
def test_purge_invalidates_and_audits(seeded: str, include_outdated: bool) -> None:
    _plant(seeded)
    engine = keyed_engine(seeded)
    with transaction(engine) as session:
        result = purge_demo(session, actor="secops", include_outdated=include_outdated)
    with transaction(engine) as session:
        smoke = session.get_one(Account, seed_id("core", "accounts", "smoke-1"))
        deploy = session.get_one(Account, seed_id("core", "accounts", "svc-deploy"))
        audits = list(
            session.scalars(select(AuditLog).where(AuditLog.action == "credentials.purge"))
        )
        events = list(
            session.scalars(
                select(OutboxEvent).where(OutboxEvent.type == "govern.credentials.invalidated")
            )
        )
        after = scan(session)
    engine.dispose()
    purged = {f.username for f in result.invalidated}
    assert purged == ({"smoke-1", "svc-deploy"} if include_outdated else {"smoke-1"})
    assert smoke.must_reset
    assert not matches(smoke.password_hash, "changeme")
    assert deploy.must_reset is include_outdated
    assert {a.actor for a in audits} == {"secops"}
    assert len(audits) == len(purged)
    assert sorted(e.aggregateid for e in events) == sorted(a.target_id for a in audits)
    assert after.ok is include_outdated


def test_rotate_service_accounts(seeded: str) -> None:
    engine = keyed_engine(seeded)
    with transaction(engine) as session:
        result = rotate(session, actor="ops")
    with transaction(engine) as session:
        accounts = {a.username: a for a in session.scalars(select(Account))}
        details = [a.details for a in session.scalars(select(AuditLog))]
    engine.dispose()
    assert sorted(r.username for r in result.rotated) == ["svc-deploy", "svc-reporting"]
    for r in result.rotated:
        assert matches(accounts[r.username].password_hash, r.secret)
        assert r.secret not in str(details)


def test_rotate_named_accounts_only(seeded: str) -> None:
    engine = keyed_engine(seeded)
    with transaction(engine) as session:
        assert [
            r.username for r in rotate(session, actor="ops", usernames=["svc-deploy"]).rotated
        ] == ["svc-deploy"]
        with pytest.raises(UnknownAccountError, match="not a service account"):
            rotate(session, actor="ops", usernames=["smoke-1"])
        with pytest.raises(UnknownAccountError, match="no account named 'ghost'"):
            rotate(session, actor="ops", usernames=["ghost"])
    engine.dispose()
