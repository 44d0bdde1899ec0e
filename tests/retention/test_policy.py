"""Policies: strict durations, validation naming policy and field, content hashes, files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govern.errors import PolicyError
from govern.retention import Duration, build_policies, load_policies
from tests.retention.helpers import events_policy

BASE: dict[str, Any] = {
    "name": "p1",
    "table": "analytics_events",
    "timestamp_column": "occurred_at",
    "period": "P30D",
    "owner": "o",
    "purpose": "why",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P30D", Duration(days=30)),
        ("P13M", Duration(months=13)),
        ("P1Y2M3W4DT5H6M7S", Duration(1, 2, 3, 4, 5, 6, 7)),
        ("PT12H", Duration(hours=12)),
        ("P0D", Duration()),
    ],
)
def test_durations_parse(text: str, expected: Duration) -> None:
    assert expected == Duration.parse(text)


@pytest.mark.parametrize("bad", ["", "P", "30D", "P1.5D", "-P1D", "PT", "P1DT", "p1d", "P1H"])
def test_malformed_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        Duration.parse(bad)


@given(
    st.datetimes(
        min_value=dt.datetime(1990, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    st.integers(0, 40),
    st.integers(0, 400),
)
def test_months_and_days_go_back_monotonically(moment: dt.datetime, months: int, days: int) -> None:
    back = Duration(months=months, days=days).before(moment)
    assert back <= moment
    assert Duration(months=months + 1, days=days).before(moment) <= back
    assert Duration(days=days).after(Duration(days=days).before(moment)) == moment


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"table": "nope"}, "table", "not a table in the data map"),
        ({"timestamp_column": "nope"}, "timestamp_column", "has no column"),
        ({"timestamp_column": "type"}, "timestamp_column", "not a date or time"),
        ({"period": "30 days"}, "period", "ISO 8601"),
        ({"grace": "P1.5D"}, "grace", "ISO 8601"),
        ({"action": "anonymise", "columns": ["id"]}, "columns", "key column"),
        ({"action": "anonymise", "columns": ["subject_id"]}, "columns", "key column"),
        ({"action": "anonymise", "columns": ["properties"]}, "columns", "NOT NULL"),
        ({"action": "anonymise"}, "policy", "needs the columns"),
        ({"action": "burn"}, "action", "Input should be"),
        (
            {"action": "crypto_shred", "table": "subjects", "timestamp_column": "created_at"},
            "action",
            "crypto_shred needs a table with crypto-shredded columns",
        ),
        ({"filter": "type = 'x'; DROP TABLE subjects"}, "filter", "raw SQL is not accepted"),
        (
            {"filter": [{"column": "type; DROP TABLE x", "op": "eq", "value": "a"}]},
            "filter[0].column",
            "SQL is refused",
        ),
        ({"filter": [{"column": "type", "op": "like", "value": "a"}]}, "filter[0].op", "Input"),
        (
            {"filter": [{"column": "nope", "op": "eq", "value": "a"}]},
            "filter[0].column",
            "no column",
        ),
        ({"filter": [{"column": "occurred_at", "op": "lt", "value": 3}]}, "filter[0].value", "fit"),
        ({"filter": [{"column": "type", "op": "in", "value": []}]}, "filter[0]", "non-empty"),
        ({"table": "posts; DROP TABLE posts"}, "table", "SQL is refused"),
        ({"schedule": "every day"}, "schedule", "crontab"),
        ({"schedule": "61 * * * *"}, "schedule", "cron"),
        ({"max_share_of_table": 1.5}, "max_share_of_table", "less than or equal"),
        ({"surprise": 1}, "surprise", "not a policy field"),
    ],
)
def test_bad_policies_name_policy_and_field(change: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(PolicyError) as err:
        build_policies([{**BASE, **change}])
    assert str(err.value).startswith(f"policy 'p1' field {field}")
    assert words in str(err.value)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(PolicyError, match="used by two policies"):
        build_policies([BASE, BASE])


def test_content_hash_changes_with_any_field() -> None:
    p = events_policy()
    assert p.content_hash == events_policy().content_hash
    assert p.content_hash != events_policy(period="P14M").content_hash
    assert p.content_hash != events_policy(max_rows_per_run=10).content_hash


def test_defaults_cover_the_four_domains() -> None:
    ps = load_policies()
    assert {p.table for p in ps.policies} == {
        "analytics_events",
        "analytics_sessions",
        "posts",
        "invoices",
    }


def test_file_errors_name_the_policy(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(
        '[[policy]]\nname = "x"\ntable = "subjects"\ntimestamp_column = "created_at"\n'
        'period = "P1Y"\nowner = "o"\npurpose = "p"\naction = "anonymise"\n'
        'columns = ["external_ref"]\n'
    )
    # external_ref is encrypted: its uniqueness lives on the blind-index twin, and the
    # column itself is NOT NULL, which is what stops anonymising it (to NULL).
    with pytest.raises(
        PolicyError, match=r"policy 'x' field columns: subjects.external_ref is NOT NULL"
    ):
        load_policies(f)
    f.write_text(f.read_text().replace('["external_ref"]', '["external_ref_index"]'))
    with pytest.raises(
        PolicyError, match=r"policy 'x' field columns: subjects.external_ref_index is a key"
    ):
        load_policies(f)
    f.write_text("[[policy]\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policies(f)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policies(tmp_path / "missing.toml")


def test_anonymise_also_nulls_blind_index_twins() -> None:
    from govern.db import load_models
    from govern.retention.policy import Policy, bind

    p = Policy(
        name="emails",
        table="subjects",
        timestamp_column="created_at",
        period="P1Y",
        action="anonymise",
        columns=("email", "phone"),
        owner="o",
        purpose="p",
    )
    assert bind(p, load_models()).nulled == ("email", "phone", "email_index")
