"""``govern doctor`` checks for retention: unapproved policies and failed last runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from govern.config import Settings
    from govern.doctor import CheckResult


def check(settings: Settings) -> list[CheckResult]:
    """Unapproved (or changed since approval) policies are reported; a failed last run fails.

    An unapproved policy only simulates, which is safe, so it is a note and not a failure:
    a fresh install ships unapproved defaults on purpose.
    """
    from sqlalchemy import inspect

    from govern.db import create_engine, transaction
    from govern.doctor import CheckResult
    from govern.errors import GovernError
    from govern.retention import service
    from govern.retention.models import Run
    from govern.retention.policy import load_policies

    try:
        policies = load_policies(settings.retention_policies)
    except GovernError as exc:
        return [CheckResult(name="retention policies", ok=False, detail=str(exc))]
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        if not inspect(engine).has_table(Run.__tablename__):
            return [
                CheckResult(
                    name="retention policies", ok=True, detail="retention tables not migrated yet"
                )
            ]
        with transaction(engine) as s:
            outs = [service.policy_out(s, p) for p in policies.policies]
    finally:
        engine.dispose()
    unapproved = [o.name for o in outs if not o.approved]
    failed = [o.name for o in outs if o.last_run_status in ("failed", "aborted")]
    detail = f"{len(outs) - len(unapproved)} of {len(outs)} approved ({policies.source})"
    if unapproved:
        detail += (
            f"; unapproved or changed since approval, simulation only: {', '.join(unapproved)}"
        )
    return [
        CheckResult(name="retention policies", ok=True, detail=detail),
        CheckResult(
            name="retention last runs",
            ok=not failed,
            detail=(
                f"last run failed or aborted: {', '.join(failed)} (see govern retention alerts)"
                if failed
                else "no failed or aborted last run"
            ),
        ),
    ]
