"""Configuration and environment: good files load, bad keys are named at start-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import (
    DEFAULT_CONFIG,
    ConfigError,
    Environment,
    Settings,
    load_config,
    parse_config,
    parse_duration,
)
from tests.conftest import TEST_CONFIG


def with_changes(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(TEST_CONFIG))
    data.update(changes)
    return data


def test_the_shipped_config_loads() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert config.escalation.call_911_reminder_every == timedelta(minutes=5)
    assert config.escalation.notify_officer_on == ("opened", "police_called")
    assert config.school(config.local.school).name


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("2h", 7200), ("7d", 604800), ("1.5m", 90)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["5", "five minutes", "0s", "-5m", "5 weeks", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"escalation": {"call_911_reminder_evry": "5m"}}, "escalation.call_911_reminder_evry"),
        ({"escalation": {"officer_ack_timeout": "soon"}}, "escalation.officer_ack_timeout"),
        ({"escalation": {"notify_officer_on": ["opened", "lunch"]}}, "notify_officer_on"),
        ({"colour": "blue"}, "colour: unknown key"),
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        ({"telegram": {"mode": "carrier-pigeon"}}, "telegram.mode"),
        ({"local": {"school": "nowhere"}}, "local.school"),
        ({"schools": []}, "schools"),
    ],
)
def test_bad_keys_are_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_config(with_changes(**changes))


def test_duplicate_school_ids_are_refused() -> None:
    school = TEST_CONFIG["schools"][0]
    with pytest.raises(ConfigError, match="duplicate school id"):
        parse_config(with_changes(schools=[school, school]))


def test_unreadable_or_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("schools: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_environment_defaults() -> None:
    env = Environment.from_environ({})
    assert env.telegram_token is None
    assert env.telegram_api_url == "https://api.telegram.org"
    assert env.database_url.startswith("sqlite+aiosqlite:///")
    assert env.config_path == DEFAULT_CONFIG


def test_environment_values(tmp_path: Path) -> None:
    env = Environment.from_environ(
        {
            "TELEGRAM_BOT_TOKEN": "123456:ABC-def_ghi",
            "TELEGRAM_API_URL": "http://127.0.0.1:8081/",
            "DATABASE_URL": "postgresql://sexto:pw@db.example:5432/sexto",
            "SEXTO_CONFIG": str(tmp_path / "other.yml"),
        }
    )
    assert env.telegram_token == "123456:ABC-def_ghi"
    assert env.telegram_api_url == "http://127.0.0.1:8081"
    assert env.database_url == "postgresql+asyncpg://sexto:pw@db.example:5432/sexto"
    assert env.config_path == tmp_path / "other.yml"


@pytest.mark.parametrize(
    ("given", "server"),
    [
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081"),
        ("http://127.0.0.1:8081/bot/", "http://127.0.0.1:8081"),
        ("https://gateway.example/telegram/bot", "https://gateway.example/telegram"),
        ("https://gateway.example/robot", "https://gateway.example/robot"),
        ("http://bot", "http://bot"),
    ],
)
def test_the_bot_api_url_is_the_server_with_or_without_the_bot_prefix(
    given: str, server: str
) -> None:
    assert Environment.from_environ({"TELEGRAM_API_URL": given}).telegram_api_url == server


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TELEGRAM_BOT_TOKEN", "not a token"),
        ("TELEGRAM_API_URL", "ftp://example"),
        ("DATABASE_URL", "mysql://root@localhost/x"),
    ],
)
def test_bad_environment_is_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Environment.from_environ({variable: value})


def test_settings_follow_sexto_config(tmp_path: Path) -> None:
    path = tmp_path / "mine.yml"
    path.write_text(yaml.safe_dump(with_changes(default_language="en")), encoding="utf-8")
    settings = Settings.load({"SEXTO_CONFIG": str(path)})
    assert settings.config.default_language == "en"
    assert [s.id for s in settings.config.schools] == ["nord", "west"]
