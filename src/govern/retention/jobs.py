"""APScheduler 3 wiring only: one cron job per approved policy, calling plain service code.

Jobs live in the database (``retention_scheduler_jobs``, APScheduler's SQLAlchemy job
store). A job's pickled state holds only the policy name; the engine, policies and
channels of the running process are looked up in :data:`_RUNTIME`, so no URL or secret is
ever pickled. Every process may run a scheduler: :func:`runner.execute_run` takes the
policy's lock, so a policy runs once at a time however many schedulers fire it. Missed
runs and job errors reach listeners that raise alerts.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from govern.db import transaction, write_transaction
from govern.retention import runner, service
from govern.retention.alerts import AlertChannel, dispatch
from govern.retention.models import SCHEDULER_JOBS_TABLE
from govern.retention.policy import PolicySet, cron_fields
from govern.retention.schemas import ScheduleOut

log = logging.getLogger("govern.retention.jobs")
JOB_PREFIX = "retention:"


@dataclass
class Runtime:
    engine: Engine
    policies: PolicySet
    channels: Sequence[AlertChannel]
    actor: str = "scheduler"


_RUNTIME: dict[str, Runtime] = {}


def run_scheduled(policy_name: str) -> None:
    """The job function: run one policy now (skipped if another process is running it)."""
    rt = _RUNTIME.get("current")
    if rt is None:
        raise RuntimeError("no retention runtime in this process; start it with build_scheduler")
    policy = rt.policies.get(policy_name)
    try:
        out = runner.execute_run(rt.engine, policy, actor=rt.actor, channels=rt.channels)
    except Exception:
        # execute_run has marked the run failed and alerted; keep the scheduler alive.
        log.exception("retention run of %s failed", policy_name)
        return
    log.info("retention %s: %s", policy_name, out.text_line())


def _alert(kind: str, policy: str | None, message: str) -> None:
    rt = _RUNTIME.get("current")
    if rt is None:
        return
    try:
        with write_transaction(rt.engine) as s:  # beside other writers: the lock first
            alert = service.raise_alert(s, kind, policy=policy, message=message)
    except Exception:
        log.exception("could not record a %s alert for %s", kind, policy)
        return
    dispatch([alert], rt.channels)


def _on_event(event: Any) -> None:
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED

    job_id = str(getattr(event, "job_id", ""))
    policy = job_id.removeprefix(JOB_PREFIX) if job_id.startswith(JOB_PREFIX) else None
    if event.code == EVENT_JOB_MISSED:
        when = getattr(event, "scheduled_run_time", None)
        _alert("run_missed", policy, f"scheduled run at {when} was missed")
    elif event.code == EVENT_JOB_ERROR:
        exc = getattr(event, "exception", None)
        _alert("run_failed", policy, f"scheduled job raised {type(exc).__name__}")


def build_scheduler(
    engine: Engine,
    policies: PolicySet,
    *,
    channels: Sequence[AlertChannel] = (),
    misfire_grace_seconds: int = 300,
) -> tuple[Any, list[str], list[str]]:
    """A configured (not started) background scheduler, its job ids and the policies left out.

    Only approved policies (this exact version) get a job.
    """
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    with transaction(engine) as s:
        approved = [p for p in policies.policies if service.is_approved(s, p)]
    skipped = [p.name for p in policies.policies if p not in approved]
    _RUNTIME["current"] = Runtime(engine=engine, policies=policies, channels=channels)
    store = SQLAlchemyJobStore(engine=engine, tablename=SCHEDULER_JOBS_TABLE)
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        timezone=dt.UTC,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": misfire_grace_seconds,
        },
    )
    scheduler.add_listener(_on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    jobs = []
    for p in approved:
        job_id = JOB_PREFIX + p.name
        scheduler.add_job(
            run_scheduled,
            CronTrigger(timezone=dt.UTC, **cron_fields(p.schedule)),
            args=[p.name],
            id=job_id,
            name=f"retention {p.name}",
            replace_existing=True,
        )
        jobs.append(job_id)
    return scheduler, jobs, skipped


def serve(
    engine: Engine,
    policies: PolicySet,
    *,
    channels: Sequence[AlertChannel] = (),
    seconds: float | None = None,
) -> ScheduleOut:
    """Run the scheduler until interrupted (or for ``seconds``), then shut it down.

    Stored jobs of policies that are gone or no longer approved are removed first.
    """
    scheduler, jobs, skipped = build_scheduler(engine, policies, channels=channels)
    started = time.monotonic()
    scheduler.start(paused=True)
    try:
        for job in scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id not in jobs:
                scheduler.remove_job(job.id)
        scheduler.resume()
        deadline = None if seconds is None else started + seconds
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=True)
        _RUNTIME.pop("current", None)
    return ScheduleOut(jobs=jobs, skipped=skipped, ran_for_seconds=time.monotonic() - started)
