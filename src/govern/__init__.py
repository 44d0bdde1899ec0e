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
    from govern import events, migrations, retention
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
        DatabaseError,
        DependentDomainError,
        GovernError,
        InvalidEventError,
        MigrationError,
        MissingExtraError,
        NotApprovedError,
        PolicyError,
        RestoreWindowError,
        SinkConfigError,
        SinkError,
        UnknownDomainError,
        UnknownPolicyError,
        UnknownRevisionError,
        UnknownRunError,
        UnknownSinkError,
        UsageError,
    )
    from govern.events import HookRegistry, emit, emit_tombstones, track_changes
    from govern.types import UTCDateTime

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # events (issue 6)
    "HookRegistry": "govern.events",
    "InvalidEventError": "govern.errors",
    "MissingExtraError": "govern.errors",
    "SinkConfigError": "govern.errors",
    "SinkError": "govern.errors",
    "UnknownSinkError": "govern.errors",
    "emit": "govern.events",
    "emit_tombstones": "govern.events",
    "events": "",
    "track_changes": "govern.events",
    # foundation
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
    "retention": "",
    "NotApprovedError": "govern.errors",
    "PolicyError": "govern.errors",
    "RestoreWindowError": "govern.errors",
    "UnknownPolicyError": "govern.errors",
    "UnknownRunError": "govern.errors",
    "personal": "govern.datamap",
    "data_map": "govern.datamap",
    "run_doctor": "govern.doctor",
    "session_factory": "govern.db",
    "transaction": "govern.db",
}

__all__ = [
    "DOMAINS",
    "CheckResult",
    "ColumnEntry",
    "ConfigError",
    "DatabaseError",
    "DependentDomainError",
    "DoctorReport",
    "GovernError",
    "HookRegistry",
    "InvalidEventError",
    "MigrationError",
    "MissingExtraError",
    "NotApprovedError",
    "PolicyError",
    "RestoreWindowError",
    "Settings",
    "SinkConfigError",
    "SinkError",
    "TableEntry",
    "UTCDateTime",
    "UnknownDomainError",
    "UnknownPolicyError",
    "UnknownRevisionError",
    "UnknownRunError",
    "UnknownSinkError",
    "UsageError",
    "__version__",
    "create_engine",
    "data_map",
    "emit",
    "emit_tombstones",
    "events",
    "governed",
    "load_models",
    "load_settings",
    "metadata",
    "migrations",
    "personal",
    "retention",
    "run_doctor",
    "session_factory",
    "track_changes",
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
