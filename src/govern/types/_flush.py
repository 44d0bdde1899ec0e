"""Session hooks that prepare protected columns at flush time.

Column types see one value and the dialect, nothing else. Three protections need more:
a token needs a vault row, a blind index needs its source column's value, a shredded value
needs its subject's key. ``before_flush`` supplies them in the flushing transaction;
``after_flush_postexec`` puts the plain values back on the objects.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value

from govern.crypto.keyring import Keyring, bound_keyring
from govern.types.blind_index import BlindIndex
from govern.types.shredded import ForSubject, Shredded, _Shredded
from govern.types.token import TokenString, is_token

_RESTORE = "_govern_restore"


@dataclass
class _Spec:
    tokens: list[tuple[str, TokenString]] = field(default_factory=list)
    blinds: list[tuple[str, str, BlindIndex]] = field(default_factory=list)
    shredded: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.tokens or self.blinds or self.shredded)


_SPECS: dict[Mapper[Any], _Spec] = {}
_BY_CLASS: dict[type[Any], _Spec] = {}  # the same specs by instance class: no inspect() per object


def _spec(mapper: Mapper[Any]) -> _Spec:
    spec = _SPECS.get(mapper)
    if spec is not None:
        return spec
    spec = _Spec()
    by_column = {prop.columns[0].name: prop.key for prop in mapper.column_attrs}
    for prop in mapper.column_attrs:
        typ = prop.columns[0].type
        if isinstance(typ, TokenString):
            spec.tokens.append((prop.key, typ))
        elif isinstance(typ, BlindIndex):
            spec.blinds.append((prop.key, by_column[typ.source], typ))
        elif isinstance(typ, _Shredded):
            spec.shredded.append((prop.key, by_column[typ.subject]))
    _SPECS[mapper] = spec
    return spec


def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    pending: list[tuple[Any, str, Any, Any]] = []  # obj, attr, subject id, value
    keyring: Keyring | None = None
    for obj in [*session.new, *session.dirty]:
        spec = _BY_CLASS.get(type(obj))
        if spec is None:
            spec = _BY_CLASS[type(obj)] = _spec(inspect(obj).mapper)
        if spec.empty:
            continue
        state = inspect(obj)
        is_new = state.key is None

        def changed(key: str, state: Any = state, is_new: bool = is_new) -> bool:
            return is_new or bool(state.attrs[key].history.has_changes())

        if keyring is None:
            keyring = bound_keyring(session.get_bind(mapper=state.mapper).dialect)
        for key, typ in spec.tokens:
            value = getattr(obj, key)
            if value is not None and not is_token(value) and changed(key):
                from govern.keys.service import tokenise

                setattr(obj, key, tokenise(session, value, typ.kind))
        for key, source, btyp in spec.blinds:
            if changed(source):
                value = getattr(obj, source)
                digest = None if value is None else btyp.digest(keyring, value)
                setattr(obj, key, digest)
        for key, subject_key in spec.shredded:
            value = getattr(obj, key)
            if value is not None and not isinstance(value, ForSubject | Shredded) and changed(key):
                pending.append((obj, key, getattr(obj, subject_key), value))
    if not pending or keyring is None:
        return
    from govern.keys.service import subject_ciphers

    subjects = {p[2] for p in pending if p[2] is not None}
    ciphers = subject_ciphers(session, keyring, subjects) if subjects else {}
    restore = session.info.setdefault(_RESTORE, [])
    for obj, key, subject, value in pending:
        cipher = keyring.primary() if subject is None else ciphers[_uuid(subject)]
        setattr(obj, key, ForSubject(cipher, value))
        restore.append((obj, key, value))


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _after_flush_postexec(session: Session, _ctx: Any) -> None:
    for obj, key, value in session.info.pop(_RESTORE, []):
        set_committed_value(obj, key, value)


def _after_rollback(session: Session) -> None:
    for obj, key, value in session.info.pop(_RESTORE, []):
        set_committed_value(obj, key, value)


event.listen(Session, "before_flush", _before_flush)
event.listen(Session, "after_flush_postexec", _after_flush_postexec)
event.listen(Session, "after_soft_rollback", lambda s, _t: _after_rollback(s))
