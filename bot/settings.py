"""Settings: config.yml (committed, no secrets) plus the environment (secrets, deployment)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from storage.crypto import ENVIRONMENT_VARIABLE as ENCRYPTION_KEYS
from storage.crypto import KeyRingError, parse_keys

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.yml"
DEFAULT_API_URL = "https://api.telegram.org"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/sexto.db"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")


class ConfigError(Exception):
    """The configuration or the environment is invalid; the message names the key."""


def parse_duration(value: object) -> timedelta:
    """Parse a duration written like ``90s``, ``5m``, ``2h`` or ``7d``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
            if seconds > 0:
                return timedelta(seconds=seconds)
    raise ValueError(f"expected a positive duration like '90s', '5m', '2h' or '7d', got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Language = Literal["fr", "en"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class School(_Section):
    """A school taking part in SEXTO."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    name: str = Field(min_length=1)
    board: str = Field(min_length=1)
    station: str = Field(min_length=1)
    address: str | None = None


class Escalation(_Section):
    """Reminder and alert timings."""

    call_911_reminder_every: Duration = timedelta(minutes=5)
    call_911_reminders_before_escalation: int = Field(default=3, ge=1)
    officer_ack_timeout: Duration = timedelta(minutes=10)
    officer_alert_repeats: int = Field(default=2, ge=0)
    stalled_after: Duration = timedelta(minutes=15)
    notify_officer_on: tuple[Literal["opened", "police_called"], ...] = ("opened", "police_called")
    drills_alert_officers: bool = False


class Enrollment(_Section):
    """Enrollment codes, and how guessing them is slowed down."""

    code_ttl: Duration = timedelta(days=3)
    max_wrong_codes: int = Field(default=5, ge=1)
    wrong_code_window: Duration = timedelta(minutes=15)
    lockout: Duration = timedelta(minutes=30)


class Telegram(_Section):
    """How the bot talks to Telegram (the token itself comes from the environment)."""

    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    bot_username: str | None = None
    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=10)
    concurrent_updates: int = Field(default=32, ge=1, le=256)
    max_messages_per_second: int = Field(default=30, ge=0, le=1000)


class Nlu(_Section):
    """Understanding typed messages."""

    engine: Literal["embedded", "rasa"] = "embedded"
    rasa_url: str = Field(default="http://127.0.0.1:5005", pattern=r"^https?://\S+$")
    timeout: Duration = timedelta(milliseconds=500)
    threshold: float = Field(default=0.4, ge=0.0, le=1.0)


class Dashboard(_Section):
    """The coordinators' web dashboard (its cookie key comes from SEXTO_DASHBOARD_SECRET)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    base_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://[^/\s]+(/\S*)?$")
    session_lifetime: Duration = timedelta(hours=8)
    secure_cookies: bool | None = None


class Local(_Section):
    """Local mode (no Telegram token): the console chat's demo professional."""

    school: str = "demo"


Days = Annotated[int, Field(strict=True, ge=1, le=36_500)]


class Retention(_Section):
    """How long a closed or cancelled incident keeps its conversation, and its links to people."""

    transcript_days: Days = 90
    incident_days: Days = 365

    @model_validator(mode="after")
    def _transcript_first(self) -> Retention:
        if self.transcript_days > self.incident_days:
            raise ValueError(
                f"transcript_days ({self.transcript_days}) must not be more than incident_days "
                f"({self.incident_days}): anonymising an incident removes its conversation too"
            )
        return self


class Config(_Section):
    """The whole of config.yml."""

    timezone: str = "America/Montreal"
    languages: tuple[Language, ...] = ("fr", "en")
    default_language: Language = "fr"
    schools: tuple[School, ...] = Field(min_length=1)
    escalation: Escalation = Escalation()
    enrollment: Enrollment = Enrollment()
    telegram: Telegram = Telegram()
    nlu: Nlu = Nlu()
    dashboard: Dashboard = Dashboard()
    local: Local = Local()
    retention: Retention = Retention()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("schools")
    @classmethod
    def _unique_ids(cls, value: tuple[School, ...]) -> tuple[School, ...]:
        ids = [school.id for school in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate school id(s): {', '.join(duplicates)}")
        return value

    @model_validator(mode="after")
    def _local_school_exists(self) -> Config:
        if self.local.school not in {school.id for school in self.schools}:
            raise ValueError(f"local.school: unknown school {self.local.school!r}")
        if self.default_language not in self.languages:
            raise ValueError(f"default_language: {self.default_language!r} is not in languages")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The display time zone."""
        return ZoneInfo(self.timezone)

    def school(self, school_id: str) -> School:
        """The school with this id."""
        for school in self.schools:
            if school.id == school_id:
                return school
        raise KeyError(school_id)


@dataclass(frozen=True)
class Environment:
    """Secrets and deployment settings read from the process environment."""

    telegram_token: str | None
    telegram_api_url: str
    database_url: str
    config_path: Path
    webhook_secret: str | None
    dashboard_secret: str | None = None
    encryption_keys: tuple[str, ...] = field(default=(), repr=False)  # newest first

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Environment:
        """Read the variables this project uses from ``environ``."""
        token = environ.get("TELEGRAM_BOT_TOKEN", "").strip() or None
        if token is not None and not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
            raise ConfigError("TELEGRAM_BOT_TOKEN: not a bot token (expected '<digits>:<secret>')")
        api_url = environ.get("TELEGRAM_API_URL", "").strip() or DEFAULT_API_URL
        if not re.match(r"^https?://[^/\s]+", api_url):
            raise ConfigError(f"TELEGRAM_API_URL: expected an http(s) URL, got {api_url!r}")
        api_url = api_url.rstrip("/")
        # The server's address is expected; the method prefix (".../bot", the form of
        # python-telegram-bot's base_url) is added here, and taken off if given already.
        api_url = api_url.removesuffix("/bot") if api_url.count("/") > 2 else api_url
        webhook_secret = environ.get("TELEGRAM_WEBHOOK_SECRET", "").strip() or None
        if webhook_secret is not None and not WEBHOOK_SECRET.fullmatch(webhook_secret):
            raise ConfigError(
                "TELEGRAM_WEBHOOK_SECRET: 16 to 256 characters among A-Z, a-z, 0-9, _ and - "
                "(Telegram accepts no others; fewer would be easy to guess)"
            )
        return cls(
            telegram_token=token,
            telegram_api_url=api_url,
            database_url=normalise_database_url(
                environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
            ),
            config_path=Path(environ.get("SEXTO_CONFIG", "").strip() or DEFAULT_CONFIG),
            webhook_secret=webhook_secret,
            dashboard_secret=environ.get("SEXTO_DASHBOARD_SECRET", "").strip() or None,
            encryption_keys=_encryption_keys(environ.get(ENCRYPTION_KEYS, "")),
        )


def _encryption_keys(text: str) -> tuple[str, ...]:
    """SEXTO_ENCRYPTION_KEYS: Fernet keys, comma-separated, newest first."""
    try:
        return parse_keys(text)
    except KeyRingError as error:
        raise ConfigError(f"{ENCRYPTION_KEYS}: {error}") from None


def normalise_database_url(url: str) -> str:
    """Pick the async driver for a SQLite or PostgreSQL URL."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ConfigError(f"DATABASE_URL: unsupported database URL {url.split(':', 1)[0]!r}")


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "config.yml") -> Config:
    """Validate already-parsed YAML, raising ConfigError that names every bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source} is invalid:\n{_describe(exc)}") from None


def load_config(path: Path) -> Config:
    """Read and validate a config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, str(path))


@dataclass(frozen=True)
class Settings:
    """Everything the composition root needs."""

    config: Config
    env: Environment

    @classmethod
    def load(cls, environ: Mapping[str, str]) -> Settings:
        """Load the environment, then the config file it points to."""
        env = Environment.from_environ(environ)
        return cls(config=load_config(env.config_path), env=env)
