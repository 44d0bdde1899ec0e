"""Where the relay delivers events: JSON-lines files, webhooks and Kafka.

A sink's :meth:`deliver` takes a batch in outbox order and either returns (every event
taken) or raises :class:`~govern.errors.SinkError` saying how many leading events it did
take; the relay moves the sink's position only past those. Sinks are configured in a TOML
file named by ``GOVERN_SINKS_FILE``::

    [sinks.warehouse]
    kind = "jsonl"
    directory = "/var/lib/govern/events"

    [sinks.crm]
    kind = "webhook"
    url = "https://crm.example.com/hooks/govern"
    secret = "at least sixteen characters"
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from govern.errors import MissingExtraError, SinkConfigError, SinkError, UnknownSinkError
from govern.events.schemas import (
    JsonlSinkConfig,
    KafkaSinkConfig,
    SinkConfig,
    SinksConfig,
    WebhookSinkConfig,
)

SIGNATURE_HEADER = "X-Govern-Signature"
EVENT_ID_HEADER = "X-Govern-Event-Id"


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row as the relay reads it."""

    id: int
    aggregatetype: str
    aggregateid: str
    type: str
    created_at: dt.datetime
    payload: str


class Sink(Protocol):
    name: str

    def deliver(self, batch: Sequence[OutboxRow]) -> None: ...

    def close(self) -> None: ...


def parse_sinks(text: str, origin: str = "sinks file") -> dict[str, SinkConfig]:
    """Validate a sinks TOML document strictly (unknown keys and kinds are errors)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SinkConfigError(f"{origin} is not valid TOML: {exc}") from None
    try:
        return dict(SinksConfig.model_validate(raw).sinks)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SinkConfigError(f"{origin}: {where}: {first['msg']}") from None


def load_sinks(path: Path | None) -> dict[str, SinkConfig]:
    """The sinks configured in ``path`` (``GOVERN_SINKS_FILE``); none when it is unset."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SinkConfigError(
            f"cannot read GOVERN_SINKS_FILE {path}: {exc.strerror or exc}"
        ) from None
    return parse_sinks(text, f"GOVERN_SINKS_FILE {path}")


def select_sinks(configured: Mapping[str, SinkConfig], name: str | None) -> dict[str, SinkConfig]:
    """All configured sinks, or the one named; an unknown name is a :class:`UnknownSinkError`."""
    if name is None:
        return dict(configured)
    if name not in configured:
        known = ", ".join(sorted(configured)) or "none configured (set GOVERN_SINKS_FILE)"
        raise UnknownSinkError(f"unknown sink {name!r}; configured sinks: {known}")
    return {name: configured[name]}


def sink_config(value: Mapping[str, Any]) -> SinkConfig:
    """Validate one sink's settings given in Python (``{"kind": "jsonl", ...}``)."""
    try:
        return TypeAdapter(SinkConfig).validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SinkConfigError(f"sink settings: {where}: {first['msg']}") from None


def build_sink(name: str, config: SinkConfig) -> Sink:
    if isinstance(config, JsonlSinkConfig):
        return JsonlSink(name, config)
    if isinstance(config, WebhookSinkConfig):
        return WebhookSink(name, config)
    return KafkaSink(name, config)


class JsonlSink:
    """One CloudEvent JSON per line, in ``DIRECTORY/date=YYYY-MM-DD/events.jsonl`` (UTC day).

    A relay killed mid-write leaves a partial last line; the next run cuts it off before
    appending (that event was not acknowledged, so it is written again whole).
    """

    def __init__(self, name: str, config: JsonlSinkConfig) -> None:
        self.name = name
        self.config = config
        self._checked: set[Path] = set()

    def path_for(self, created_at: dt.datetime) -> Path:
        day = created_at.astimezone(dt.UTC).date().isoformat()
        return self.config.directory / f"date={day}" / "events.jsonl"

    def _repair(self, path: Path) -> None:
        if path in self._checked:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("r+b") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        end = size
                        while end > 0:
                            start = max(0, end - 65536)
                            fh.seek(start)
                            cut = fh.read(end - start).rfind(b"\n")
                            if cut >= 0:
                                fh.truncate(start + cut + 1)
                                break
                            end = start
                        else:
                            fh.truncate(0)
        self._checked.add(path)

    def deliver(self, batch: Sequence[OutboxRow]) -> None:
        groups: dict[dt.date, list[str]] = {}
        for row in batch:
            stamp = row.created_at
            if stamp.tzinfo is not dt.UTC:
                stamp = stamp.astimezone(dt.UTC)
            day = stamp.date()
            lines = groups.get(day)
            if lines is None:
                lines = groups[day] = []
            lines.append(row.payload)
        for day, lines in groups.items():
            path = self.config.directory / f"date={day.isoformat()}" / "events.jsonl"
            try:
                self._repair(path)
                with path.open("ab") as fh:
                    fh.write(("\n".join(lines) + "\n").encode("utf-8"))
                    fh.flush()
                    if self.config.fsync:
                        os.fsync(fh.fileno())
            except OSError as exc:
                raise SinkError(
                    f"jsonl sink {self.name}: cannot write {path}: {exc.strerror or exc}"
                ) from None

    def close(self) -> None:
        return None


