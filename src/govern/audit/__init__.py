"""The audit trail (one append-only row per governance action) and the signed audit bundle."""

from govern.audit.service import record, record_many, record_rows, rows

__all__ = ["record", "record_many", "record_rows", "rows"]
