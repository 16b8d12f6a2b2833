"""Start-up against a Bot API server that refuses what the bot can do without."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from bot.application import Refused, serve
from bot.runtime import Runtime
from bot.settings import Config
from storage.models import Role
from tests.conftest import settings_for
from tests.e2e.conftest import TOKEN, Bot
from tests.support.botapi import BotApiServer
from tests.support.serving import serving

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("refusal", ["502", "429", "unknown method"])
async def test_the_bot_serves_when_the_command_menu_is_refused(
    config: Config, database_url: str, refusal: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.handlers")
    async with BotApiServer(token=TOKEN, bot_username="sexto_test_bot") as server:
        if refusal == "unknown method":
            server.forget_method("setMyCommands")
        else:
            server.inject_fault("setMyCommands", refusal, times=10, retry_after=1)  # type: ignore[arg-type]
        async with serving(server, config, database_url, TOKEN) as runtime:
            bot = Bot(server, runtime)
            pro = await bot.enrolled(Role.PROFESSIONAL, 500, "Julie")
            server.send_text(pro, "/incident")
            mode = await server.wait_for_message(
                500, lambda m: bool((m.get("reply_markup") or {}).get("inline_keyboard"))
            )
            assert "Real situation" in str(mode["reply_markup"])
            # Served while the menu was still being tried (a 429 is tried again 3 times); once
            # given up, the operator is told why.
            for _ in range(100):
                if "command menu was not published" in caplog.text:
                    break
                await asyncio.sleep(0.1)
    assert "the command menu was not published" in caplog.text


async def test_the_bot_waits_out_a_bot_api_server_that_fails_at_start(
    config: Config, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.application")
    async with BotApiServer(token=TOKEN, bot_username="sexto_test_bot") as server:
        server.inject_fault("getMe", "502", times=2)
        async with serving(server, config, database_url, TOKEN) as runtime:
            pro = await Bot(server, runtime).enrolled(Role.PROFESSIONAL, 501, "Julie")
            server.send_text(pro, "/status")
            assert await server.wait_for_message(501)
        tries = [c for c in server.calls if c.method == "getMe"]
    assert len(tries) == 3
    assert caplog.text.count("does not answer") == 2


@pytest.mark.parametrize("fault", ["502", "timeout", "drop", "429"])
async def test_the_bot_waits_out_a_failing_delete_webhook(
    config: Config, database_url: str, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Polling starts by removing any webhook; a server failing that call a few times (here
    more than python-telegram-bot's rate limiter tries a 429) only delays serving."""
    caplog.set_level(logging.WARNING, logger="bot.application")
    # Short client time-outs, so that a held request fails within the server's wait.
    quick = config.telegram.model_copy(
        update={"read_timeout": timedelta(seconds=1), "connect_timeout": timedelta(seconds=1)}
    )
    config = config.model_copy(update={"telegram": quick})
    async with BotApiServer(token=TOKEN, bot_username="sexto_test_bot") as server:
        times = 4 if fault == "429" else 2
        server.inject_fault("deleteWebhook", fault, times=times, retry_after=1)  # type: ignore[arg-type]
        async with serving(server, config, database_url, TOKEN) as runtime:
            pro = await Bot(server, runtime).enrolled(Role.PROFESSIONAL, 502, "Julie")
            server.send_text(pro, "/status")
            assert await server.wait_for_message(502)
    assert "does not answer deleteWebhook" in caplog.text


async def test_a_server_without_delete_webhook_is_named(config: Config, database_url: str) -> None:
    """A Bot API server without deleteWebhook cannot be polled by python-telegram-bot: the
    program ends saying which call the server does not know, not with a traceback."""
    async with BotApiServer(token=TOKEN, bot_username="sexto_test_bot") as server:
        server.forget_method("deleteWebhook")
        settings = settings_for(
            config, database_url, telegram_token=TOKEN, telegram_api_url=server.url
        )
        runtime = Runtime.create(settings)
        try:
            await runtime.prepare_database()
            with pytest.raises(Refused, match="does not know deleteWebhook"):
                await asyncio.wait_for(serve(runtime, asyncio.Event(), poll_timeout=1), 30)
        finally:
            await runtime.close()
