"""Fixtures: a migrated database with a KEK, and an engine with its keyring attached."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from govern.config import Settings, load_settings
from govern.db import create_engine
from govern.keys import attach


def new_kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return load_settings({"GOVERN_DATABASE_URL": migrated_url, "GOVERN_KEK": new_kek()})


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    eng = create_engine(settings.database_url.get_secret_value())
    attach(eng, settings)
    yield eng
    eng.dispose()
