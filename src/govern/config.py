"""Settings, read from ``GOVERN_*`` environment variables at the edge.

Build a :class:`Settings` in the CLI or in the host service and pass it down;
nothing in govern reads the environment on its own::

    settings = Settings()                       # from the environment
    settings = Settings(database_url="sqlite:///app.db")
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from govern.errors import ConfigError

ENV_PREFIX = "GOVERN_"
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")


def _decode_key(value: SecretStr | None, name: str) -> SecretStr | None:
    if value is None:
        return None
    raw = value.get_secret_value().strip()
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} must be base64 (for example: govern keys generate-kek)") from None
    if len(key) != 32:
        raise ValueError(f"{name} must decode to 32 bytes, got {len(key)}")
    return SecretStr(raw)


class Settings(BaseSettings):
    """govern's configuration. Every secret is a :class:`~pydantic.SecretStr`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        validate_default=True,
    )

    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///govern.db"),
        description="SQLAlchemy URL of the database (sqlite:///file.db or postgresql+psycopg://...).",
    )
    kek: SecretStr | None = Field(
        default=None,
        description=(
            "Key-encryption key: base64 of 32 random bytes. "
            "Needed only by commands that touch keys."
        ),
    )
    sinks_file: Path | None = Field(
        default=None,
        description=(
            "TOML file of event sinks for `govern cdc` ([sinks.NAME] tables; see docs/events.md)."
        ),
    )
    # Encryption settings (issue 3) ------------------------------------------
    kek_previous: SecretStr | None = Field(
        default=None,
        description=(
            "The KEK being replaced (base64, 32 bytes): accepted for unwrapping only, "
            "while `govern keys rewrap` moves every key to GOVERN_KEK."
        ),
    )
    kek_file: Path | None = Field(
        default=None,
        description=("A file holding the KEK as base64 (a mounted secret); instead of GOVERN_KEK."),
    )
    key_max_age_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Days after which `govern doctor` asks to rotate the primary data key.",
    )

    consent_signing_key: SecretStr | None = Field(
        default=None,
        description=(
            "Ed25519 private key (base64 of a 32-byte seed) that signs consent-ledger "
            "checkpoints; generate with `govern keys generate-consent-key`."
        ),
    )
    consent_verify_key: str | None = Field(
        default=None,
        description=(
            "Ed25519 public key (base64, 32 bytes) that consent checkpoints must be signed "
            "with; pins verification when the signing key is kept elsewhere."
        ),
    )
    dsr_timezone: str = Field(
        default="UTC",
        description="IANA time zone whose calendar days DSR deadlines are counted in.",
    )
    dsr_holidays: str = Field(
        default="",
        description=(
            "Public holidays for DSR deadlines, comma-separated ISO dates "
            "(a deadline falling on one moves to the next working day)."
        ),
    )
    dsr_export_dir: str = Field(
        default="dsr-exports",
        description="Folder where access and portability packages (zip) are written.",
    )
    dsr_rows_per_transaction: int = Field(
        default=1000,
        ge=0,
        le=10_000_000,
        description=(
            "DSR workers run consecutive steps in one transaction while the rows the plan "
            "counted for them add up to at most this; 0: each step with work in its own."
        ),
    )

    # --- seeds, credentials and audit export (issue 8) ---
    seed_password: SecretStr | None = Field(
        default=None,
        description=(
            "Password given to seeded accounts (hashed with Argon2id); "
            "unset: each account gets a random one."
        ),
    )
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description=(
            "Ed25519 private key signing audit bundles: base64 of 32 random bytes "
            "(govern audit keygen)."
        ),
    )
    controller_name: str | None = Field(
        default=None, description="Controller's name for the record of processing activities."
    )
    controller_contact: str | None = Field(
        default=None, description="Controller's contact details (address, e-mail)."
    )
    dpo_contact: str | None = Field(
        default=None, description="Data protection officer's contact details."
    )

    retention_policies: str | None = Field(
        default=None,
        description=(
            "Path of the retention policy file (TOML, [[policy]] tables); "
            "unset: govern's default policies."
        ),
    )
    alert_webhook_url: SecretStr | None = Field(
        default=None,
        description="Webhook that receives retention alerts as JSON (http or https; a secret).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _StrictEnvSource(settings_cls))

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        raw = value.get_secret_value().strip()
        try:
            url = make_url(raw)
        except ArgumentError:
            raise ValueError(
                "is not a database URL (expected sqlite:///path.db or postgresql+psycopg://user@host/db)"
            ) from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"uses driver {url.drivername!r}; supported: {', '.join(SUPPORTED_DRIVERS)}"
            )
        if url.drivername == "postgresql":
            raw = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return SecretStr(raw)

    @field_validator("kek")
    @classmethod
    def _check_kek(cls, value: SecretStr | None) -> SecretStr | None:
        return _decode_key(value, "GOVERN_KEK")

    @field_validator("audit_signing_key")
    @classmethod
    def _check_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        return _decode_key(value, "GOVERN_AUDIT_SIGNING_KEY")

    @field_validator("seed_password")
    @classmethod
    def _check_seed_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 12:
            raise ValueError("GOVERN_SEED_PASSWORD must be at least 12 characters")
        return value

    @field_validator("kek_previous")
    @classmethod
    def _check_kek_previous(cls, value: SecretStr | None) -> SecretStr | None:
        return _decode_key(value, "GOVERN_KEK_PREVIOUS")

    @model_validator(mode="after")
    def _one_kek_source(self) -> Settings:
        if self.kek is not None and self.kek_file is not None:
            raise ValueError("GOVERN_KEK and GOVERN_KEK_FILE are both set; keep one")
        if (
            self.kek is not None
            and self.kek_previous is not None
            and self.kek.get_secret_value() == self.kek_previous.get_secret_value()
        ):
            raise ValueError("GOVERN_KEK_PREVIOUS equals GOVERN_KEK; it must be the old key")
        return self

    @property
    def has_kek(self) -> bool:
        """Whether a KEK is configured (in the environment or a file)."""
        return self.kek is not None or self.kek_file is not None

    @field_validator("consent_signing_key")
    @classmethod
    def _check_consent_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        return _decode_key(value, "GOVERN_CONSENT_SIGNING_KEY")

    @field_validator("consent_verify_key")
    @classmethod
    def _check_consent_verify_key(cls, value: str | None) -> str | None:
        checked = _decode_key(
            None if value is None else SecretStr(value), "GOVERN_CONSENT_VERIFY_KEY"
        )
        return None if checked is None else checked.get_secret_value()

    def consent_signing_key_bytes(self) -> bytes:
        """The Ed25519 seed; raises :class:`ConfigError` when it is not set."""
        if self.consent_signing_key is None:
            raise ConfigError(
                "GOVERN_CONSENT_SIGNING_KEY is not set: generate one with "
                "`govern keys generate-consent-key`"
            )
        return base64.b64decode(self.consent_signing_key.get_secret_value())

    @property
    def url_for_display(self) -> str:
        """The database URL with any password replaced by ``***``."""
        from sqlalchemy.engine import make_url

        return make_url(self.database_url.get_secret_value()).render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_secret_value().startswith("sqlite")

    def kek_bytes(self) -> bytes:
        """The decoded KEK; raises :class:`ConfigError` when it is not set."""
        if self.kek is None:
            raise ConfigError("GOVERN_KEK is not set: generate one with `govern keys generate-kek`")
        return base64.b64decode(self.kek.get_secret_value())


