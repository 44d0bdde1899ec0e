"""Analytics domain: high-volume events, sessions and page views."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from govern.datamap import governed, personal
from govern.db import AnalyticsBase
from govern.types.shredded import Shredded, ShreddedJSON, ShreddedString
from govern.types.utc import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class AnalyticsSession(AnalyticsBase):
    __tablename__ = "analytics_sessions"
    __table_args__ = (
        Index(None, "subject_id", "started_at"),
        {
            "info": governed(
                owner="team-data",
                steward="analytics-steward@example.com",
                subject_link="subject_id",
                description="Browsing and app sessions.",
            )
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subjects.id"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Crypto-shredded under the subject's key: unreadable everywhere once it is destroyed.
    ip_address: Mapped[str | Shredded | None] = mapped_column(
        ShreddedString(), info=personal("user.device.ip_address")
    )
    user_agent: Mapped[str | Shredded | None] = mapped_column(
        ShreddedString(), info=personal("user.device.user_agent")
    )
    device_id: Mapped[str | Shredded | None] = mapped_column(
        ShreddedString(), info=personal("user.device.device_id")
    )


class AnalyticsEvent(AnalyticsBase):
    """One tracked event. The composite indexes serve the two hot queries:
    a subject's events in a time range, and events of a type in a time range."""

    __tablename__ = "analytics_events"
    __table_args__ = (
        Index("ix_analytics_events_subject_time", "subject_id", "occurred_at"),
        Index("ix_analytics_events_type_time", "type", "occurred_at"),
        {
            "info": governed(
                owner="team-data",
                steward="analytics-steward@example.com",
                subject_link="subject_id",
                description="Product analytics events (high volume, append-only).",
            )
        },
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subjects.id"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("analytics_sessions.id"))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    properties: Mapped[dict[str, Any] | Shredded] = mapped_column(
        ShreddedJSON(), default=dict, info=personal("user.behavior.browsing_history")
    )


class PageView(AnalyticsBase):
    __tablename__ = "page_views"
    __table_args__ = (
        Index(None, "subject_id", "viewed_at"),
        {
            "info": governed(
                owner="team-data",
                steward="analytics-steward@example.com",
                subject_link="subject_id",
                description="Pages viewed, with referrer and time on page.",
            )
        },
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("analytics_sessions.id"), index=True
    )
    subject_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subjects.id"))
    url: Mapped[str | Shredded] = mapped_column(
        ShreddedString(), info=personal("user.behavior.browsing_history")
    )
    referrer: Mapped[str | Shredded | None] = mapped_column(
        ShreddedString(), info=personal("user.behavior.browsing_history")
    )
    viewed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
