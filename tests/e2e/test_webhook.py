"""Webhook mode: Telegram's secret token is required on every request."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.application import serve
from bot.runtime import Runtime
from bot.settings import Config
from tests.conftest import settings_for
from tests.e2e.conftest import TOKEN, with_sections
from tests.support.botapi import BotApiServer

SECRET = "webhook-secret_123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def webhook(config: Config, tmp_path: Any) -> AsyncIterator[tuple[BotApiServer, str]]:
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
        settings = settings_for(
            config,
            f"sqlite+aiosqlite:///{tmp_path / 'hook.db'}",
            telegram_token=TOKEN,
            telegram_api_url=server.url,
            webhook_secret=SECRET,
        )
        runtime = Runtime.create(settings)
        await runtime.prepare_database()
        stop = asyncio.Event()
        serving = asyncio.create_task(serve(runtime, stop))
        try:
            await server.wait_for_call("setWebhook")
            yield server, f"http://127.0.0.1:{port}/telegram"
        finally:
            stop.set()
            await serving
            await runtime.close()


def update(update_id: int, user_id: int) -> dict[str, Any]:
    person = {"id": user_id, "is_bot": False, "first_name": "Curious", "language_code": "en"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Curious"},
            "from": person,
            "text": "hello",
        },
    }


async def test_the_webhook_needs_its_secret(webhook: tuple[BotApiServer, str]) -> None:
    server, url = webhook
    [registered] = server.calls_of("setWebhook")
    assert registered.params["url"] == "https://sexto.example/telegram"
    assert registered.params["secret_token"] == SECRET
    server.add_user(901, "Curious", language_code="en", started=True)
    async with httpx.AsyncClient() as client:
        missing = await client.post(url, json=update(1, 901))
        wrong = await client.post(
            url, json=update(2, 901), headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}
        )
        right = await client.post(
            url, json=update(3, 901), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
    assert (missing.status_code, wrong.status_code, right.status_code) == (403, 403, 200)
    reply = await server.wait_for_message(901)
    assert "reserved for staff trained" in reply["text"]
    await asyncio.sleep(0.3)
    assert len(server.sent_messages(901)) == 1  # only the request with the secret was served