def _env_var(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _check_unknown(environ: Mapping[str, str]) -> None:
    known = {_env_var(name) for name in Settings.model_fields}
    unknown = sorted(
        k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known
    )
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]}; known settings: {', '.join(sorted(known))}"
        )


_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("govern_environ", default=None)


class _StrictEnvSource(EnvSettingsSource):
    """The environment source, refusing ``GOVERN_*`` variables that are not settings."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        env = os.environ if environ is None else environ
        _check_unknown(env)
        return parse_env_vars(
            env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``) plus overrides.

    Unknown ``GOVERN_*`` variables are refused, so that a typo such as
    ``GOVERN_DATABSE_URL`` is caught instead of silently falling back to a default.
    Errors name the variable, never its value.
    """
    token = _ENVIRON.set(dict(os.environ if environ is None else environ))
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    finally:
        _ENVIRON.reset(token)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"unknown setting {_env_var(field)}"
    return f"{_env_var(field)} {msg}" if not msg.startswith("GOVERN_") else msg


def env_example() -> str:
    """The text of ``.env.example``, generated from the settings schema."""
    lines = [
        "# govern settings. Generated by `govern config example`; do not edit by hand.",
        "# Every variable is optional unless a command that needs it says so.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        lines.append(f"# {field.description}")
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        shown = "" if default is None else str(default)
        prefix = "" if default is not None else "# "
        lines.append(f"{prefix}{_env_var(name)}={shown}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
