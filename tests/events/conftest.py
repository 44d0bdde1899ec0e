"""Fixtures for events tests: an engine on a migrated database, a real local HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cloudevents.core.formats.json import JSONFormat
from sqlalchemy.engine import Engine

from govern.db import create_engine

SECRET = "test-webhook-secret-0123456789"


def parse_cloudevent(payload: str | bytes) -> Any:
    """Parse with the CloudEvents SDK (validates required attributes, time, extensions)."""
    return JSONFormat().read(None, payload)


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    eng = create_engine(migrated_url)
    yield eng
    eng.dispose()


class Receiver:
    """A real HTTP server on 127.0.0.1 that records (and can refuse) webhook POSTs."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.fail_next = 0  # answer 503 to this many requests first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                with receiver.lock:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    if not hmac.compare_digest(expected, self.headers["X-Govern-Signature"]):
                        receiver.bad_signatures += 1
                    receiver.received.append(
                        {
                            "body": body,
                            "event": json.loads(body),
                            "content_type": self.headers["Content-Type"],
                            "event_id": self.headers["X-Govern-Event-Id"],
                        }
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self) -> list[int]:
        with self.lock:
            return [int(r["event"]["id"]) for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def webhook(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "webhook",
        "url": url,
        "secret": SECRET,
        "max_attempts": 3,
        "backoff_initial": 0.01,
        "timeout": 5,
        **extra,
    }
