"""Commerce domain: orders, payments, invoices (statutory records), refunds and wallets."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from govern.datamap import governed, not_personal, personal
from govern.db import CommerceBase
from govern.types.encrypted import EncryptedDecimal, EncryptedJSON, EncryptedString
from govern.types.token import TokenString
from govern.types.utc import UTCDateTime, utcnow

Money = Numeric(12, 2)


class Order(CommerceBase):
    __tablename__ = "orders"
    __table_args__ = (
        Index(None, "subject_id", "placed_at"),
        {
            "info": governed(
                owner="team-commerce",
                steward="finance@example.com",
                subject_link="subject_id",
                description="Orders placed by subjects (course purchases, shop items).",
            )
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"))
    status: Mapped[str] = mapped_column(String(16), default="placed")
    currency: Mapped[str] = mapped_column(String(3))
    total_amount: Mapped[Decimal] = mapped_column(
        EncryptedDecimal(), info=personal("user.behavior.purchase_history")
    )
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON(), info=personal("user.contact.address")
    )
    placed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OrderLine(CommerceBase):
    __tablename__ = "order_lines"
    __table_args__ = {
        "info": governed(
            owner="team-commerce",
            steward="finance@example.com",
            subject_link="order_id -> orders.subject_id",
            description="Items of an order.",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_amount: Mapped[Decimal] = mapped_column(Money)


class Payment(CommerceBase):
    """A payment. Card and bank details are financial records."""

    __tablename__ = "payments"
    __table_args__ = {
        "info": governed(
            owner="team-payments",
            steward="finance@example.com",
            subject_link="subject_id",
            description="Payments with card or bank details.",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    card_number: Mapped[str | None] = mapped_column(
        TokenString("card_number"), info=personal("user.financial.credit_card")
    )
    card_holder: Mapped[str | None] = mapped_column(EncryptedString(), info=personal("user.name"))
    bank_account: Mapped[str | None] = mapped_column(
        TokenString("bank_account"), info=personal("user.financial.bank_account")
    )
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="authorised")
    paid_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Invoice(CommerceBase):
    """Invoices are kept for the statutory period (``retain_until``) even after erasure."""

    __tablename__ = "invoices"
    __table_args__ = {
        "info": governed(
            owner="team-commerce",
            steward="finance@example.com",
            subject_link="subject_id",
            description="Invoices, kept for the statutory period (Art. 17(3)(b)).",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    billing_name: Mapped[str] = mapped_column(EncryptedString(), info=personal("user.name"))
    billing_address: Mapped[dict[str, Any]] = mapped_column(
        EncryptedJSON(), info=personal("user.contact.address")
    )
    vat_id: Mapped[str | None] = mapped_column(
        EncryptedString(), info=personal("user.financial.tax_id")
    )
    total_amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    retain_until: Mapped[dt.date] = mapped_column(
        Date, info=not_personal("a statutory date, the same for every subject")
    )


class Refund(CommerceBase):
    __tablename__ = "refunds"
    __table_args__ = {
        "info": governed(
            owner="team-payments",
            steward="finance@example.com",
            subject_link="payment_id -> payments.subject_id",
            description="Refunds of payments.",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str | None] = mapped_column(
        EncryptedString(), info=personal("user.content.private")
    )
    refunded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Wallet(CommerceBase):
    __tablename__ = "wallets"
    __table_args__ = {
        "info": governed(
            owner="team-payments",
            steward="finance@example.com",
            subject_link="subject_id",
            description="Prepaid balances of subjects.",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), unique=True)
    balance: Mapped[Decimal] = mapped_column(
        EncryptedDecimal(), info=personal("user.financial.account_balance")
    )
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
