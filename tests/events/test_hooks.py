"""Hooks run after commit, isolated from each other, retried a bounded number of times."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.engine import Engine

from govern.db import session_factory
from govern.errors import InvalidEventError
from govern.events import Event, HookRegistry, emit


def _emit(s: object, kind: str = "withdrawn", agg: str = "s1") -> Event:
    return emit(s, type=f"govern.consent.{kind}", aggregate_type="subject", aggregate_id=agg)  # type: ignore[arg-type]


def test_hooks_run_after_commit_isolated_and_retried(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = HookRegistry()
    seen: list[tuple[str, int]] = []
    flaky_calls: list[int] = []

    def broken(ev: Event) -> None:
        raise ValueError("secret@example.com should never be logged")

    def flaky(ev: Event) -> None:
        flaky_calls.append(ev.id)
        if len(flaky_calls) < 2:
            raise ConnectionError("first try fails")
        seen.append(("flaky", ev.id))

    hooks.register("govern.consent.*", broken, retries=2, name="broken")
    hooks.register("govern.consent.withdrawn", flaky, retries=3)
    hooks.register("*", lambda ev: seen.append(("all", ev.id)))
    hooks.register("govern.dsr.*", lambda ev: seen.append(("dsr", ev.id)))
    factory = session_factory(engine)
    hooks.attach(factory)
    with caplog.at_level(logging.WARNING, logger="govern.events.hooks"), factory() as s:
        with s.begin():
            ev = _emit(s)
            assert seen == []  # nothing before commit
        assert seen == [("flaky", ev.id), ("all", ev.id)]
    assert len(flaky_calls) == 2
    assert [(f.hook, f.event_id, f.attempts, f.error) for f in hooks.failures] == [
        ("broken", ev.id, 3, "ValueError")
    ]
    assert "secret@example.com" not in caplog.text
    assert "hook broken gave up" in caplog.text
    # the change committed although a hook failed
    with factory() as s:
        from govern.events import OutboxEvent

        assert s.get(OutboxEvent, ev.id) is not None


def test_rolled_back_events_never_reach_hooks(engine: Engine) -> None:
    hooks = HookRegistry()
    seen: list[str] = []
    hooks.register("*", lambda ev: seen.append(ev.aggregate_id))
    factory = session_factory(engine)
    hooks.attach(factory)
    with factory() as s:
        s.begin()
        _emit(s)
        s.rollback()
        with s.begin():
            with s.begin_nested() as sp:
                _emit(s, agg="s2")
                sp.rollback()
            _emit(s, agg="s3")
    assert seen == ["s3"]


def test_session_without_registry_dispatches_nothing(engine: Engine) -> None:
    hooks = HookRegistry()
    seen: list[int] = []
    hooks.register("*", lambda ev: seen.append(ev.id))
    with session_factory(engine)() as s, s.begin():
        _emit(s)
    assert seen == []


@pytest.mark.parametrize("pattern", ["", "consent.*", "govern.Consent", "govern..x", "govern.a b"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidEventError):
        HookRegistry().register(pattern, lambda ev: None)


def test_unbounded_retries_are_refused() -> None:
    with pytest.raises(InvalidEventError, match="retries"):
        HookRegistry().register("*", lambda ev: None, retries=1000)
