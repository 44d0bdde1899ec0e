from __future__ import annotations

import base64
from pathlib import Path

import pytest

from govern.config import Settings, env_example, load_settings
from govern.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
KEK = base64.b64encode(bytes(range(32))).decode()


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.database_url.get_secret_value() == "sqlite:///govern.db"
    assert settings.kek is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GOVERN_DATABSE_URL": "sqlite://"}, "unknown setting GOVERN_DATABSE_URL"),
        (
            {"GOVERN_DATABASE_URL": "postgress://h/db"},
            "GOVERN_DATABASE_URL uses driver 'postgress'",
        ),
        ({"GOVERN_DATABASE_URL": "not a url"}, "GOVERN_DATABASE_URL is not a database URL"),
        ({"GOVERN_DATABASE_URL": "mysql://h/db"}, "GOVERN_DATABASE_URL uses driver 'mysql'"),
        ({"GOVERN_KEK": "!!!"}, "GOVERN_KEK must be base64"),
        ({"GOVERN_KEK": base64.b64encode(b"short").decode()}, "GOVERN_KEK must decode to 32 bytes"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert message in str(err.value)


def test_kek_round_trip_and_hidden() -> None:
    settings = load_settings({"GOVERN_KEK": KEK})
    assert bytes(range(32)) == settings.kek_bytes()
    assert KEK not in repr(settings)
    assert KEK not in str(settings.model_dump())


def test_missing_kek_is_an_error_not_a_default() -> None:
    with pytest.raises(ConfigError, match="GOVERN_KEK is not set"):
        load_settings({}).kek_bytes()


def test_password_hidden_in_display() -> None:
    settings = load_settings({"GOVERN_DATABASE_URL": "postgresql://app:s3cr3t@db.internal/gov"})
    assert settings.url_for_display == "postgresql+psycopg://app:***@db.internal/gov"
    assert "s3cr3t" not in repr(settings)


def test_settings_reads_environment_and_refuses_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERN_DATABASE_URL", "sqlite:///x.db")
    assert Settings().database_url.get_secret_value() == "sqlite:///x.db"
    monkeypatch.setenv("GOVERN_KEK_TYPO", "1")
    with pytest.raises(ConfigError, match="GOVERN_KEK_TYPO"):
        Settings()


def test_settings_are_immutable() -> None:
    settings = load_settings({})
    with pytest.raises(Exception, match="frozen"):
        settings.database_url = "sqlite://"  # type: ignore[assignment,misc]


def test_env_example_is_current() -> None:
    assert env_example() == (ROOT / ".env.example").read_text(encoding="utf-8")


def test_env_example_lists_every_setting() -> None:
    text = env_example()
    for name in Settings.model_fields:
        assert f"GOVERN_{name.upper()}=" in text
