"""Events: the transactional outbox, row-change events, the relay to sinks, and hooks.

Every governance action appends a CloudEvent to ``event_outbox`` in the caller's own
transaction, so an event exists exactly when its change committed::

    from govern import events

    with govern.transaction(engine) as session:
        ...  # the change
        events.emit(session, type="govern.consent.withdrawn", aggregate_type="subject",
                    aggregate_id=subject_id, data={"purpose": "marketing"})

``govern cdc relay`` then delivers the outbox, in order and at least once, to the sinks.
"""

from __future__ import annotations

from govern.events.changes import track_changes
from govern.events.hooks import HookRegistry
from govern.events.models import EventSink, OutboxEvent
from govern.events.schemas import Event
from govern.events.service import (
    EventRow,
    emit,
    emit_many,
    emit_rows,
    emit_tombstones,
    validate_event_type,
)

__all__ = [
    "Event",
    "EventRow",
    "EventSink",
    "HookRegistry",
    "OutboxEvent",
    "emit",
    "emit_many",
    "emit_rows",
    "emit_tombstones",
    "track_changes",
    "validate_event_type",
]
