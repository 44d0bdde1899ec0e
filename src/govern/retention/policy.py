"""Retention policies: declared in TOML or in Python, validated by pydantic and the data map.

A policy may come from a file a colleague edited, so nothing in it is ever SQL: the
filter is a list of ``{column, op, value}`` conditions with a whitelisted ``op``, the
column must exist in the targeted table, and values are bound as parameters::

    [[policy]]
    name = "community-posts-deleted"
    table = "posts"
    timestamp_column = "deleted_at"
    period = "P30D"
    action = "delete"
    owner = "team-community"
    purpose = "Soft-deleted posts are kept 30 days so that a mistaken deletion can be undone."
    filter = [{ column = "deleted_at", op = "is_not_null" }]

Every error names the policy and the field: ``policy 'x' field period: ...``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import re
import tomllib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Column, Date, DateTime, MetaData, Table

from govern.errors import PolicyError

NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_DURATION = re.compile(
    r"P(?!$)(?:(?P<years>\d{1,4})Y)?(?:(?P<months>\d{1,5})M)?(?:(?P<weeks>\d{1,5})W)?"
    r"(?:(?P<days>\d{1,6})D)?(?:T(?=\d)(?:(?P<hours>\d{1,7})H)?(?:(?P<minutes>\d{1,9})M)?"
    r"(?:(?P<seconds>\d{1,10})S)?)?"
)
Action = Literal["delete", "anonymise", "archive_then_delete", "crypto_shred"]
ACTIONS: tuple[str, ...] = ("delete", "anonymise", "archive_then_delete", "crypto_shred")
Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "is_not_null"]
Scalar = bool | int | float | str
DEFAULTS_RESOURCE = "default_policies.toml"


@dataclass(frozen=True)
class Duration:
    """An ISO 8601 duration with calendar parts kept apart (13 months is not 395 days)."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``PnYnMnWnDTnHnMnS`` strictly: integers only, at least one part, no sign."""
        m = _DURATION.fullmatch(text) if isinstance(text, str) else None
        if m is None:
            raise ValueError(
                "is not an ISO 8601 duration such as P30D, P13M, P7Y or PT12H "
                "(integers only, no sign, no fractions)"
            )
        return cls(**{k: int(v) for k, v in m.groupdict().items() if v is not None})

    def before(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` minus this duration; months and years clamp to the month's last day."""
        total_months = moment.month - 1 - self.months - 12 * self.years
        year = moment.year + total_months // 12
        month = total_months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        shifted = moment.replace(year=year, month=month, day=day)
        return shifted - dt.timedelta(
            weeks=self.weeks,
            days=self.days,
            hours=self.hours,
            minutes=self.minutes,
            seconds=self.seconds,
        )

    def after(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` plus this duration (for restore windows)."""
        total_months = moment.month - 1 + self.months + 12 * self.years
        year = moment.year + total_months // 12
        month = total_months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        shifted = moment.replace(year=year, month=month, day=day)
        return shifted + dt.timedelta(
            weeks=self.weeks,
            days=self.days,
            hours=self.hours,
            minutes=self.minutes,
            seconds=self.seconds,
        )

    def describe(self) -> str:
        parts = [
            (self.years, "year"),
            (self.months, "month"),
            (self.weeks, "week"),
            (self.days, "day"),
            (self.hours, "hour"),
            (self.minutes, "minute"),
            (self.seconds, "second"),
        ]
        words = [f"{n} {w}{'s' if n != 1 else ''}" for n, w in parts if n]
        return ", ".join(words) or "0 days"


def _duration(value: str) -> str:
    Duration.parse(value)
    return value


class Condition(BaseModel):
    """One filter condition; the value is bound as a parameter, never spliced into SQL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    op: Op
    value: Scalar | list[Scalar] | None = None

    @field_validator("column")
    @classmethod
    def _ident(cls, value: str) -> str:
        if not IDENT.fullmatch(value):
            raise ValueError("must be a plain column name (letters, digits, '_'); SQL is refused")
        return value

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in ("is_null", "is_not_null"):
            if self.value is not None:
                raise ValueError(f"op {self.op} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op} needs a non-empty list value")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op} needs one scalar value")
        return self


