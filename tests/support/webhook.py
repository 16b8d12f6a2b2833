"""The bot served in webhook mode behind the local Bot API server, for the webhook tests."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.application import serve
from bot.runtime import Runtime
from bot.settings import Config
from tests.conftest import settings_for
from tests.e2e.conftest import TOKEN, with_sections
from tests.support.botapi import BotApiServer


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Hook:
    """The bot in webhook mode: its address, the Bot API server, and how to stop it."""

    server: BotApiServer
    url: str
    stop: asyncio.Event
    serving: asyncio.Task[None]

    async def shut(self) -> None:
        """Stop the bot (idempotent)."""
        self.stop.set()
        await self.serving


@asynccontextmanager
async def webhook_bot(
    config: Config,
    folder: Path,
    secret: str,
    prepare: Callable[[BotApiServer], None] | None = None,
) -> AsyncIterator[Hook]:
    """`serve` in webhook mode on a free local port, once it has asked to register its webhook
    (``prepare`` sets the Bot API server up before the bot starts)."""
    port = free_port()
    config = with_sections(
        config,
        telegram={
            "mode": "webhook",
            "webhook_url": "https://sexto.example/telegram",
            "webhook_listen": "127.0.0.1",
            "webhook_port": port,
        },
    )
    async with BotApiServer(token=TOKEN) as server:
        if prepare is not None:
            prepare(server)
        settings = settings_for(
            config,
            f"sqlite+aiosqlite:///{folder / 'hook.db'}",
            telegram_token=TOKEN,
            telegram_api_url=server.url,
            webhook_secret=secret,
        )
        runtime = Runtime.create(settings)
        await runtime.prepare_database()
        stop = asyncio.Event()
        running = Hook(
            server,
            f"http://127.0.0.1:{port}/telegram",
            stop,
            asyncio.create_task(serve(runtime, stop)),
        )
        try:
            await server.wait_for_call("setWebhook")
            yield running
        finally:
            await running.shut()
            await runtime.close()


def text_update(update_id: int, user_id: int, text: str = "hello") -> dict[str, Any]:
    """A private text message from a person, as Telegram posts it to a webhook."""
    person = {"id": user_id, "is_bot": False, "first_name": "Curious", "language_code": "en"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Curious"},
            "from": person,
            "text": text,
        },
    }
