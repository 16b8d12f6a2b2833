"""The real python-telegram-bot Application, polling a local Bot API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.runtime import Runtime
from bot.settings import Config
from storage.models import Role
from storage.repositories import Enrollment
from tests.support.botapi import BotApiServer
from tests.support.serving import serving
from tests.support.stalls import watched_loop

TOKEN = "123456789:AAtest-token_for_sexto"


@dataclass
class Bot:
    """What a test drives: the local Telegram server and the running program behind it."""

    server: BotApiServer
    runtime: Runtime

    async def code(self, role: Role, school: str | None = "nord") -> str:
        """A fresh enrollment code."""
        async with self.runtime.sessions() as session, session.begin():
            code, _ = await Enrollment(session).create_code(
                role,
                school,
                self.runtime.clock.now(),
                self.runtime.settings.config.enrollment.code_ttl,
            )
        return code

    async def enrolled(
        self,
        role: Role,
        user_id: int,
        name: str,
        language: str = "en",
        school: str | None = "nord",
    ) -> dict[str, Any]:
        """A Telegram user who has enrolled with /start CODE."""
        user = self.server.add_user(user_id, name, language_code=language)
        self.server.send_text(user, f"/start {await self.code(role, school)}")
        welcome = await self.server.wait_for_message(user_id)
        assert "Welcome" in welcome["text"] or "Bienvenue" in welcome["text"]
        return user


@pytest.fixture
def policy() -> dict[str, Any]:
    """Escalation settings for end-to-end tests (override in a test module for short timings)."""
    return {}


@pytest.fixture
def telegram_options() -> dict[str, Any]:
    """Telegram settings for end-to-end tests (e.g. short client time-outs)."""
    return {}


def with_sections(config: Config, **sections: dict[str, Any]) -> Config:
    """A copy of the config with some keys of some sections replaced, validated again."""
    data = config.model_dump()
    for name, values in sections.items():
        data[name] = {**data[name], **values}
    return Config.model_validate(data)


@pytest.fixture
async def telegram(
    config: Config,
    database_url: str,
    policy: dict[str, Any],
    telegram_options: dict[str, Any],
) -> AsyncIterator[Bot]:
    """The bot, as `sexto run` serves it, on a fresh database behind a local Bot API server."""
    config = with_sections(config, escalation=policy, telegram=telegram_options)
    async with (
        watched_loop(),
        BotApiServer(token=TOKEN, bot_username="sexto_test_bot") as server,
        serving(server, config, database_url, TOKEN) as runtime,
    ):
        yield Bot(server, runtime)