class Policy(BaseModel):
    """One retention rule for one table. Immutable; its content hash identifies the version.

    ``period`` ages a row from ``timestamp_column``; a row is due once it is older than
    ``period`` plus ``grace``. ``restore_window`` is how long a run's quarantined rows stay
    restorable. ``schedule`` is a crontab line (5 fields, or 6 with seconds first).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    table: str
    timestamp_column: str
    period: str
    action: Action = "delete"
    columns: tuple[str, ...] = ()
    filter: tuple[Condition, ...] = ()
    grace: str = "P0D"
    restore_window: str = "P30D"
    owner: str
    purpose: str
    schedule: str = "30 3 * * *"
    max_rows_per_run: int | None = Field(default=None, gt=0)
    max_share_of_table: float | None = Field(default=None, gt=0, le=1)
    max_growth_factor: float | None = Field(default=5.0, gt=1)
    batch_size: int = Field(default=5000, gt=0, le=100_000)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("must be lowercase letters, digits, '-' or '_' (at most 64)")
        return value

    @field_validator("table", "timestamp_column")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not IDENT.fullmatch(value):
            raise ValueError("must be a plain identifier; SQL is refused")
        return value

    @field_validator("columns")
    @classmethod
    def _column_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for c in value:
            if not IDENT.fullmatch(c):
                raise ValueError(f"{c[:40]!r} must be a plain column name; SQL is refused")
        if len(set(value)) != len(value):
            raise ValueError("names a column twice")
        return value

    @field_validator("filter", mode="before")
    @classmethod
    def _no_raw_sql(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(
                "must be a list of {column, op, value} conditions; raw SQL is not accepted"
            )
        return value

    @field_validator("period", "grace", "restore_window")
    @classmethod
    def _iso_duration(cls, value: str) -> str:
        return _duration(value)

    @field_validator("owner", "purpose")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        cron_fields(value)
        return value

    @model_validator(mode="after")
    def _action_columns(self) -> Policy:
        if self.action == "anonymise" and not self.columns:
            raise ValueError("action anonymise needs the columns to anonymise in 'columns'")
        if self.action != "anonymise" and self.columns:
            raise ValueError(f"'columns' is only for action anonymise, not {self.action}")
        return self

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of every field: any edit makes a new version."""
        body = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()

    def cutoff(self, now: dt.datetime) -> dt.datetime:
        """Rows stamped before this moment are due."""
        return Duration.parse(self.grace).before(Duration.parse(self.period).before(now))


def cron_fields(value: str) -> dict[str, str]:
    """The APScheduler ``CronTrigger`` keyword arguments of a 5- or 6-field crontab line."""
    parts = value.split()
    if len(parts) == 5:
        names = ["minute", "hour", "day", "month", "day_of_week"]
    elif len(parts) == 6:
        names = ["second", "minute", "hour", "day", "month", "day_of_week"]
    else:
        raise ValueError("must be a crontab line of 5 fields (or 6 with seconds first)")
    for p in parts:
        if not re.fullmatch(r"[0-9A-Za-z*/,\-]{1,64}", p):
            raise ValueError(f"has a malformed cron field {p[:20]!r}")
    fields = dict(zip(names, parts, strict=True))
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger(timezone=dt.UTC, **fields)
    except ValueError as exc:
        raise ValueError(f"is not a valid cron schedule ({exc})") from None
    return fields


@dataclass(frozen=True)
class Bound:
    """A policy checked against the database metadata: its table and columns resolved."""

    policy: Policy
    table: Table
    key: Column[Any]
    stamp: Column[Any]
    values: tuple[Any, ...]
    nulled: tuple[str, ...] = ()
    """What ``anonymise`` sets to NULL: ``columns`` and their blind-index twins."""


