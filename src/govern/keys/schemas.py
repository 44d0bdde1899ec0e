"""Results of key commands: text lines for people, JSON for machines. No key material."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class KeyInfo(BaseModel):
    id: int
    purpose: str
    state: str
    kek_fingerprint: str
    created_at: dt.datetime
    age_days: int
    retired_at: dt.datetime | None = None

    def line(self) -> str:
        return (
            f"{self.id:>4}  {self.purpose:<5}  {self.state:<7}  kek {self.kek_fingerprint}  "
            f"created {self.created_at:%Y-%m-%d} ({self.age_days} d)"
        )


class KeyList(BaseModel):
    keys: list[KeyInfo]

    def text_lines(self) -> list[str]:
        if not self.keys:
            return ["no data keys yet (they are created on first use with GOVERN_KEK set)"]
        return [
            "  id  kind   state    KEK                   created",
            *(k.line() for k in self.keys),
        ]


class KeyChange(BaseModel):
    action: str
    key: KeyInfo

    def text_lines(self) -> list[str]:
        return [f"{self.action} data key {self.key.id}", self.key.line()]


class ReencryptResult(BaseModel):
    primary_key_id: int
    values: int
    columns: dict[str, int]
    old_key_ids: list[int]

    def text_lines(self) -> list[str]:
        if not self.old_key_ids:
            return [f"nothing to do: data key {self.primary_key_id} is the only live data key"]
        lines = [
            f"re-sealed {self.values} value(s) under primary data key {self.primary_key_id} "
            f"(old keys: {', '.join(map(str, self.old_key_ids))})"
        ]
        lines += [f"  {name}: {n}" for name, n in sorted(self.columns.items())]
        return lines


class RewrapResult(BaseModel):
    kek_fingerprint: str
    data_keys: int
    subject_keys: int

    def text_lines(self) -> list[str]:
        return [
            f"rewrapped {self.data_keys} data key(s) and {self.subject_keys} subject key(s) "
            f"under KEK {self.kek_fingerprint}; no data was rewritten"
        ]


class ShredResult(BaseModel):
    subject_key_id: int
    proof_id: int
    shredded_at: dt.datetime
