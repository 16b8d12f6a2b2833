"""python-telegram-bot's requests through aiohttp: what arrives, and how failures surface."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, RetryAfter, TimedOut

from bot.telegram_http import AiohttpRequest
from tests.support.botapi import BotApiServer

TOKEN = "123456789:AAtransport-test"


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    async with BotApiServer(token=TOKEN) as server:
        server.add_user(42, "Julie", started=True)
        yield server


def bot_on(server: BotApiServer, request: AiohttpRequest) -> Bot:
    return Bot(TOKEN, base_url=f"{server.url}/bot", request=request)


async def test_a_message_arrives_with_its_text_and_buttons(server: BotApiServer) -> None:
    async with bot_on(server, AiohttpRequest()) as bot:
        sent = await bot.send_message(
            42,
            "<b>Étape 1</b> : isolez la victime",
            parse_mode="HTML",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Fait", callback_data="s1")]]
            ),
        )
    [message] = server.sent_messages(42)
    assert sent.message_id == message["message_id"]
    assert message["text"] == "Étape 1 : isolez la victime"
    assert message["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "s1"


async def test_flood_control_keeps_its_meaning(server: BotApiServer) -> None:
    server.inject_fault("sendMessage", "429", retry_after=7)
    async with bot_on(server, AiohttpRequest()) as bot:
        with pytest.raises(RetryAfter) as raised:
            await bot.send_message(42, "hello")
    assert raised.value.retry_after.total_seconds() == 7  # type: ignore[union-attr]


async def test_a_server_that_does_not_answer_times_out(server: BotApiServer) -> None:
    server.inject_fault("sendMessage", "timeout", hold=30)
    async with bot_on(server, AiohttpRequest(read_timeout=0.3)) as bot:
        started = time.monotonic()
        with pytest.raises(TimedOut):
            await bot.send_message(42, "hello")
        assert time.monotonic() - started < 5
        # The connection pool is still usable afterwards.
        await bot.send_message(42, "again")
    assert [m["text"] for m in server.sent_messages(42)] == ["again"]


async def test_a_dropped_connection_is_a_network_error(server: BotApiServer) -> None:
    server.inject_fault("sendMessage", "drop")
    async with bot_on(server, AiohttpRequest()) as bot:
        with pytest.raises(NetworkError) as raised:
            await bot.send_message(42, "hello")
    assert not isinstance(raised.value, TimedOut)


async def test_no_server_at_all_is_a_network_error() -> None:
    async with AiohttpRequest(connect_timeout=1) as request:
        with pytest.raises(NetworkError) as raised:
            await request.post(f"http://127.0.0.1:9/bot{TOKEN}/getMe")
    assert not isinstance(raised.value, TimedOut)


async def test_a_full_pool_times_out_without_sending(server: BotApiServer) -> None:
    """With every connection busy for longer than the time to get one, a request times out
    unsent (waiting for a free connection and opening one share pool + connect time-outs)."""
    server.inject_fault("sendMessage", "timeout", hold=30)
    request = AiohttpRequest(
        connection_pool_size=1, pool_timeout=0.2, connect_timeout=0.3, read_timeout=3
    )
    async with bot_on(server, request) as bot:
        held = asyncio.create_task(bot.send_message(42, "first"))
        await server.wait_for_call("sendMessage")
        with pytest.raises(TimedOut):
            await bot.send_message(42, "second")
        with pytest.raises(TimedOut):
            await held
    assert len(server.calls_of("sendMessage")) == 1


async def test_requests_need_an_open_pool_and_it_reopens(server: BotApiServer) -> None:
    request = AiohttpRequest()
    bot = bot_on(server, request)
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{server.url}/bot{TOKEN}/getMe", "POST")
    async with bot:
        await bot.send_message(42, "one")
    async with bot:
        await bot.send_message(42, "two")
    assert [m["text"] for m in server.sent_messages(42)] == ["one", "two"]


def test_a_pool_needs_a_connection() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AiohttpRequest(connection_pool_size=0)


async def test_the_environment_s_proxy_is_used(
    server: BotApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment behind an HTTP proxy sets HTTP(S)_PROXY: requests go through it (here the
    local server stands in for the proxy of a host that does not resolve)."""
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    request = AiohttpRequest(connect_timeout=2)
    async with Bot(TOKEN, base_url="http://api.telegram.invalid/bot", request=request) as bot:
        await bot.send_message(42, "through the proxy")
    assert [m["text"] for m in server.sent_messages(42)] == ["through the proxy"]


async def test_no_proxy_is_respected(
    server: BotApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with bot_on(server, AiohttpRequest()) as bot:
        await bot.send_message(42, "direct")
    assert [m["text"] for m in server.sent_messages(42)] == ["direct"]
