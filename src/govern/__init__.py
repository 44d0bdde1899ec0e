"""govern: data governance and GDPR consent for SQLAlchemy services.

Everything public is importable from here; submodules load on first use so that
``import govern`` stays fast (Alembic, APScheduler and friends load only when needed)::

    import govern

    settings = govern.load_settings()
    engine = govern.create_engine(settings.database_url.get_secret_value())
    govern.migrations.upgrade(settings.database_url.get_secret_value())

This file is generated from ``_LAZY`` by ``scripts/sync_exports.py``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from govern import consent, crypto, events, keys, migrations, retention
    from govern.config import Settings, load_settings
    from govern.datamap import ColumnEntry, TableEntry, data_map, governed, personal
    from govern.db import (
        DOMAINS,
        create_engine,
        load_models,
        metadata,
        session_factory,
        transaction,
        write_transaction,
    )
    from govern.doctor import CheckResult, DoctorReport, run_doctor
    from govern.errors import (
        ConfigError,
        ConsentError,
        CryptoError,
        DatabaseError,
        DependentDomainError,
        DuplicateIdempotencyKeyError,
        GovernError,
        InvalidEventError,
        InvalidTCFStringError,
        InvalidTimestampError,
        KeyInUseError,
        KeyringNotBoundError,
        MigrationError,
        MissingExtraError,
        MissingLocaleError,
        NotApprovedError,
        PlaintextRefusedError,
        PolicyError,
        RestoreWindowError,
        SinkConfigError,
        SinkError,
        TamperedValueError,
        UnknownDomainError,
        UnknownKeyError,
        UnknownNoticeError,
        UnknownPolicyError,
        UnknownPurposeError,
        UnknownRevisionError,
        UnknownRunError,
        UnknownSinkError,
        UnsearchableColumnError,
        UsageError,
        WrongKekError,
    )
    from govern.events import HookRegistry, emit, emit_tombstones, track_changes
    from govern.keys import attach, detokenise, lookup, shred_subject, tokenise
    from govern.types import (
        BlindIndex,
        EncryptedBytes,
        EncryptedDate,
        EncryptedDecimal,
        EncryptedJSON,
        EncryptedString,
        Shredded,
        ShreddedJSON,
        ShreddedString,
        TokenString,
        UTCDateTime,
    )

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "consent": "",
    "crypto": "",
    "events": "",
    "keys": "",
    "migrations": "",
    "retention": "",
    "Settings": "govern.config",
    "load_settings": "govern.config",
    "ColumnEntry": "govern.datamap",
    "TableEntry": "govern.datamap",
    "data_map": "govern.datamap",
    "governed": "govern.datamap",
    "personal": "govern.datamap",
    "DOMAINS": "govern.db",
    "create_engine": "govern.db",
    "load_models": "govern.db",
    "metadata": "govern.db",
    "session_factory": "govern.db",
    "transaction": "govern.db",
    "write_transaction": "govern.db",
    "CheckResult": "govern.doctor",
    "DoctorReport": "govern.doctor",
    "run_doctor": "govern.doctor",
    "ConfigError": "govern.errors",
    "ConsentError": "govern.errors",
    "CryptoError": "govern.errors",
    "DatabaseError": "govern.errors",
    "DependentDomainError": "govern.errors",
    "DuplicateIdempotencyKeyError": "govern.errors",
    "GovernError": "govern.errors",
    "InvalidEventError": "govern.errors",
    "InvalidTCFStringError": "govern.errors",
    "InvalidTimestampError": "govern.errors",
    "KeyInUseError": "govern.errors",
    "KeyringNotBoundError": "govern.errors",
    "MigrationError": "govern.errors",
    "MissingExtraError": "govern.errors",
    "MissingLocaleError": "govern.errors",
    "NotApprovedError": "govern.errors",
    "PlaintextRefusedError": "govern.errors",
    "PolicyError": "govern.errors",
    "RestoreWindowError": "govern.errors",
    "SinkConfigError": "govern.errors",
    "SinkError": "govern.errors",
    "TamperedValueError": "govern.errors",
    "UnknownDomainError": "govern.errors",
    "UnknownKeyError": "govern.errors",
    "UnknownNoticeError": "govern.errors",
    "UnknownPolicyError": "govern.errors",
    "UnknownPurposeError": "govern.errors",
    "UnknownRevisionError": "govern.errors",
    "UnknownRunError": "govern.errors",
    "UnknownSinkError": "govern.errors",
    "UnsearchableColumnError": "govern.errors",
    "UsageError": "govern.errors",
    "WrongKekError": "govern.errors",
    "HookRegistry": "govern.events",
    "emit": "govern.events",
    "emit_tombstones": "govern.events",
    "track_changes": "govern.events",
    "attach": "govern.keys",
    "detokenise": "govern.keys",
    "lookup": "govern.keys",
    "shred_subject": "govern.keys",
    "tokenise": "govern.keys",
    "BlindIndex": "govern.types",
    "EncryptedBytes": "govern.types",
    "EncryptedDate": "govern.types",
    "EncryptedDecimal": "govern.types",
    "EncryptedJSON": "govern.types",
    "EncryptedString": "govern.types",
    "Shredded": "govern.types",
    "ShreddedJSON": "govern.types",
    "ShreddedString": "govern.types",
    "TokenString": "govern.types",
    "UTCDateTime": "govern.types",
}

__all__ = [
    "DOMAINS",
    "BlindIndex",
    "CheckResult",
    "ColumnEntry",
    "ConfigError",
    "ConsentError",
    "CryptoError",
    "DatabaseError",
    "DependentDomainError",
    "DoctorReport",
    "DuplicateIdempotencyKeyError",
    "EncryptedBytes",
    "EncryptedDate",
    "EncryptedDecimal",
    "EncryptedJSON",
    "EncryptedString",
    "GovernError",
    "HookRegistry",
    "InvalidEventError",
    "InvalidTCFStringError",
    "InvalidTimestampError",
    "KeyInUseError",
    "KeyringNotBoundError",
    "MigrationError",
    "MissingExtraError",
    "MissingLocaleError",
    "NotApprovedError",
    "PlaintextRefusedError",
    "PolicyError",
    "RestoreWindowError",
    "Settings",
    "Shredded",
    "ShreddedJSON",
    "ShreddedString",
    "SinkConfigError",
    "SinkError",
    "TableEntry",
    "TamperedValueError",
    "TokenString",
    "UTCDateTime",
    "UnknownDomainError",
    "UnknownKeyError",
    "UnknownNoticeError",
    "UnknownPolicyError",
    "UnknownPurposeError",
    "UnknownRevisionError",
    "UnknownRunError",
    "UnknownSinkError",
    "UnsearchableColumnError",
    "UsageError",
    "WrongKekError",
    "__version__",
    "attach",
    "consent",
    "create_engine",
    "crypto",
    "data_map",
    "detokenise",
    "emit",
    "emit_tombstones",
    "events",
    "governed",
    "keys",
    "load_models",
    "load_settings",
    "lookup",
    "metadata",
    "migrations",
    "personal",
    "retention",
    "run_doctor",
    "session_factory",
    "shred_subject",
    "tokenise",
    "track_changes",
    "transaction",
    "write_transaction",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'govern' has no attribute {name!r}")
    if module == "":
        value: Any = importlib.import_module(f"govern.{name}")
    else:
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
