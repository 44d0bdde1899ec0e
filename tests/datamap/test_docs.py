"""Generated documents: committed copies are current; ERDs cover every table."""

from __future__ import annotations

from pathlib import Path

import pytest

from govern.command import generated_docs
from govern.datamap.docs import erd, ownership
from govern.db import DOMAINS, load_models
from govern.errors import UnknownDomainError, UsageError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("rel", sorted(generated_docs()))
def test_committed_document_is_current(rel: str) -> None:
    path = ROOT / rel
    assert path.exists(), f"{rel} missing: run `govern docs write`"
    assert generated_docs()[rel] == path.read_text(encoding="utf-8"), (
        f"{rel} stale: run `govern docs write`"
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_erd_draws_its_tables_and_edges(domain: str) -> None:
    md = load_models()
    text = erd(md, domain, "mermaid")
    own = [t for t in md.tables.values() if t.info["domain"] == domain]
    for table in own:
        assert f"    {table.name} {{" in text
        for fk in table.foreign_keys:
            assert f"{fk.column.table.name} " in text
            assert f" {table.name} : {fk.parent.name}" in text


def test_dot_is_a_digraph_with_every_table() -> None:
    md = load_models()
    text = erd(md, None, "dot")
    assert text.startswith("//")
    assert "digraph govern {" in text
    for name in md.tables:
        assert f"    {name} [label=" in text


def test_ownership_has_a_row_per_table() -> None:
    md = load_models()
    text = ownership(md)
    for name in md.tables:
        assert f"| `{name}` |" in text


def test_bad_format_and_domain() -> None:
    with pytest.raises(UsageError, match="unknown format 'png'"):
        erd(load_models(), None, "png")
    with pytest.raises(UnknownDomainError):
        erd(load_models(), "sales", "mermaid")
