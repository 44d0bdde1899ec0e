"""The audit trail: one append-only row per governance action, in the caller's transaction."""

from govern.audit.service import record

__all__ = ["record"]
