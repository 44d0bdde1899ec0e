"""Tokenised columns: the table keeps a token, the real value lives encrypted in the vault.

For card numbers and bank accounts. A token looks like ``tok_<24 hex>_4242``: random, with
the last four characters of the value for display. Raw values written through an ORM
``Session`` are tokenised at flush (the vault row is written in the same transaction);
anything else that is not a token is refused. Getting the value back is an explicit,
audited call, :func:`govern.keys.detokenise`::

    card_number: Mapped[str | None] = mapped_column(TokenString("card_number"))
"""

from __future__ import annotations

import re
import secrets
from typing import Any, ClassVar

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from govern.errors import PlaintextRefusedError

TOKEN_RE = re.compile(r"tok_[0-9a-f]{24}_[0-9A-Za-z]{0,4}\Z")
TOKEN_LENGTH = 33


def is_token(value: object) -> bool:
    """Whether ``value`` is a well-formed token."""
    return isinstance(value, str) and TOKEN_RE.match(value) is not None


def make_token(value: str) -> str:
    """A new random token keeping the last four letters or digits of ``value``."""
    tail = re.sub(r"[^0-9A-Za-z]", "", value)[-4:]
    return f"tok_{secrets.token_hex(12)}_{tail}"


def last_four(token: str) -> str:
    """The display digits a token keeps."""
    return token.rsplit("_", 1)[-1]


class TokenString(TypeDecorator[str]):
    """A column that only ever stores tokens of one ``kind`` (``card_number``, ...).

    ``bank_account: Mapped[str | None] = mapped_column(TokenString("bank_account"))``
    """

    impl = String(64)
    cache_ok = True
    protection: ClassVar[str] = "tokenised"

    def __init__(self, kind: str, context: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.context = context
        self.explicit_context = context is not None

    @property
    def python_type(self) -> type[str]:
        return str

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or is_token(value):
            return value
        table, _, column = (self.context or ".").partition(".")
        raise PlaintextRefusedError(
            f"{self.context} stores tokens only: write raw values through an ORM Session "
            "(tokenised at flush) or govern.keys.tokenise()",
            table=table or None,
            column=column or None,
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)
