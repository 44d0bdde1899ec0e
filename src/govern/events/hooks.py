"""Notification hooks: host callables run after commit for the events a transaction emitted.

A :class:`HookRegistry` is plain host-owned state, attached to the session factories it
should serve (no module-level configuration)::

    hooks = HookRegistry()
    hooks.register("govern.consent.*", notify_crm)
    hooks.attach(Session)              # a sessionmaker

Hooks run in the committing thread once the transaction has committed, one after the
other and isolated: a hook that raises neither stops the others nor undoes the change.
A failure is logged (hook name, event id and type, exception class; never the event's
data or the exception's message, which may carry personal data) and retried up to
``retries`` more times. Events emitted in a savepoint that was rolled back are not
dispatched: before running hooks the registry checks which event ids really committed.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from govern.errors import InvalidEventError
from govern.events.schemas import Event
from govern.events.service import HOOKS_KEY, PENDING_KEY

log = logging.getLogger("govern.events.hooks")

Hook = Callable[[Event], object]
PATTERN = re.compile(r"(govern|\*)(\.([a-z][a-z0-9_]*|\*))*")


@dataclass(frozen=True)
class _Entry:
    pattern: str
    hook: Hook
    name: str
    retries: int
    retry_delay: float


@dataclass(frozen=True)
class HookFailure:
    """A hook that still failed after its last attempt (kept for inspection in tests/ops)."""

    hook: str
    event_id: int
    event_type: str
    error: str
    attempts: int


class HookRegistry:
    """Hooks per event type or glob pattern (``govern.consent.*``, ``govern.*``, ``*``)."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self.failures: list[HookFailure] = []

    def register(
        self,
        pattern: str,
        hook: Hook,
        *,
        retries: int = 2,
        retry_delay: float = 0.0,
        name: str | None = None,
    ) -> Hook:
        """Run ``hook(event)`` after commit for every event whose type matches ``pattern``.

        Args:
            pattern: an event type or a glob over it (``*`` matches within and across dots).
            hook: any callable taking an :class:`~govern.events.Event`.
            retries: further attempts after a failure (bounded: 0 to 10).
            retry_delay: seconds before the first retry; doubled for each next one.
            name: how logs name the hook (default: its qualified name).

        Raises:
            InvalidEventError: a malformed pattern or retry setting.
        """
        if not isinstance(pattern, str) or not PATTERN.fullmatch(pattern):
            raise InvalidEventError(
                f"hook pattern {repr(pattern)[:80]} must be an event type or a glob "
                "such as govern.consent.* or *"
            )
        if not 0 <= retries <= 10 or retry_delay < 0:
            raise InvalidEventError("hook retries must be 0..10 and retry_delay >= 0")
        if not callable(hook):
            raise InvalidEventError("a hook must be callable")
        label = name or getattr(hook, "__qualname__", None) or type(hook).__name__
        self._entries.append(_Entry(pattern, hook, label, retries, retry_delay))
        return hook

    def matching(self, event_type: str) -> list[str]:
        """Names of the hooks that would run for ``event_type``, in registration order."""
        return [e.name for e in self._entries if fnmatch.fnmatchcase(event_type, e.pattern)]

    def attach(self, target: sessionmaker[Session] | Session) -> None:
        """Dispatch after commit for sessions made by ``target`` (or for one session)."""
        if isinstance(target, sessionmaker):
            info = dict(target.kw.get("info") or {})
            info[HOOKS_KEY] = self
            target.configure(info=info)
        else:
            target.info[HOOKS_KEY] = self
        if not event.contains(target, "after_commit", _after_commit):
            event.listen(target, "after_commit", _after_commit)
            event.listen(target, "after_transaction_end", _after_transaction_end)

    def dispatch(self, events: list[Event]) -> int:
        """Run the matching hooks for ``events`` in order; returns how many calls succeeded."""
        ok = 0
        for ev in events:
            for entry in self._entries:
                if fnmatch.fnmatchcase(ev.type, entry.pattern) and self._run(entry, ev):
                    ok += 1
        return ok

    def _run(self, entry: _Entry, ev: Event) -> bool:
        delay = entry.retry_delay
        for attempt in range(1, entry.retries + 2):
            try:
                entry.hook(ev)
            except Exception as exc:  # isolation: a hook must not break others
                last = type(exc).__name__
                log.warning(
                    "hook %s failed on event %s (%s), attempt %d of %d: %s",
                    entry.name,
                    ev.id,
                    ev.type,
                    attempt,
                    entry.retries + 1,
                    last,
                )
                if attempt <= entry.retries and delay > 0:
                    time.sleep(delay)
                    delay *= 2
                continue
            return True
        log.error("hook %s gave up on event %s (%s)", entry.name, ev.id, ev.type)
        self.failures.append(HookFailure(entry.name, ev.id, ev.type, last, entry.retries + 1))
        return False


def _committed_ids(session: Session, ids: list[int]) -> set[int]:
    from govern.events.models import OutboxEvent

    bind = session.get_bind()
    engine: Any = getattr(bind, "engine", bind)
    found: set[int] = set()
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            found.update(
                conn.execute(select(OutboxEvent.id).where(OutboxEvent.id.in_(chunk))).scalars()
            )
    return found


def _after_commit(session: Session) -> None:
    pending: list[Event] = session.info.pop(PENDING_KEY, None) or []
    registry = session.info.get(HOOKS_KEY)
    if not pending or not isinstance(registry, HookRegistry):
        return
    # SQLite may hand a rolled-back savepoint's id out again: the later event wins.
    latest = {ev.id: ev for ev in pending}
    wanted = [ev for ev in latest.values() if registry.matching(ev.type)]
    if not wanted:
        return
    try:
        committed = _committed_ids(session, [ev.id for ev in wanted])
    except Exception as exc:  # after commit nothing may propagate
        log.error("hooks skipped: cannot confirm committed events (%s)", type(exc).__name__)
        return
    registry.dispatch([ev for ev in wanted if ev.id in committed])


def _after_transaction_end(session: Session, transaction: Any) -> None:
    # After a commit, _after_commit has already taken the pending events; whatever is left
    # when the outermost transaction ends was rolled back.
    if transaction.parent is None:
        session.info.pop(PENDING_KEY, None)
