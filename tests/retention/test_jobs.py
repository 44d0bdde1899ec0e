"""Scheduler wiring: approved policies get cron jobs in the database; listeners alert."""

from __future__ import annotations

import datetime as dt

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from sqlalchemy import select

from govern.db import transaction
from govern.retention import LogChannel, PolicySet, jobs
from govern.retention.models import Alert
from tests.helpers import keyed_engine
from tests.retention.helpers import approved, events_policy


def test_only_approved_policies_are_scheduled_and_missed_runs_alert(migrated_url: str) -> None:
    engine = keyed_engine(migrated_url)
    try:
        ok = events_policy(schedule="15 2 * * *")
        other = events_policy(name="other")
        approved(engine, ok)
        sched, job_ids, skipped = jobs.build_scheduler(
            engine, PolicySet(policies=(ok, other)), channels=[LogChannel()]
        )
        assert (job_ids, skipped) == (["retention:events"], ["other"])
        when = dt.datetime(2026, 1, 1, 2, 15, tzinfo=dt.UTC)
        jobs._on_event(JobExecutionEvent(EVENT_JOB_MISSED, "retention:events", "default", when))
        jobs._on_event(
            JobExecutionEvent(
                EVENT_JOB_ERROR, "retention:events", "default", when, exception=RuntimeError("x")
            )
        )
        with transaction(engine) as s:
            alerts = s.scalars(select(Alert).order_by(Alert.id)).all()
        assert [(a.kind, a.policy_name) for a in alerts] == [
            ("run_missed", "events"),
            ("run_failed", "events"),
        ]
        assert sched.state == 0  # built, not started
    finally:
        jobs._RUNTIME.pop("current", None)
        engine.dispose()
