"""Driving a run: one policy at a time across processes, one transaction per batch.

This is the one place in retention that commits, on purpose: a run is many transactions
so that a kill loses at most the batch in flight, and resuming continues from the last
committed checkpoint. The work inside each transaction is :func:`service.run_batch`.

Once at a time: on PostgreSQL a transaction-scoped advisory lock
(``pg_try_advisory_xact_lock``) held on a dedicated connection for the whole run (it goes
with the connection if the process dies); on SQLite a lease row in ``retention_leases``,
renewed every batch, taken over when it expires or its holder process on this host is gone.

Every transaction here reads before it writes (the lease, the run row), so on SQLite each
begins with ``BEGIN IMMEDIATE`` (:func:`govern.db.write_transaction`): a deferred transaction
whose snapshot went stale, because the host's application or another scheduler committed
meanwhile, would fail at its first write with "database is locked" instead of waiting.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from govern.db import write_transaction
from govern.errors import GovernError
from govern.retention import service
from govern.retention.alerts import AlertChannel, dispatch
from govern.retention.models import Lease, Run
from govern.retention.policy import Policy
from govern.retention.schemas import AlertOut, RunOut
from govern.types.utc import utcnow

LEASE_SECONDS = 120.0
Progress = Callable[[int, int], None]


def lock_key(policy: str) -> int:
    """A signed 64-bit advisory-lock key for a policy name."""
    digest = hashlib.sha256(f"govern.retention:{policy}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def holder_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _holder_gone(holder: str) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname()[:60] or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _take_lease(engine: Engine, policy: str, holder: str, seconds: float) -> bool:
    now = utcnow()
    until = now + dt.timedelta(seconds=seconds)
    try:
        with write_transaction(engine) as s:  # the write lock first: no other taker between
            lease = s.get(Lease, policy)
            if lease is None:
                s.add(Lease(policy_name=policy, holder=holder, expires_at=until))
                return True
            if lease.holder != holder and lease.expires_at > now and not _holder_gone(lease.holder):
                return False
            lease.holder = holder
            lease.expires_at = until
    except IntegrityError:
        return False  # taken first by another process (an engine without BEGIN IMMEDIATE)
    return True


def _drop_lease(engine: Engine, policy: str, holder: str) -> None:
    with write_transaction(engine) as s:
        s.execute(delete(Lease).where(Lease.policy_name == policy, Lease.holder == holder))


@contextlib.contextmanager
def policy_lock(engine: Engine, policy: str) -> Iterator[str | None]:
    """Hold the policy's run lock for the block; yields a holder id, or None if taken."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy import func

        conn = engine.connect()
        try:
            tx = conn.begin()
            got = bool(conn.scalar(select(func.pg_try_advisory_xact_lock(lock_key(policy)))))
            try:
                yield f"pg-advisory:{lock_key(policy)}" if got else None
            finally:
                tx.rollback()
        finally:
            conn.close()
        return
    holder = holder_id()
    if not _take_lease(engine, policy, holder, LEASE_SECONDS):
        yield None
        return
    try:
        yield holder
    finally:
        with contextlib.suppress(DBAPIError):
            _drop_lease(engine, policy, holder)


def _renew(engine: Engine, policy: str, holder: str) -> None:
    if engine.dialect.name == "sqlite" and not _take_lease(engine, policy, holder, LEASE_SECONDS):
        raise GovernError(f"lost the run lease of policy {policy!r} to another process")


def execute_run(
    engine: Engine,
    policy: Policy,
    *,
    actor: str,
    channels: Sequence[AlertChannel] = (),
    override_by: str | None = None,
    override_reason: str | None = None,
    progress: Progress | None = None,
    max_batches: int | None = None,
) -> RunOut:
    """Run (or resume) ``policy`` to completion under its lock, committing each batch.

    Returns the run; ``status`` is ``skipped`` when another process holds the lock and
    ``aborted`` when the circuit breaker tripped (alerted). A failure marks the run failed,
    alerts, and re-raises; running again resumes from the last committed batch.
    """
    with policy_lock(engine, policy.name) as holder:
        if holder is None:
            return RunOut(
                id=None,
                policy=policy.name,
                table=policy.table,
                action=policy.action,
                status="skipped",
                planned_rows=0,
                processed_rows=0,
                cascaded_rows=0,
                batches=0,
                cutoff=None,
                restore_until=None,
                started_at=None,
                finished_at=None,
                detail="another process is running this policy",
            )
        alerts: list[AlertOut] = []
        with write_transaction(engine) as s:
            run, alerts = service.start_run(
                s,
                policy,
                actor=actor,
                override_by=override_by,
                override_reason=override_reason,
            )
            run_id = run.id
            out = service.run_out(run)
        dispatch(alerts, channels)
        if out.status != "running":
            return out
        done = 0
        try:
            while max_batches is None or done < max_batches:
                with write_transaction(engine) as s:
                    run = s.get_one(Run, run_id)
                    n = service.run_batch(s, run, policy)
                    out = service.run_out(run)
                _renew(engine, policy.name, holder)
                done += 1
                if progress is not None:
                    progress(out.processed_rows, out.planned_rows)
                if n == 0:
                    break
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            if isinstance(exc, DBAPIError):
                reason = f"{type(exc).__name__} from the database"
            with contextlib.suppress(Exception), write_transaction(engine) as s:
                out, alert = service.fail_run(s, run_id, reason)
                alerts = [alert]
            dispatch(alerts, channels)
            raise
        return out
