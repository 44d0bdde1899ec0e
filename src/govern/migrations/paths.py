"""Where the revision scripts live: inside the wheel, or in a source checkout."""

from __future__ import annotations

from pathlib import Path

from govern.db import DOMAINS

_PKG = Path(__file__).resolve().parent.parent  # src/govern or site-packages/govern


def migrations_root() -> Path:
    """The folder holding one sub-folder of revision scripts per domain."""
    shipped = _PKG / "_migrations"
    if shipped.is_dir():
        return shipped
    checkout = _PKG.parent.parent / "migrations"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("govern's migration scripts are missing from this installation")


def domain_dirs() -> dict[str, Path]:
    root = migrations_root()
    return {d: root / d for d in DOMAINS}


def seeds_root() -> Path:
    shipped = _PKG / "_seeds"
    return shipped if shipped.is_dir() else _PKG.parent.parent / "seeds"


SCRIPT_LOCATION = Path(__file__).resolve().parent / "script"
