"""The real python-telegram-bot Application, polling a local Bot API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.application import build_application
from bot.runtime import Runtime
from bot.settings import Config
from storage.models import Role
from storage.repositories import Enrollment
from tests.conftest import settings_for
from tests.support.botapi import BotApiServer
from tests.support.clock import FrozenClock

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
        self, role: Role, user_id: int, name: str, language: str = "en"
    ) -> dict[str, Any]:
        """A Telegram user who has enrolled with /start CODE."""
        user = self.server.add_user(user_id, name, language_code=language)
        self.server.send_text(user, f"/start {await self.code(role)}")
        welcome = await self.server.wait_for_message(user_id)
        assert "Welcome" in welcome["text"] or "Bienvenue" in welcome["text"]
        return user


@pytest.fixture
async def telegram(config: Config, database_url: str, clock: FrozenClock) -> AsyncIterator[Bot]:
    """The bot serving a fresh database through a local Bot API server."""
    async with BotApiServer(token=TOKEN, bot_username="sexto_test_bot") as server:
        settings = settings_for(
            config, database_url, telegram_token=TOKEN, telegram_api_url=server.url
        )
        runtime = Runtime.create(settings, clock=clock)
        await runtime.prepare_database()
        app, front = build_application(runtime)
        async with app:
            await front.set_commands(app)
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=1)
            try:
                yield Bot(server, runtime)
            finally:
                await app.updater.stop()
                await app.stop()
        await runtime.close()