def signature(secret: bytes, body: bytes) -> str:
    """The value of the ``X-Govern-Signature`` header: ``sha256=`` + hex HMAC of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSink:
    """POSTs each event (CloudEvents structured mode), retrying with exponential backoff.

    Connection errors, timeouts, 408, 425, 429 and 5xx are retried up to ``max_attempts``
    times; any other status is a refusal. Either way the event stays in the outbox.
    """

    RETRY_STATUS = frozenset({408, 425, 429})

    def __init__(self, name: str, config: WebhookSinkConfig) -> None:
        self.name = name
        self.config = config
        self._key = config.secret.get_secret_value().encode("utf-8")

    def _post_once(self, body: bytes, event_id: int) -> tuple[bool, str]:
        """``(retryable, reason)`` on failure; returns ``(False, "")`` on success."""
        import urllib.error
        import urllib.request

        headers = {
            **self.config.headers,
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            SIGNATURE_HEADER: signature(self._key, body),
            EVENT_ID_HEADER: str(event_id),
            "User-Agent": "govern-relay",
        }
        req = urllib.request.Request(  # noqa: S310  (http/https only, validated in the config)
            self.config.url, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout) as resp:  # noqa: S310
                resp.read()
                return False, ""
        except urllib.error.HTTPError as exc:
            exc.close()
            retry = exc.code >= 500 or exc.code in self.RETRY_STATUS
            return retry, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return True, type(reason).__name__ if not str(reason) else str(reason)[:200]

    def deliver(self, batch: Sequence[OutboxRow]) -> None:
        for done, row in enumerate(batch):
            body = row.payload.encode("utf-8")
            delay = self.config.backoff_initial
            for attempt in range(1, self.config.max_attempts + 1):
                retry, reason = self._post_once(body, row.id)
                if not reason:
                    break
                if not retry or attempt == self.config.max_attempts:
                    raise SinkError(
                        f"webhook sink {self.name}: event {row.id} not delivered: {reason} "
                        f"(after {attempt} attempt{'s' if attempt > 1 else ''})",
                        delivered=done,
                    )
                time.sleep(min(delay, self.config.backoff_max))
                delay *= 2

    def close(self) -> None:
        return None


KafkaHeaders = list[tuple[str, str | bytes | None]]


def kafka_message(row: OutboxRow) -> tuple[bytes, bytes, KafkaHeaders]:
    """``(key, value, headers)`` in CloudEvents' Kafka binary mode; key = aggregate id."""
    ce = json.loads(row.payload)
    headers: KafkaHeaders = [
        ("content-type", str(ce.get("datacontenttype", "application/json")).encode())
    ]
    for name, value in ce.items():
        if name in ("data", "datacontenttype"):
            continue
        headers.append((f"ce_{name}", str(value).encode("utf-8")))
    value = json.dumps(ce.get("data"), separators=(",", ":")).encode("utf-8")
    return row.aggregateid.encode("utf-8"), value, headers


class KafkaSink:
    """Produces to Kafka with an idempotent producer (``acks=all``); needs ``govern[kafka]``."""

    def __init__(self, name: str, config: KafkaSinkConfig) -> None:
        try:
            from confluent_kafka import Producer
        except ImportError:
            raise MissingExtraError(
                f"sink {name} is kind 'kafka', which needs confluent-kafka: "
                "pip install 'govern[kafka]'"
            ) from None
        self.name = name
        self.config = config
        conf: dict[str, Any] = {
            "bootstrap.servers": config.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": int(config.timeout * 1000),
            **config.producer,
        }
        try:
            self._producer = Producer(conf)
        except Exception as exc:  # confluent_kafka.KafkaException: bad settings
            raise SinkConfigError(f"kafka sink {name}: {exc}") from None

    def topic_for(self, row: OutboxRow) -> str:
        return self.config.topic.replace("{aggregatetype}", row.aggregatetype)

    def deliver(self, batch: Sequence[OutboxRow]) -> None:
        acked = [False] * len(batch)
        errors: list[str] = []

        def report(index: int) -> Any:
            def cb(err: Any, _msg: Any) -> None:
                if err is None:
                    acked[index] = True
                else:
                    errors.append(str(err.str()) if hasattr(err, "str") else str(err))

            return cb

        for i, row in enumerate(batch):
            key, value, headers = kafka_message(row)
            try:
                self._producer.produce(
                    self.topic_for(row),
                    value=value,
                    key=key,
                    headers=headers,
                    on_delivery=report(i),
                )
            except BufferError:
                self._producer.flush(self.config.timeout)
                self._producer.produce(
                    self.topic_for(row),
                    value=value,
                    key=key,
                    headers=headers,
                    on_delivery=report(i),
                )
        self._producer.flush(self.config.timeout)
        done = next((i for i, ok in enumerate(acked) if not ok), len(batch))
        if done < len(batch):
            reason = errors[0] if errors else "no acknowledgement before the timeout"
            raise SinkError(f"kafka sink {self.name}: {reason}"[:480], delivered=done)

    def close(self) -> None:
        self._producer.flush(self.config.timeout)
