"""pytest-alembic's own tests run against ``govern.migrations.alembic_config``.

``test_single_head_revision`` is left out on purpose: govern has one head per domain
(four bases), which pytest-alembic cannot express; ``govern migrate check`` checks one
head per domain instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_up_down_consistency,
    test_upgrade,
)

from govern.db import create_engine
from govern.migrations import alembic_config as govern_alembic_config

__all__ = ["test_model_definitions_match_ddl", "test_up_down_consistency", "test_upgrade"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def alembic_engine(request: pytest.FixtureRequest, databases: Any, tmp_path: Path) -> Any:
    engine = create_engine(databases.empty(request.param))
    yield engine
    engine.dispose()


@pytest.fixture
def alembic_config(alembic_engine: Any) -> Any:
    return govern_alembic_config(alembic_engine.url.render_as_string(hide_password=False))
