"""The bot served in the test's own process, as ``sexto run`` serves it, behind a local server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bot.application import serve
from bot.runtime import Runtime
from bot.settings import Config
from tests.conftest import settings_for
from tests.support.botapi import BotApiServer


@contextlib.asynccontextmanager
async def serving(
    server: BotApiServer, config: Config, database_url: str, token: str
) -> AsyncIterator[Runtime]:
    """Serve the bot on a prepared database, polling ``server``, until the block ends."""
    settings = settings_for(
        config, database_url, telegram_token=token, telegram_api_url=server.url
    )
    runtime = Runtime.create(settings)
    await runtime.prepare_database()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(runtime, stop, poll_timeout=1))
    try:
        await server.wait_for_call("getUpdates")
        yield runtime
    finally:
        stop.set()
        await task
        await runtime.close()
