"""Every command a test runs here is watched for SQLite writers that would start deferred."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import DeferredWrites


@pytest.fixture(autouse=True)
def no_deferred_writes() -> Iterator[None]:
    watch = DeferredWrites(within=os.path.join("govern", "cli.py"))
    watch.install()
    try:
        yield
    finally:
        watch.remove()
    assert not watch.found, f"read-then-write transactions began deferred: {watch.found}"
