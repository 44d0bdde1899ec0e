"""Every revision of every domain: upgrade, downgrade, upgrade again; schemas must match."""

from __future__ import annotations

import pytest
from alembic import command

from govern.db import DOMAINS
from govern.migrations import alembic_config, check, history, upgrade
from govern.migrations.api import _script, domain_chain
from tests.helpers import schema_snapshot


def _ordered_revisions() -> list[tuple[str, str]]:
    sd = _script(alembic_config("sqlite://"))
    return [(d, r.revision) for d in DOMAINS for r in domain_chain(sd, d)]


REVISIONS = _ordered_revisions()


def test_every_domain_has_revisions() -> None:
    assert {d for d, _ in REVISIONS} == set(DOMAINS)


def test_stairway(empty_url: str) -> None:
    cfg = alembic_config(empty_url)
    for domain, rev in REVISIONS:
        before = schema_snapshot(empty_url)
        command.upgrade(cfg, rev)
        after = schema_snapshot(empty_url)
        assert before != after, f"{rev} changed nothing"
        prev = [r for d, r in REVISIONS[: REVISIONS.index((domain, rev))] if d == domain]
        command.downgrade(cfg, prev[-1] if prev else f"{domain}@base")
        assert before == schema_snapshot(empty_url), f"downgrade of {rev} left changes"
        command.upgrade(cfg, rev)
        assert after == schema_snapshot(empty_url), f"re-upgrade of {rev} differs"


def test_models_match_migrated_schema(migrated_url: str) -> None:
    assert check(migrated_url).findings == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_history_lists_domain_base_first(domain: str) -> None:
    revs = history(None, domain).revisions
    assert revs[0].down_revision is None
    assert {r.domain for r in revs} == {domain}


def test_plain_alembic_upgrade_matches_govern(empty_url: str, migrated_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "heads")
    assert schema_snapshot(migrated_url) == schema_snapshot(empty_url)
    assert check(empty_url).findings == []
    assert upgrade(empty_url).steps == []
