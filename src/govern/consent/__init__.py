"""The consent ledger: purposes, versioned localised notices, a tamper-evident history.

Host services call these with their own session and commit themselves::

    from govern import consent

    with govern.write_transaction(engine) as session:
        consent.grant(session, "u-4821", "marketing.email", locale="fr-CA",
                      method="web_form", jurisdiction="FR")
    with govern.transaction(engine) as session:
        if consent.check(session, "u-4821", "marketing.email").allowed: ...
"""

from govern.consent.integrity import create_checkpoint, public_key_of, verify
from govern.consent.receipts import export_lines, iso27560_record, kantara_receipt
from govern.consent.schemas import (
    BatchDecision,
    Catalog,
    CatalogResult,
    CheckpointOut,
    CollectionMethod,
    ConsentDecision,
    ConsentEvent,
    ConsentIn,
    ConsentRecordOut,
    Finding,
    LegalBasis,
    NoticeIn,
    NoticeTextIn,
    NoticeTextOut,
    NoticeVersionIn,
    NoticeVersionOut,
    PurposeIn,
    PurposeOut,
    Reason,
    VerifyReport,
)
from govern.consent.service import (
    add_notice,
    add_notice_version,
    add_purpose,
    append,
    append_bulk,
    append_many,
    check,
    check_many,
    expire_due,
    grant,
    history,
    key_subject_id,
    list_purposes,
    load_catalog,
    notice_text,
    record_gpc,
    shred_subject,
    withdraw,
)

__all__ = [
    "BatchDecision",
    "Catalog",
    "CatalogResult",
    "CheckpointOut",
    "CollectionMethod",
    "ConsentDecision",
    "ConsentEvent",
    "ConsentIn",
    "ConsentRecordOut",
    "Finding",
    "LegalBasis",
    "NoticeIn",
    "NoticeTextIn",
    "NoticeTextOut",
    "NoticeVersionIn",
    "NoticeVersionOut",
    "PurposeIn",
    "PurposeOut",
    "Reason",
    "VerifyReport",
    "add_notice",
    "add_notice_version",
    "add_purpose",
    "append",
    "append_bulk",
    "append_many",
    "check",
    "check_many",
    "create_checkpoint",
    "expire_due",
    "export_lines",
    "grant",
    "history",
    "iso27560_record",
    "kantara_receipt",
    "key_subject_id",
    "list_purposes",
    "load_catalog",
    "notice_text",
    "public_key_of",
    "record_gpc",
    "shred_subject",
    "verify",
    "withdraw",
]
