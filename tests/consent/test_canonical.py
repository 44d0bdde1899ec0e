"""The hand-rolled canonical form is exactly the generic compact JSON of the fixed array."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govern.consent import chain

_text = st.text(max_size=40)  # any code point but lone surrogates (not UTF-8 encodable)
_opt = st.none() | _text
_times = st.datetimes(
    min_value=dt.datetime(1970, 1, 2),
    max_value=dt.datetime(9999, 12, 30),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30))]),
)


def _reference(f: dict[str, object]) -> bytes:
    def ts(v: object) -> str | None:
        assert v is None or isinstance(v, dt.datetime)
        return None if v is None else v.astimezone(dt.UTC).isoformat(timespec="microseconds")

    fields = [
        chain.HASH_VERSION, f["subject_ref"], f["seq"], str(f["record_id"]), f["purpose"],
        f["event"], f["notice"], f["notice_version"], f["locale"], f["legal_basis"],
        f["method"], f["jurisdiction"], f["controller"], ts(f["occurred_at"]),
        ts(f["recorded_at"]), ts(f["expires_at"]), f["tcf_string"], f["idempotency_key"],
        f["sealed_digest"],
    ]  # fmt: skip
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


@given(
    st.fixed_dictionaries(
        {
            "subject_ref": _text,
            "seq": st.integers(min_value=0, max_value=2**62),
            "record_id": st.uuids(),
            "purpose": _text,
            "event": _text,
            "notice": _text,
            "notice_version": st.integers(min_value=0, max_value=2**31),
            "locale": _text,
            "legal_basis": _text,
            "method": _text,
            "jurisdiction": _opt,
            "controller": _text,
            "occurred_at": _times,
            "recorded_at": _times,
            "expires_at": st.none() | _times,
            "tcf_string": _opt,
            "idempotency_key": _opt,
            "sealed_digest": _opt,
        }
    )
)
def test_canonical_equals_generic_compact_json(fields: dict[str, object]) -> None:
    assert chain.canonical(**fields) == _reference(fields)  # type: ignore[arg-type]


def test_canonical_refuses_a_value_outside_the_fixed_shape() -> None:
    with pytest.raises(TypeError):
        chain.canonical_join("s", True, str(uuid.uuid4()), "]")
