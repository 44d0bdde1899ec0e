"""The built wheel carries the migrations: install it in a fresh venv, outside any checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("govern-*.whl"))


def test_wheel_contains_migrations_and_seeds(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for domain in ("core", "commerce", "analytics", "community"):
        assert any(
            n.startswith(f"govern/_migrations/{domain}/") and n.endswith(".py") for n in names
        )
    assert "govern/migrations/script/env.py" in names
    assert "govern/py.typed" in names


def test_installed_wheel_migrates_sqlite(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERN_")}
    env["GOVERN_DATABASE_URL"] = f"sqlite:///{work}/w.db"
    up = subprocess.run(
        [str(venv / "bin" / "govern"), "migrate", "up", "--json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert up.returncode == 0, up.stderr
    check = subprocess.run(
        [str(venv / "bin" / "govern"), "migrate", "check"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import govern.migrations.paths as p; print(p.migrations_root())",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(venv) in where.stdout
