"""Where personal data lives: governance metadata on tables and columns, and a data_map over it.

Tables carry ``info={"owner", "steward", "subject_link", "description"}`` and columns that
hold personal or financial data carry ``info={"categories": [...]}`` with dotted taxonomy keys
in the style of fideslang (``user.contact.email``, ``user.financial.bank_account``).
"""

from govern.datamap.registry import (
    PSEUDONYMOUS,
    ColumnEntry,
    TableEntry,
    data_map,
    governed,
    not_personal,
    personal,
    sealed_copies,
)

__all__ = [
    "PSEUDONYMOUS",
    "ColumnEntry",
    "TableEntry",
    "data_map",
    "governed",
    "not_personal",
    "personal",
    "sealed_copies",
]
