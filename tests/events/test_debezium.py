"""The shipped Debezium outbox-router configuration names the outbox's real table and columns."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import inspect

from govern.db import create_engine
from govern.events import OutboxEvent

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "debezium-outbox-connector.json"


def test_connector_config_names_the_outbox_columns(migrated_url: str) -> None:
    cfg = json.loads(CONFIG.read_text())["config"]
    engine = create_engine(migrated_url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns(OutboxEvent.__tablename__)}
    finally:
        engine.dispose()
    assert cfg["table.include.list"] == f"public.{OutboxEvent.__tablename__}"
    assert cfg["transforms"] == "outbox"
    assert cfg["transforms.outbox.type"] == "io.debezium.transforms.outbox.EventRouter"
    named = {
        cfg["transforms.outbox.table.field.event.id"],
        cfg["transforms.outbox.table.field.event.key"],
        cfg["transforms.outbox.table.field.event.type"],
        cfg["transforms.outbox.table.field.event.payload"],
        cfg["transforms.outbox.route.by.field"],
    }
    placed = {
        item.split(":")[0]
        for item in cfg["transforms.outbox.table.fields.additional.placement"].split(",")
    }
    assert named == {"id", "aggregateid", "type", "payload", "aggregatetype"}
    assert named | placed <= columns
    assert cfg["transforms.outbox.table.expand.json.payload"] == "true"
    assert cfg["database.password"].startswith("${file:")  # a config provider, no secret here
