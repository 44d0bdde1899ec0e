"""A recognisable secret in every secret setting never shows in output, logs or exceptions."""

from __future__ import annotations

import base64
import contextlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from govern.cli import main
from govern.config import Settings

KEK_BYTES = b"KEKSECRET-" + bytes(range(22))
SIGNING_BYTES = b"SIGNSECRET-" + bytes(range(21))
SECRETS = {
    "kek": base64.b64encode(KEK_BYTES).decode(),
    "seed_password": "SeedPassw0rd-leak-canary",
    "audit_signing_key": base64.b64encode(b"SIGNKEY-" + bytes(range(24))).decode(),
    "kek_previous": base64.b64encode(b"PREVSECRET-" + bytes(range(21))).decode(),
    "consent_signing_key": base64.b64encode(SIGNING_BYTES).decode(),
    "alert_webhook_url": "https://hooks.example.com/T0-webhook-leak-canary",
}
DB_PASSWORD = "DbPassw0rd-leak-canary"

COMMANDS = [
    ("doctor",),
    ("quickstart",),
    ("migrate", "up"),
    ("migrate", "status"),
    ("migrate", "check"),
    ("migrate", "history"),
    ("migrate", "sql"),
    ("retention", "plan"),
    ("retention", "list"),
    ("retention", "docs"),
    ("migrate", "down", "--domain", "community"),
    ("config", "show"),
    ("config", "show", "--json"),
    ("keys", "list"),
    ("keys", "rotate"),
    ("scan", "encryption"),
    ("migrate", "up", "--domain", "nope"),
    ("migrate", "up", "--to", "nope"),
    ("migrate", "down", "--domain", "core"),
    ("seed",),
    ("seed", "--env", "staging", "--json"),
    ("credentials", "scan"),
    ("credentials", "purge-demo"),
    ("audit", "export", "--out", "bundle.zip"),
    ("audit", "verify", "bundle.zip"),
    ("consent", "checkpoint"),
    ("consent", "verify"),
    ("consent", "checkpoint", "--json"),
]


def _needles() -> list[str]:
    return [
        *SECRETS.values(),
        DB_PASSWORD,
        KEK_BYTES.decode("latin-1"),
        SIGNING_BYTES.decode("latin-1"),
    ]


def test_every_secret_setting_is_covered() -> None:
    secret_fields = {
        name for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)
    }
    assert secret_fields - {"database_url"} == set(SECRETS)


def _env(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"GOVERN_{name.upper()}", value)
    monkeypatch.setenv("GOVERN_DATABASE_URL", url)


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_sqlite_commands_never_print_secrets(
    govern_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    argv: tuple[str, ...],
) -> None:
    _env(monkeypatch, f"sqlite:///{govern_env}/g.db")
    caplog.set_level(logging.DEBUG)
    with contextlib.suppress(SystemExit):
        main(list(argv))
    out, err = capsys.readouterr()
    text = out + err + caplog.text
    for needle in _needles():
        assert needle not in text


@pytest.mark.parametrize(
    "argv", [("doctor",), ("migrate", "up"), ("migrate", "status")], ids=" ".join
)
def test_unreachable_postgres_never_prints_password(
    govern_env: Path, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    _env(monkeypatch, f"postgresql+psycopg://app:{DB_PASSWORD}@127.0.0.1:1/db")
    out = subprocess.run(
        [sys.executable, "-m", "govern", *argv], capture_output=True, text=True, check=False
    )
    assert out.returncode in (1, 2)
    for needle in _needles():
        assert needle not in out.stdout + out.stderr


def test_exceptions_do_not_carry_secrets(govern_env: Path) -> None:
    from govern import migrations
    from govern.errors import GovernError

    with pytest.raises(GovernError) as err:
        migrations.status(f"postgresql+psycopg://app:{DB_PASSWORD}@127.0.0.1:1/db")
    assert DB_PASSWORD not in str(err.value)
    assert DB_PASSWORD not in repr(err.value)
    assert err.value.__cause__ is None


def test_settings_repr_hides_everything() -> None:
    s = Settings(
        database_url=SecretStr(f"postgresql://app:{DB_PASSWORD}@h/db"),
        **{k: SecretStr(v) for k, v in SECRETS.items()},
    )
    for needle in _needles():
        assert needle not in repr(s)
        assert needle not in str(s.model_dump())
        assert needle not in s.model_dump_json()
