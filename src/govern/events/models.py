"""The event outbox and the relay's bookkeeping (core domain).

``event_outbox`` carries exactly the columns Debezium's outbox event router reads
(``id``, ``aggregatetype``, ``aggregateid``, ``type``, ``payload``), so that a Kafka Connect
user can stream it from the write-ahead log instead of running ``govern cdc relay``.
``event_sinks`` stores, per configured sink, how far the relay has delivered and who
holds the lease to deliver.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from govern.datamap import governed, not_personal
from govern.db import CoreBase
from govern.types.utc import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")

OUTBOX_TABLE = "event_outbox"
SINKS_TABLE = "event_sinks"


class OutboxEvent(CoreBase):
    """One CloudEvent, appended in the transaction of the change it describes.

    ``id`` grows in commit order (see :func:`govern.events.emit`), ``sequence`` counts
    1, 2, 3... per aggregate without gaps; ``payload`` is the CloudEvents 1.0 JSON text.
    """

    __tablename__ = OUTBOX_TABLE
    __table_args__ = (
        Index(None, "aggregatetype", "aggregateid", "sequence", unique=True),
        {
            "info": governed(
                owner="team-governance",
                steward="dpo@example.com",
                subject_link=None,
                description="Transactional outbox of CloudEvents: keys and categories only.",
            ),
            # Never reuse an id after the newest rows are pruned: ids are sink positions.
            "sqlite_autoincrement": True,
        },
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    aggregatetype: Mapped[str] = mapped_column(String(64))
    aggregateid: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128))
    sequence: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    payload: Mapped[str] = mapped_column(
        Text, info=not_personal("CloudEvents carrying keys and categories, never personal values")
    )


class EventSink(CoreBase):
    """A sink's delivery position (the last outbox id it has acknowledged) and its lease."""

    __tablename__ = SINKS_TABLE
    __table_args__ = (
        {
            "info": governed(
                owner="team-governance",
                steward="dpo@example.com",
                subject_link=None,
                description="Relay positions, leases and last errors, one row per event sink.",
            )
        },
    )

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
