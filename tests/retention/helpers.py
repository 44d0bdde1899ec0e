"""Seeding and comparing rows for retention tests."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy.engine import Engine

from govern.db import transaction
from govern.domains.analytics import AnalyticsEvent, AnalyticsSession
from govern.domains.community import Comment, Community, Post
from govern.domains.core import Subject
from govern.retention import Policy, PolicySet, approve

NOW = dt.datetime.now(dt.UTC)


def events_policy(**over: Any) -> Policy:
    base: dict[str, Any] = {
        "name": "events",
        "table": "analytics_events",
        "timestamp_column": "occurred_at",
        "period": "P13M",
        "owner": "team-data",
        "purpose": "tests",
        "batch_size": 7,
    }
    base.update(over)
    return Policy(**base)


def seed(engine: Engine, n: int, rng: random.Random, subjects: int = 3) -> list[Any]:
    """``n`` events at random ages (0-30 months), some with subjects; returns subject ids."""
    with transaction(engine) as s:
        subs = [Subject(external_ref=f"s{i}-{rng.random()}") for i in range(subjects)]
        s.add_all(subs)
        s.flush()
        sess = AnalyticsSession(
            started_at=NOW - dt.timedelta(days=60), ip_address="10.0.0.1", user_agent="ua"
        )
        s.add(sess)
        s.flush()
        for _ in range(n):
            s.add(
                AnalyticsEvent(
                    subject_id=rng.choice([None, *(x.id for x in subs)]),
                    type=rng.choice(["view", "click"]),
                    occurred_at=NOW
                    - dt.timedelta(days=rng.randint(0, 900), seconds=rng.randint(0, 86399)),
                    properties={"n": rng.randint(0, 9), "x": rng.random()},
                )
            )
        return [x.id for x in subs]


def seed_posts(engine: Engine) -> None:
    with transaction(engine) as s:
        c = Community(slug="c", name="C")
        s.add(c)
        s.flush()
        for i in range(6):
            p = Post(
                community_id=c.id,
                title=f"t{i}",
                body="b",
                deleted_at=NOW - dt.timedelta(days=40) if i % 2 == 0 else None,
            )
            s.add(p)
            s.flush()
            s.add(Comment(post_id=p.id, body=f"c{i}"))


def raw(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    """Rows exactly as the driver returns them (stored values, no type processing)."""
    with engine.connect() as c:
        return [tuple(r) for r in c.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1")]  # noqa: S608


def approved(engine: Engine, *policies: Policy) -> PolicySet:
    with transaction(engine) as s:
        for p in policies:
            approve(s, p, by="dpo")
    return PolicySet(policies=policies)
