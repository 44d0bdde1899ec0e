"""Key tables (core domain): wrapped data keys, subject keys, the token vault, shred proofs."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Index, Integer, LargeBinary, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from govern.datamap import governed, not_personal, personal
from govern.db import CoreBase
from govern.types.encrypted import EncryptedString
from govern.types.utc import UTCDateTime, utcnow

PURPOSE_DATA = "data"
PURPOSE_BLIND = "blind"
STATE_PRIMARY = "primary"
STATE_ACTIVE = "active"
STATE_RETIRED = "retired"


class DataKey(CoreBase):
    """A data key (DEK) wrapped by the KEK. Retired keys keep their row, not their material."""

    __tablename__ = "data_keys"
    __table_args__ = (
        # The database refuses a second primary or a second live blind-index root (core_0015).
        Index(
            "uq_data_keys_single_primary",
            "purpose",
            unique=True,
            sqlite_where=text("state = 'primary'"),
            postgresql_where=text("state = 'primary'"),
        ),
        Index(
            "uq_data_keys_single_blind_root",
            "purpose",
            unique=True,
            sqlite_where=text("purpose = 'blind' AND state <> 'retired'"),
            postgresql_where=text("purpose = 'blind' AND state <> 'retired'"),
        ),
        {
            "sqlite_autoincrement": True,
            "info": governed(
                owner="team-security",
                steward="security@example.com",
                subject_link=None,
                description="Data keys wrapped by the KEK: id, purpose, state, age.",
            ),
        },
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(16), default=PURPOSE_DATA)
    state: Mapped[str] = mapped_column(String(16), index=True)
    kek_fingerprint: Mapped[str] = mapped_column(String(16))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class SubjectKey(CoreBase):
    """One subject's shredding key, wrapped by the KEK; deleted to crypto-shred the subject."""

    __tablename__ = "subject_keys"
    __table_args__ = {
        "sqlite_autoincrement": True,
        "info": governed(
            owner="team-security",
            steward="dpo@example.com",
            subject_link="subject_id",
            description="Per-subject keys sealing crypto-shredded columns.",
        ),
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    kek_fingerprint: Mapped[str] = mapped_column(String(16))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TokenVaultEntry(CoreBase):
    """The real value behind a token, encrypted; read only through an audited call."""

    __tablename__ = "token_vault"
    __table_args__ = {
        "info": governed(
            owner="team-payments",
            steward="finance@example.com",
            subject_link=None,
            description="Token vault: card and bank numbers behind tokens, encrypted.",
        )
    }

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(
        EncryptedString(),
        info=personal("user.financial.credit_card", "user.financial.bank_account"),
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ShredProof(CoreBase):
    """Evidence that a subject key was destroyed: ids, a digest of the wrapped key, time.

    Holds no personal data and no key material (the SHA-256 of a KEK-wrapped key).
    """

    __tablename__ = "shred_proofs"
    __table_args__ = {
        "info": governed(
            owner="team-security",
            steward="dpo@example.com",
            subject_link=None,
            description="Proofs of crypto-shredding, without personal data.",
        )
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_key_id: Mapped[int] = mapped_column(Integer, unique=True)
    wrapped_key_sha256: Mapped[str] = mapped_column(String(64))
    shredded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(
        String(150), info=not_personal("an operator or service name, not the subject")
    )
    reason: Mapped[str] = mapped_column(
        String(200), info=not_personal("why the key was shredded, e.g. an erasure request id")
    )