def _fail(policy: str, field: str, msg: str) -> PolicyError:
    return PolicyError(f"policy {policy!r} field {field}: {msg}")


def _coerce(col: Column[Any], value: Any, policy: str, field: str) -> Any:
    """A filter value converted to the column's Python type, so binding cannot misfire."""
    try:
        py = col.type.python_type
    except NotImplementedError:
        return value
    try:
        if py is dt.datetime and isinstance(value, str):
            stamp = dt.datetime.fromisoformat(value)
            if stamp.tzinfo is None:
                raise ValueError("needs a UTC offset")
            return stamp
        if py is dt.date and isinstance(value, str):
            return dt.date.fromisoformat(value)
        if py is uuid.UUID and isinstance(value, str):
            return uuid.UUID(value)
    except ValueError as exc:
        raise _fail(policy, field, f"value does not fit column {col.name} ({exc})") from None
    if py in (dt.datetime, dt.date, uuid.UUID) and not isinstance(value, py):
        raise _fail(policy, field, f"value does not fit column {col.name}")
    if py in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _fail(policy, field, f"value does not fit numeric column {col.name}")
    if py is str and not isinstance(value, str):
        raise _fail(policy, field, f"value does not fit text column {col.name}")
    return value


def bind(policy: Policy, metadata: MetaData) -> Bound:
    """Check ``policy`` against the data map; raise :class:`PolicyError` naming the field."""
    n = policy.name
    table = metadata.tables.get(policy.table)
    if table is None or "owner" not in table.info:
        raise _fail(n, "table", f"{policy.table!r} is not a table in the data map")
    pk = list(table.primary_key.columns)
    if len(pk) != 1:
        raise _fail(n, "table", f"{table.name} needs a single-column primary key for keyset runs")
    stamp = table.columns.get(policy.timestamp_column)
    if stamp is None:
        raise _fail(
            n, "timestamp_column", f"{table.name} has no column {policy.timestamp_column!r}"
        )
    if not isinstance(stamp.type, DateTime | Date) and not isinstance(
        getattr(stamp.type, "impl_instance", None), DateTime | Date
    ):
        raise _fail(n, "timestamp_column", f"{table.name}.{stamp.name} is not a date or time")
    for c in policy.columns:
        col = table.columns.get(c)
        if col is None:
            raise _fail(n, "columns", f"{table.name} has no column {c!r}")
        if col.primary_key or col.foreign_keys or col.unique or _in_unique_index(table, c):
            raise _fail(n, "columns", f"{table.name}.{c} is a key column; it cannot be anonymised")
        if c == stamp.name:
            raise _fail(n, "columns", f"{table.name}.{c} is the timestamp column")
        if not col.nullable:
            raise _fail(
                n, "columns", f"{table.name}.{c} is NOT NULL; anonymise sets columns to NULL"
            )
    if policy.action == "crypto_shred":
        _check_shreddable(policy, table)
    nulled = anonymised_columns(table, policy.columns)
    for c in nulled[len(policy.columns) :]:
        if not table.columns[c].nullable:
            raise _fail(
                n,
                "columns",
                f"{table.name}.{c} (a blind index of an anonymised column) is NOT NULL",
            )
    values: list[Any] = []
    for i, cond in enumerate(policy.filter):
        col = table.columns.get(cond.column)
        if col is None:
            raise _fail(n, f"filter[{i}].column", f"{table.name} has no column {cond.column!r}")
        if isinstance(cond.value, list):
            values.append(tuple(_coerce(col, v, n, f"filter[{i}].value") for v in cond.value))
        elif cond.value is None:
            values.append(None)
        else:
            values.append(_coerce(col, cond.value, n, f"filter[{i}].value"))
    return Bound(
        policy=policy, table=table, key=pk[0], stamp=stamp, values=tuple(values), nulled=nulled
    )


