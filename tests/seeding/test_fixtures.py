"""Fixture files: overlays, deterministic ids, and typed errors that name file, table and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govern.errors import (
    BrokenSeedReferenceError,
    DuplicateSeedKeyError,
    SeedError,
    UnknownDomainError,
)
from govern.seeding import ENVIRONMENTS, load_plan, seed_id
from govern.seeding.fixtures import list_fixture_files, resolve_domains


def _rows(plan, table):  # type: ignore[no-untyped-def]
    return {k: v for t in plan.tables if t.table.name == table for k, v in t.rows}


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return root


SUBJECT = """
[[subjects]]
key = "{key}"
external_ref = "ref-{key}"
"""


@given(st.sampled_from(["core", "commerce"]), st.text(min_size=1), st.text(min_size=1))
def test_seed_ids_are_deterministic_and_distinct(domain: str, a: str, b: str) -> None:
    assert seed_id(domain, "subjects", a) == seed_id(domain, "subjects", a)
    assert (seed_id(domain, "subjects", a) == seed_id(domain, "subjects", b)) == (a == b)
    assert seed_id("core", "t", a) != seed_id("commerce", "t", a)


def test_seed_id_is_pinned() -> None:
    # A row must have the same id on every machine and in every release.
    assert str(seed_id("core", "subjects", "ada")) == "c4190b10-183d-5bf0-b187-4c4acf3f8e4a"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_shipped_fixtures_load_for_every_environment(env: str) -> None:
    plan = load_plan(env)
    assert plan.row_count > 0
    assert plan.files[0] == "seeds/core/base.toml"


def test_shipped_fixtures_hold_no_passwords() -> None:
    for path in list_fixture_files():
        text = path.read_text()
        assert "password" not in text, path


def test_overlays_merge_drop_and_add() -> None:
    base_created = _rows(load_plan("sandbox", ["core"]), "accounts")["svc-reporting"]
    demo = _rows(load_plan("demo", ["core"]), "accounts")
    staging = _rows(load_plan("staging", ["core"]), "accounts")
    assert demo["svc-reporting"]["created_at"] < base_created["created_at"]  # merged
    assert demo["svc-reporting"]["username"] == "svc-reporting"  # kept from base
    assert "svc-etl" in demo
    assert "svc-etl" not in staging  # dropped by the overlay
    assert "svc-deploy" in staging
    assert "svc-deploy" not in demo


def test_references_resolve_to_deterministic_ids() -> None:
    plan = load_plan("demo", ["commerce"])
    assert plan.domains == ("core", "commerce")
    order = _rows(plan, "orders")["ada-1"]
    assert order["subject_id"] == seed_id("core", "subjects", "ada")
    assert order["id"] == seed_id("commerce", "orders", "ada-1")


def test_tables_come_in_dependency_order() -> None:
    names = [t.table.name for t in load_plan("demo").tables]
    assert names.index("subjects") < names.index("accounts")
    assert names.index("subjects") < names.index("orders")
    assert names.index("orders") < names.index("payments") < names.index("refunds")
    assert names.index("posts") < names.index("comments")


def test_broken_reference_names_file_table_and_key(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        "core/demo.toml",
        SUBJECT.format(key="a")
        + '[[accounts]]\nkey = "x"\nsubject_id = { ref = "nobody" }\nusername = "x"\n',
    )
    with pytest.raises(BrokenSeedReferenceError) as err:
        load_plan("demo", ["core"], root=root)
    msg = str(err.value)
    assert "seeds/core/demo.toml" in msg
    assert "accounts" in msg
    assert "'x'" in msg
    assert "'nobody'" in msg


def test_duplicate_key_names_file_table_and_key(tmp_path: Path) -> None:
    root = _write(tmp_path, "core/base.toml", SUBJECT.format(key="a") + SUBJECT.format(key="a"))
    with pytest.raises(DuplicateSeedKeyError, match=r"seeds/core/base.toml: table subjects .*'a'"):
        load_plan("demo", ["core"], root=root)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[accounts]]\nkey = "a"\nusername = "a"\npassword_hash = "x"\n', "never hold passwords"),
        ('[[accounts]]\nkey = "a"\nusername = "a"\npassword = "x"\n', "never hold passwords"),
        ('[[subjects]]\nkey = "a"\nexternal_ref = "a"\nid = "x"\n', "derived from the key"),
        ('[[subjects]]\nkey = "a"\nexternal_ref = "a"\nshoe = 1\n', "unknown column 'shoe'"),
        ('[[nope]]\nkey = "a"\n', "unknown table 'nope'"),
        ('[[orders]]\nkey = "a"\n', "belongs to domain 'commerce'"),
        ('[[audit_log]]\nkey = "a"\n', "no UUID primary key"),
        ('[[subjects]]\nexternal_ref = "a"\n', "no string 'key'"),
        ('[[subjects]]\nkey = "a"\n', "lacks required column 'external_ref'"),
        ('[[subjects]]\nkey = "a"\nexternal_ref = "a"\ncreated_at = 2025-01-01T00:00:00\n', "UTC"),
        ('[[subjects]]\nkey = "a"\nexternal_ref = "a"\nbirth_date = "x"\n', "TOML date"),
        ('[[subjects]]\nkey = "a"\nexternal_ref = 5\n', "must be a string"),
        ("[[subjects]\n", "not valid TOML"),
    ],
)
def test_malformed_fixtures_are_typed_errors(tmp_path: Path, text: str, message: str) -> None:
    root = _write(tmp_path, "core/base.toml", text)
    with pytest.raises(SeedError, match=message):
        load_plan("demo", ["core"], root=root)


def test_unknown_environment_and_domain() -> None:
    with pytest.raises(SeedError, match="unknown environment"):
        load_plan("prod")
    with pytest.raises(UnknownDomainError):
        resolve_domains(["nope"])
