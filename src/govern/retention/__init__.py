"""Retention: signed-off policies, simulation, batched reversible runs, breakers, scheduling.

A policy runs only once its exact version is approved; ``plan`` simulates with the same
selection a run uses; a run moves due rows to quarantine batch by batch (tombstones in the
outbox), resumes after a kill, trips a circuit breaker over its limits, and can be rolled
back inside its restore window::

    from govern import retention

    policies = retention.load_policies()              # govern's defaults, or a TOML path
    with govern.transaction(engine) as s:
        print(retention.plan(s, policies))
    retention.execute_run(engine, policies.get("analytics-events"), actor="ops")
"""

from govern.retention.alerts import AlertChannel, LogChannel, WebhookChannel, dispatch
from govern.retention.policy import (
    Condition,
    Duration,
    Policy,
    PolicySet,
    build_policies,
    load_policies,
)
from govern.retention.runner import execute_run, policy_lock
from govern.retention.schemas import (
    AlertOut,
    ApprovalOut,
    PlanReport,
    PolicyPlan,
    PurgeOut,
    RollbackOut,
    RunOut,
)
from govern.retention.service import (
    approve,
    is_approved,
    list_alerts,
    list_runs,
    plan,
    plan_policy,
    purge_quarantine,
    raise_alert,
    register_markdown,
    rollback,
    run_batch,
    start_run,
)

__all__ = [
    "AlertChannel",
    "AlertOut",
    "ApprovalOut",
    "Condition",
    "Duration",
    "LogChannel",
    "PlanReport",
    "Policy",
    "PolicyPlan",
    "PolicySet",
    "PurgeOut",
    "RollbackOut",
    "RunOut",
    "WebhookChannel",
    "approve",
    "build_policies",
    "dispatch",
    "execute_run",
    "is_approved",
    "list_alerts",
    "list_runs",
    "load_policies",
    "plan",
    "plan_policy",
    "policy_lock",
    "purge_quarantine",
    "raise_alert",
    "register_markdown",
    "rollback",
    "run_batch",
    "start_run",
]
