"""Keys in the database: load and attach a keyring, rotate, reencrypt, retire, rewrap,
crypto-shred a subject, tokenise and detokenise, and scan coverage.

A host service attaches a keyring once per engine::

    engine = govern.create_engine(url)
    govern.keys.attach(engine, settings)
    with govern.transaction(engine) as session:
        session.add(Subject(email="ann@example.com", ...))       # sealed at flush
        govern.keys.lookup(session, Subject.email, "ann@example.com")
"""

from govern.keys.scan import ColumnScan, ModelGap, ScanReport, scan_encryption
from govern.keys.service import (
    ProtectedColumn,
    attach,
    bind_keyring,
    count_sealed_by,
    detokenise,
    list_keys,
    load_keyring,
    lock_keys,
    protected_columns,
    provider_from_settings,
    reencrypt,
    retire,
    rewrap,
    rotate,
    shred_subject,
    subject_ciphers,
    tokenise,
)
from govern.types.blind_index import lookup

__all__ = [
    "ColumnScan",
    "ModelGap",
    "ProtectedColumn",
    "ScanReport",
    "attach",
    "bind_keyring",
    "count_sealed_by",
    "detokenise",
    "list_keys",
    "load_keyring",
    "lock_keys",
    "lookup",
    "protected_columns",
    "provider_from_settings",
    "reencrypt",
    "retire",
    "rewrap",
    "rotate",
    "scan_encryption",
    "shred_subject",
    "subject_ciphers",
    "tokenise",
]
