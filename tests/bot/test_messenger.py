"""Sending to Telegram: what is retried, what is final."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.messenger import BotRefused, DeliveryError, TelegramMessenger
from dialogues.effects import Button
from tests.support.botapi import BotApiServer

TOKEN = "123456789:AAmessenger-test"


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    async with BotApiServer(token=TOKEN) as server:
        yield server


@pytest.fixture
async def messenger(server: BotApiServer) -> AsyncIterator[TelegramMessenger]:
    bot = Bot(TOKEN, base_url=f"{server.url}/bot")
    async with bot:
        yield TelegramMessenger(bot, backoff=0.05)


async def test_a_blocked_user_fails_at_once(
    server: BotApiServer, messenger: TelegramMessenger
) -> None:
    user = server.add_user(42, "Blocked", started=True)
    server.block_bot(user)
    with pytest.raises(DeliveryError, match="blocked"):
        await messenger.send(42, "hello")
    assert len(server.calls_of("sendMessage")) == 1


async def test_server_errors_are_retried_then_given_up(
    server: BotApiServer, messenger: TelegramMessenger
) -> None:
    server.add_user(42, "Someone", started=True)
    server.inject_fault("sendMessage", "502", times=10)
    with pytest.raises(DeliveryError):
        await messenger.send(42, "hello")
    assert len(server.calls_of("sendMessage")) == 5
    assert server.sent_messages(42) == []


async def test_a_server_that_does_not_know_the_bot_is_not_a_failed_delivery(
    server: BotApiServer, messenger: TelegramMessenger
) -> None:
    """A 404 (or 401) is about the bot itself, not this message: it is not retried here, and
    callers can tell it from a refused message (the message is kept to be tried again)."""
    server.add_user(42, "Someone", started=True)
    server.forget_method("sendMessage")
    with pytest.raises(BotRefused, match="sendMessage"):
        await messenger.send(42, "hello")
    assert len(server.calls_of("sendMessage")) == 1


async def test_edit_replaces_text_and_buttons(
    server: BotApiServer, messenger: TelegramMessenger
) -> None:
    server.add_user(42, "Someone", started=True)
    rows = ((Button("Acknowledge", "ack:1"),),)
    message_id = await messenger.send(42, "<b>Alert</b>", rows)
    await messenger.edit(42, message_id, "Alert, acknowledged")
    await messenger.edit(42, message_id, "Alert, acknowledged")  # a double tap is harmless
    [message] = server.sent_messages(42)
    assert message["text"] == "Alert, acknowledged"
    assert "reply_markup" not in message
