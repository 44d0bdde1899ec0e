"""Data-subject requests: all six GDPR rights, legal deadlines, resumable multi-worker execution.

::

    from govern import dsr

    with govern.write_transaction(engine) as s:  # reads, then writes: see README
        out = dsr.submit(s, type="access", identifiers={"email": "ada@example.com"},
                         calendar=dsr.WorkCalendar("Europe/Berlin"), actor="portal")
    ...  # deliver out.verification_code to the subject; they send it back
    with govern.write_transaction(engine) as s:
        dsr.verify(s, out.request.id, code, actor="portal")
        dsr.approve(s, out.request.id, actor="dpo@example.com")
    dsr.work(engine, export_dir=Path("dsr-exports"), once=True)

A request covering a manual location (``govern.datamap.actions.register_manual_location``)
stops in ``awaiting_action`` at that step until ``dsr.confirm_manual_step`` records that an
operator did the work.
"""

from govern.dsr.deadlines import WorkCalendar, add_months, due_at, parse_holidays
from govern.dsr.schemas import (
    REQUEST_TYPES,
    STATES,
    TRANSITIONS,
    DsrMap,
    ExportOut,
    ManualOut,
    MapEntry,
    PlanOut,
    ProcessResult,
    RegisterEntry,
    Report,
    RequestDetail,
    RequestList,
    RequestOut,
    StepOut,
    SubmitResult,
    WorkResult,
)
from govern.dsr.service import (
    approve,
    assign,
    check_deadlines,
    confirm_manual_step,
    deny,
    dsr_map,
    exclude_restricted,
    export_package,
    extend,
    is_restricted,
    lift_restrictions,
    list_requests,
    plan,
    register,
    report,
    resend_code,
    restricted_subject_ids,
    show,
    submit,
    verify,
)
from govern.dsr.workers import (
    DEFAULT_ROWS_PER_TRANSACTION,
    claim_next,
    process_request,
    work,
)

__all__ = [
    "DEFAULT_ROWS_PER_TRANSACTION",
    "REQUEST_TYPES",
    "STATES",
    "TRANSITIONS",
    "DsrMap",
    "ExportOut",
    "ManualOut",
    "MapEntry",
    "PlanOut",
    "ProcessResult",
    "RegisterEntry",
    "Report",
    "RequestDetail",
    "RequestList",
    "RequestOut",
    "StepOut",
    "SubmitResult",
    "WorkCalendar",
    "WorkResult",
    "add_months",
    "approve",
    "assign",
    "check_deadlines",
    "claim_next",
    "confirm_manual_step",
    "deny",
    "dsr_map",
    "due_at",
    "exclude_restricted",
    "export_package",
    "extend",
    "is_restricted",
    "lift_restrictions",
    "list_requests",
    "parse_holidays",
    "plan",
    "process_request",
    "register",
    "report",
    "resend_code",
    "restricted_subject_ids",
    "show",
    "submit",
    "verify",
    "work",
]
