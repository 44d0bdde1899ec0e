"""The public API: ``__all__`` is complete, sorted and every name resolves (httpx's test)."""

from __future__ import annotations

import pytest

import govern


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions and modules.
    group = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return group, name


def test_all_is_sorted() -> None:
    assert sorted(govern.__all__, key=_isort_key) == list(govern.__all__)


def test_every_exported_name_resolves() -> None:
    for name in govern.__all__:
        assert getattr(govern, name) is not None, name


def test_lazy_map_and_all_agree() -> None:
    assert set(govern._LAZY) | {"__version__"} == set(govern.__all__)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="does_not_exist"):
        govern.does_not_exist  # type: ignore[attr-defined]  # noqa: B018


def test_version_matches_metadata() -> None:
    from importlib.metadata import version

    assert version("govern") == govern.__version__


def test_init_is_generated_from_lazy_map() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "sync_exports.py"
    out = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
