"""Webhook mode: Telegram's secret token is required on every request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.settings import Config
from tests.support.botapi import BotApiServer
from tests.support.webhook import text_update, webhook_bot

SECRET = "webhook-secret_123"


@pytest.fixture
async def webhook(config: Config, tmp_path: Path) -> AsyncIterator[tuple[BotApiServer, str]]:
    async with webhook_bot(config, tmp_path, SECRET) as running:
        yield running.server, running.url


async def test_the_webhook_needs_its_secret(webhook: tuple[BotApiServer, str]) -> None:
    server, url = webhook
    [registered] = server.calls_of("setWebhook")
    assert registered.params["url"] == "https://sexto.example/telegram"
    assert registered.params["secret_token"] == SECRET
    server.add_user(901, "Curious", language_code="en", started=True)
    async with httpx.AsyncClient() as client:
        missing = await client.post(url, json=text_update(1, 901))
        wrong = await client.post(
            url, json=text_update(2, 901), headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}
        )
        right = await client.post(
            url, json=text_update(3, 901), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
    assert (missing.status_code, wrong.status_code, right.status_code) == (403, 403, 200)
    reply = await server.wait_for_message(901)
    assert "reserved for staff trained" in reply["text"]
    await asyncio.sleep(0.3)
    assert len(server.sent_messages(901)) == 1  # only the request with the secret was served


async def test_a_failing_set_webhook_is_tried_until_it_is_registered(
    config: Config, tmp_path: Path
) -> None:
    """A Bot API server failing setWebhook at start-up (a 5xx, twice) delays registering the
    webhook; the bot does not stop, and it serves once registered."""

    def failing(server: BotApiServer) -> None:
        server.inject_fault("setWebhook", "502", times=2)

    async with webhook_bot(config, tmp_path, SECRET, prepare=failing) as running:
        server = running.server
        for _ in range(100):
            if any(call.ok for call in server.calls_of("setWebhook")):
                break
            await asyncio.sleep(0.1)
        assert [call.ok for call in server.calls_of("setWebhook")] == [False, False, True]
        assert not running.serving.done()
        server.add_user(902, "Curious", language_code="en", started=True)
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                running.url,
                json=text_update(1, 902),
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            )
        assert answer.status_code == 200
        assert "reserved for staff trained" in (await server.wait_for_message(902))["text"]
