"""Alert channels: where retention alerts go after they are committed (and in the outbox).

A channel is anything with ``send(alert)``; govern ships a log channel and a webhook
channel. A failing channel is logged and never stops the run or the other channels::

    channels = [LogChannel(), WebhookChannel("https://hooks.example.com/retention")]
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Protocol

from pydantic import SecretStr

from govern.retention.schemas import AlertOut

log = logging.getLogger("govern.retention.alerts")


class AlertChannel(Protocol):
    def send(self, alert: AlertOut) -> None: ...


class LogChannel:
    """Logs each alert at WARNING on ``govern.retention.alerts``."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or log

    def send(self, alert: AlertOut) -> None:
        self.logger.warning(
            "retention alert %s policy=%s run=%s: %s",
            alert.kind,
            alert.policy or "-",
            alert.run_id or "-",
            alert.message,
        )


class WebhookChannel:
    """POSTs each alert as JSON. The URL is a secret (it often carries a token)."""

    def __init__(self, url: str | SecretStr, timeout: float = 5.0) -> None:
        self._url = url if isinstance(url, SecretStr) else SecretStr(url)
        scheme = self._url.get_secret_value().split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ValueError("a webhook URL must be http or https")
        self.timeout = timeout

    def send(self, alert: AlertOut) -> None:
        body = json.dumps({"type": "govern.retention.alert", **alert.model_dump(mode="json")})
        req = urllib.request.Request(  # noqa: S310  (scheme checked in __init__)
            self._url.get_secret_value(),
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
            resp.read()


def dispatch(alerts: Iterable[AlertOut], channels: Sequence[AlertChannel]) -> int:
    """Send committed alerts to every channel; returns how many deliveries failed."""
    failed = 0
    for alert in alerts:
        for ch in channels:
            try:
                ch.send(alert)
            except Exception as exc:  # a broken channel must not break retention
                failed += 1
                log.error(
                    "alert channel %s failed for alert %s: %s",
                    type(ch).__name__,
                    alert.id,
                    type(exc).__name__,
                )
    return failed


def default_channels(webhook_url: SecretStr | None = None) -> list[AlertChannel]:
    out: list[AlertChannel] = [LogChannel()]
    if webhook_url is not None:
        out.append(WebhookChannel(webhook_url))
    return out
