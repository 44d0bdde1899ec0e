"""Pydantic models of events, sink configurations and relay results."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

SINK_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class Event(BaseModel):
    """An emitted event as hooks and callers see it: the outbox row, parsed."""

    model_config = ConfigDict(frozen=True)

    id: int
    type: str
    aggregate_type: str
    aggregate_id: str
    sequence: int
    subject: str | None
    time: dt.datetime
    cloudevent: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.cloudevent.get("data")

    @classmethod
    def from_payload(cls, payload: str) -> Event:
        """Rebuild an event from the outbox's CloudEvents JSON text."""
        ce = json.loads(payload)
        return cls(
            id=int(ce["id"]),
            type=ce["type"],
            aggregate_type=ce["aggregatetype"],
            aggregate_id=ce["partitionkey"],
            sequence=int(ce["sequence"]),
            subject=ce.get("subject"),
            time=dt.datetime.fromisoformat(ce["time"]),
            cloudevent=ce,
        )


class _SinkBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JsonlSinkConfig(_SinkBase):
    """Appends each event as one line to ``DIRECTORY/date=YYYY-MM-DD/events.jsonl``."""

    kind: Literal["jsonl"]
    directory: Path
    fsync: bool = Field(default=True, description="fsync each batch before moving the position.")


class WebhookSinkConfig(_SinkBase):
    """POSTs each event (CloudEvents structured mode) with an HMAC-SHA256 signature header."""

    kind: Literal["webhook"]
    url: str
    secret: SecretStr = Field(description="HMAC-SHA256 key; at least 16 characters.")
    timeout: float = Field(default=10.0, gt=0, le=300)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_initial: float = Field(default=0.5, ge=0, le=60)
    backoff_max: float = Field(default=30.0, ge=0, le=600)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL with a host")
        return value

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("secret must be at least 16 characters")
        return value


class KafkaSinkConfig(_SinkBase):
    """Produces each event to Kafka (key = aggregate id, CloudEvents binary-mode headers)."""

    kind: Literal["kafka"]
    bootstrap_servers: str
    topic: str = Field(
        default="outbox.event.{aggregatetype}",
        description="Topic, or a template with {aggregatetype} (Debezium's default routing).",
    )
    timeout: float = Field(default=30.0, gt=0, le=600)
    producer: dict[str, str] = Field(
        default_factory=dict, description="Extra librdkafka settings (security, tuning)."
    )

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        probe = value.replace("{aggregatetype}", "x")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", probe):
            raise ValueError("topic must be letters, digits, '.', '_', '-' (and {aggregatetype})")
        return value


SinkConfig = Annotated[
    JsonlSinkConfig | WebhookSinkConfig | KafkaSinkConfig, Field(discriminator="kind")
]


class SinksConfig(BaseModel):
    """The ``[sinks.NAME]`` tables of the sinks file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sinks: dict[str, SinkConfig] = Field(default_factory=dict)

    @field_validator("sinks")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not SINK_NAME.match(name):
                raise ValueError(
                    f"sink name {name!r} must be lowercase letters, digits, '-' or '_'"
                )
        return value


class SinkRun(BaseModel):
    """What one relay run did for one sink."""

    sink: str
    delivered: int
    position: int
    backlog: int
    error: str | None = None
    skipped: str | None = None


class RelayReport(BaseModel):
    sinks: list[SinkRun]

    @property
    def ok(self) -> bool:
        return all(s.error is None for s in self.sinks)

    def text_lines(self) -> list[str]:
        lines = []
        for s in self.sinks:
            line = f"{s.sink}: delivered {s.delivered}, position {s.position}, backlog {s.backlog}"
            if s.skipped:
                line += f" (skipped: {s.skipped})"
            if s.error:
                line += f"; FAILED: {s.error}"
            lines.append(line)
        return lines or ["no sinks configured (set GOVERN_SINKS_FILE)"]


class SinkStatus(BaseModel):
    sink: str
    kind: str
    position: int
    backlog: int
    delivered: int
    last_error: str | None
    last_error_at: dt.datetime | None
    lease_owner: str | None
    lease_until: dt.datetime | None


class CdcStatusReport(BaseModel):
    outbox_last_id: int
    sinks: list[SinkStatus]

    def text_lines(self) -> list[str]:
        lines = [f"outbox: last id {self.outbox_last_id}"]
        for s in self.sinks:
            line = f"{s.sink} ({s.kind}): position {s.position}, backlog {s.backlog}"
            if s.last_error:
                line += f"; last error: {s.last_error}"
            lines.append(line)
        return lines


class ReplayResult(BaseModel):
    sink: str
    previous_position: int
    position: int
    backlog: int

    def text_lines(self) -> list[str]:
        return [
            f"{self.sink}: position {self.previous_position} -> {self.position}; "
            f"{self.backlog} events will be delivered again by `govern cdc relay`"
        ]
