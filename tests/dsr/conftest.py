"""Fixtures for DSR tests: a subject with data in all four domains, and a work calendar."""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from govern.config import load_settings
from govern.db import create_engine
from govern.domains import analytics, commerce, community, core
from govern.dsr import WorkCalendar
from govern.keys import attach


def populate_subject(session: Session, *, events: int = 5, email: str | None = None) -> uuid.UUID:
    """One subject with rows in every domain table that links to subjects."""
    sid = uuid.uuid4()
    tag = sid.hex[:10]
    session.add(
        core.Subject(
            id=sid,
            external_ref=f"ext-{tag}",
            email=email or f"{tag}@example.com",
            phone="+4930123456",
            given_name="Ada",
            family_name="Lovelace",
            birth_date=dt.date(1990, 12, 10),
            country="DE",
        )
    )
    session.flush()
    session.add(core.SubjectIdentity(subject_id=sid, provider="sso", external_id=f"sso-{tag}"))
    session.add(core.Account(subject_id=sid, username=f"user-{tag}", password_hash="$argon2id$x"))
    order = commerce.Order(
        subject_id=sid,
        currency="EUR",
        total_amount=Decimal("49.00"),
        shipping_address={"street": "Main St 1", "city": "Berlin"},
    )
    session.add(order)
    session.flush()
    session.add(
        commerce.OrderLine(
            order_id=order.id, sku="C-1", description="Course", unit_amount=Decimal("49.00")
        )
    )
    pay = commerce.Payment(
        order_id=order.id,
        subject_id=sid,
        method="card",
        card_number="4111111111111111",
        card_holder="Ada Lovelace",
        amount=Decimal("49.00"),
        currency="EUR",
    )
    session.add(pay)
    session.flush()
    session.add(commerce.Refund(payment_id=pay.id, amount=Decimal("9.00"), reason="partial"))
    session.add(
        commerce.Invoice(
            order_id=order.id,
            subject_id=sid,
            number=f"INV-{tag}",
            billing_name="Ada Lovelace",
            billing_address={"street": "Main St 1", "city": "Berlin"},
            total_amount=Decimal("49.00"),
            currency="EUR",
            retain_until=dt.date(2036, 12, 31),
        )
    )
    session.add(commerce.Wallet(subject_id=sid, balance=Decimal("5.00"), currency="EUR"))
    sess = analytics.AnalyticsSession(subject_id=sid, ip_address="10.0.0.1", user_agent="ua")
    session.add(sess)
    session.flush()
    session.add_all(
        analytics.AnalyticsEvent(
            subject_id=sid, session_id=sess.id, type="click", properties={"i": i}
        )
        for i in range(events)
    )
    session.add(analytics.PageView(subject_id=sid, session_id=sess.id, url="https://x/1"))
    comm = community.Community(slug=f"c-{tag}", name="Cohort", owner_subject_id=sid)
    session.add(comm)
    session.flush()
    session.add(community.Membership(community_id=comm.id, subject_id=sid))
    post = community.Post(community_id=comm.id, author_subject_id=sid, title="Hi", body="Hello")
    session.add(post)
    session.flush()
    session.add(community.Comment(post_id=post.id, author_subject_id=sid, body="Me too"))
    session.add(
        community.ModerationReport(
            reporter_subject_id=sid, target_type="post", target_id=post.id, reason="spam", notes="n"
        )
    )
    session.flush()
    return sid


def approved_request(
    session: Session, cal: WorkCalendar, sid: uuid.UUID, type_: str = "erasure", **kw: Any
) -> uuid.UUID:
    """A verified request of ``type_`` for subject ``sid``, approved, in the caller's session."""
    from govern import dsr

    out = dsr.submit(
        session,
        type=type_,
        identifiers={"subject_id": str(sid)},
        calendar=cal,
        actor="portal",
        verified=True,
        **kw,
    )
    dsr.approve(session, out.request.id, actor="dpo")
    return out.request.id


def keyed_engine(url: str, kek: str) -> Engine:
    """An engine with the database's keyring attached (created on first use) under ``kek``."""
    eng = create_engine(url)
    attach(eng, load_settings({"GOVERN_DATABASE_URL": url, "GOVERN_KEK": kek}))
    return eng


@pytest.fixture
def kek() -> str:
    """A KEK for this test: worker subprocesses get it as GOVERN_KEK to read the same keys."""
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def engine(migrated_url: str, kek: str) -> Iterator[Engine]:
    eng = keyed_engine(migrated_url, kek)
    yield eng
    eng.dispose()


@pytest.fixture
def calendar() -> WorkCalendar:
    return WorkCalendar("UTC")


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    return tmp_path / "exports"