def shred_subject_column(table: Table) -> str | None:
    """The column holding the subject whose key seals ``table``'s shredded values."""
    link = table.info.get("subject_link")
    subjects = {getattr(c.type, "subject", None) for c in table.columns if _is_shredded(c)}
    if not link or "->" in link or link == "id" or subjects != {link}:
        return None
    return str(link)


def _is_shredded(col: Column[Any]) -> bool:
    return getattr(type(col.type), "protection", None) == "shredded"


def _check_shreddable(policy: Policy, table: Table) -> None:
    if not any(_is_shredded(c) for c in table.columns):
        raise _fail(
            policy.name,
            "action",
            f"crypto_shred needs a table with crypto-shredded columns; {table.name} has none",
        )
    if shred_subject_column(table) is None:
        raise _fail(
            policy.name,
            "action",
            f"crypto_shred needs {table.name}'s shredded columns sealed under the key of "
            "its subject_link column",
        )


def anonymised_columns(table: Table, columns: Sequence[str]) -> tuple[str, ...]:
    """``columns`` followed by their blind-index twins, which would still link the values."""
    twins = [
        c.name
        for c in table.columns
        if getattr(c.type, "protection", None) == "blind-index"
        and getattr(c.type, "source", None) in columns
        and c.name not in columns
    ]
    return (*columns, *twins)


def _in_unique_index(table: Table, column: str) -> bool:
    return any(ix.unique and column in ix.columns for ix in table.indexes)


class PolicySet(BaseModel):
    """The policies in force, by name. Build one from a file or from Python objects."""

    model_config = ConfigDict(frozen=True)

    policies: tuple[Policy, ...]
    source: str = "python"

    def get(self, name: str) -> Policy:
        from govern.errors import UnknownPolicyError

        for p in self.policies:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.policies) or "none"
        raise UnknownPolicyError(f"unknown retention policy {name!r}; known: {known}")

    def select(self, name: str | None) -> list[Policy]:
        return [self.get(name)] if name else list(self.policies)


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "policy"


def build_policies(
    items: Iterable[Mapping[str, Any] | Policy], metadata: MetaData | None = None, source: str = ""
) -> PolicySet:
    """Validate raw mappings (or Policy objects) and check each against the data map."""
    if metadata is None:
        from govern.db import load_models

        metadata = load_models()
    out: list[Policy] = []
    for i, item in enumerate(items):
        if isinstance(item, Policy):
            policy = item
        else:
            if not isinstance(item, Mapping):
                raise PolicyError(f"policy #{i + 1} in {source or 'input'} is not a table")
            name = str(item.get("name", f"#{i + 1}"))[:64]
            try:
                policy = Policy.model_validate(dict(item))
            except ValidationError as exc:
                err = exc.errors(include_url=False, include_input=False)[0]
                msg = str(err["msg"]).removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    msg = "is not a policy field"
                raise _fail(name, _loc(err["loc"]), msg) from None
        if any(p.name == policy.name for p in out):
            raise _fail(policy.name, "name", "is used by two policies")
        bind(policy, metadata)
        out.append(policy)
    return PolicySet(policies=tuple(out), source=source or "python")


def load_policies(path: str | Path | None = None, metadata: MetaData | None = None) -> PolicySet:
    """Policies from a TOML file of ``[[policy]]`` tables, or govern's shipped defaults."""
    if path is None:
        text = resources.files("govern.retention").joinpath(DEFAULTS_RESOURCE).read_text()
        source = "govern defaults"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
        source = str(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {source} is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"policy"})
    if unknown:
        raise PolicyError(f"policy file {source}: unknown top-level key {unknown[0]!r}")
    items = doc.get("policy", [])
    if not isinstance(items, list):
        raise PolicyError(f"policy file {source}: 'policy' must be an array of tables")
    return build_policies(items, metadata, source)
