"""govern: data governance and GDPR consent for SQLAlchemy services.

Everything public is importable from here; submodules load on first use so that
``import govern`` stays fast (Alembic, APScheduler and friends load only when needed)::

    import govern

    settings = govern.load_settings()
    engine = govern.create_engine(settings.database_url.get_secret_value())
    govern.migrations.upgrade(settings.database_url.get_secret_value())
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Keys and encryption (issue 3)
    from govern import crypto, keys, migrations
    from govern.config import Settings, load_settings
    from govern.datamap import ColumnEntry, TableEntry, data_map, governed, personal
    from govern.db import (
        DOMAINS,
        create_engine,
        load_models,
        metadata,
        session_factory,
        transaction,
    )
    from govern.doctor import CheckResult, DoctorReport, run_doctor
    from govern.errors import (
        ConfigError,
        CryptoError,
        DatabaseError,
        DependentDomainError,
        GovernError,
        KeyInUseError,
        KeyringNotBoundError,
        MigrationError,
        PlaintextRefusedError,
        TamperedValueError,
        UnknownDomainError,
        UnknownKeyError,
        UnknownRevisionError,
        UsageError,
        WrongKekError,
    )
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
    "CheckResult": "govern.doctor",
    "ColumnEntry": "govern.datamap",
    "ConfigError": "govern.errors",
    "DOMAINS": "govern.db",
    "DatabaseError": "govern.errors",
    "DependentDomainError": "govern.errors",
    "DoctorReport": "govern.doctor",
    "GovernError": "govern.errors",
    "MigrationError": "govern.errors",
    "Settings": "govern.config",
    "TableEntry": "govern.datamap",
    "UTCDateTime": "govern.types",
    "UnknownDomainError": "govern.errors",
    "UnknownRevisionError": "govern.errors",
    "UsageError": "govern.errors",
    "create_engine": "govern.db",
    "governed": "govern.datamap",
    "load_models": "govern.db",
    "load_settings": "govern.config",
    "metadata": "govern.db",
    "migrations": "",
    "personal": "govern.datamap",
    "data_map": "govern.datamap",
    "run_doctor": "govern.doctor",
    "session_factory": "govern.db",
    "transaction": "govern.db",
    # Keys and encryption (issue 3)
    "BlindIndex": "govern.types",
    "CryptoError": "govern.errors",
    "EncryptedBytes": "govern.types",
    "EncryptedDate": "govern.types",
    "EncryptedDecimal": "govern.types",
    "EncryptedJSON": "govern.types",
    "EncryptedString": "govern.types",
    "KeyInUseError": "govern.errors",
    "KeyringNotBoundError": "govern.errors",
    "PlaintextRefusedError": "govern.errors",
    "Shredded": "govern.types",
    "ShreddedJSON": "govern.types",
    "ShreddedString": "govern.types",
    "TamperedValueError": "govern.errors",
    "TokenString": "govern.types",
    "UnknownKeyError": "govern.errors",
    "WrongKekError": "govern.errors",
    "attach": "govern.keys",
    "crypto": "",
    "detokenise": "govern.keys",
    "keys": "",
    "lookup": "govern.keys",
    "shred_subject": "govern.keys",
    "tokenise": "govern.keys",
}

__all__ = [
    "DOMAINS",
    "BlindIndex",
    "CheckResult",
    "ColumnEntry",
    "ConfigError",
    "CryptoError",
    "DatabaseError",
    "DependentDomainError",
    "DoctorReport",
    "EncryptedBytes",
    "EncryptedDate",
    "EncryptedDecimal",
    "EncryptedJSON",
    "EncryptedString",
    "GovernError",
    "KeyInUseError",
    "KeyringNotBoundError",
    "MigrationError",
    "PlaintextRefusedError",
    "Settings",
    "Shredded",
    "ShreddedJSON",
    "ShreddedString",
    "TableEntry",
    "TamperedValueError",
    "TokenString",
    "UTCDateTime",
    "UnknownDomainError",
    "UnknownKeyError",
    "UnknownRevisionError",
    "UsageError",
    "WrongKekError",
    "__version__",
    "attach",
    "create_engine",
    "crypto",
    "data_map",
    "detokenise",
    "governed",
    "keys",
    "load_models",
    "load_settings",
    "lookup",
    "metadata",
    "migrations",
    "personal",
    "run_doctor",
    "session_factory",
    "shred_subject",
    "tokenise",
    "transaction",
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
