"""Row-change events (Debezium-envelope shaped) for governed tables, opt-in per session factory."""
from __future__ import annotations


def track_changes(target: object) -> object:
    raise NotImplementedError
