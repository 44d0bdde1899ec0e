"""Governance metadata: every personal-looking column has a category; every table an owner."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import JSON, Date, Text

from govern.datamap import data_map, governed, personal
from govern.db import DOMAINS, load_models

PERSONAL_NAME = re.compile(
    r"email|phone|name$|_name|address|birth|^ip|user_agent|device|card|iban|bank|account$|"
    r"password|username|body|notes|reason|properties|url|referrer|vat|tax|balance|external_(id|ref)"
)
NOT_PERSONAL = {
    ("communities", "name"),  # a community's name, not a person's
    ("subject_identities", "provider"),
}

TABLES = list(load_models().tables.values())


def _columns():  # type: ignore[no-untyped-def]
    for table in TABLES:
        for col in table.columns:
            yield table, col


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_every_table_is_governed(table) -> None:  # type: ignore[no-untyped-def]
    info = table.info
    assert info["domain"] in DOMAINS
    assert info["owner"]
    assert info["steward"]
    assert info["description"]


def test_columns_that_look_personal_have_categories() -> None:
    missing = []
    for table, col in _columns():
        if (table.name, col.name) in NOT_PERSONAL or col.foreign_keys or col.primary_key:
            continue
        looks = PERSONAL_NAME.search(col.name) or isinstance(col.type, JSON | Text | Date)
        declared = col.info.get("categories") or col.info.get("not_personal")
        if looks and not declared and not col.name.endswith("_at"):
            missing.append(f"{table.name}.{col.name}")
    assert missing == []


def test_categories_are_dotted_taxonomy_keys() -> None:
    for _, col in _columns():
        for cat in col.info.get("categories", []):
            assert re.fullmatch(r"user(\.[a-z_]+)+", cat), cat


def test_subject_links_name_real_columns() -> None:
    md = load_models()
    for entry in data_map(md):
        link = entry.subject_link
        if link is None:
            continue
        first = link.split("->")[0].strip()
        assert first in md.tables[entry.name].columns, (entry.name, link)
        if "->" in link:
            table, column = link.split("->")[1].strip().split(".")
            assert column in md.tables[table].columns


def test_data_map_lists_financial_columns() -> None:
    entries = {e.name: e for e in data_map()}
    financial = {c.name for c in entries["payments"].columns if c.is_financial}
    assert {"card_number", "bank_account"} == financial


@pytest.mark.parametrize("bad", ["", "email", "user.", "user contact"])
def test_personal_refuses_bad_categories(bad: str) -> None:
    with pytest.raises(ValueError, match=r"taxonomy|at least one"):
        personal(*([bad] if bad else []))


def test_governed_shape() -> None:
    info = governed(owner="o", steward="s", subject_link=None, description="d")
    assert info == {"owner": "o", "steward": "s", "subject_link": None, "description": "d"}


def test_not_personal_needs_a_reason() -> None:
    from govern.datamap import not_personal

    assert not_personal("codes") == {"not_personal": "codes"}
    with pytest.raises(ValueError, match="reason"):
        not_personal("  ")


def test_pseudonymous_references_are_declared_not_hidden() -> None:
    from govern.datamap import PSEUDONYMOUS

    entries = {e.name: e for e in data_map()}
    ref = next(c for c in entries["consent_records"].columns if c.name == "subject_ref")
    assert (ref.categories, ref.protection) == ((PSEUDONYMOUS,), "pseudonymous")
    email = next(c for c in entries["subjects"].columns if c.name == "email")
    assert email.protection == "encrypted+blind-index"
