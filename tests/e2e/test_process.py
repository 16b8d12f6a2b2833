"""The real program as a process, pointed at a Bot API server by TELEGRAM_API_URL."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import TOKEN
from tests.support.botapi import ThreadedBotApiServer
from tests.support.process import BotProcess, enroll, environment, run, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[ThreadedBotApiServer]:
    with ThreadedBotApiServer(token=TOKEN, bot_username="sexto_test_bot") as server:
        yield server


def prepared(
    tmp_path: Path, database_url: str, api_url: str, token: str = TOKEN
) -> dict[str, str]:
    """The environment of a bot served by the Bot API server at ``api_url``, its database
    initialised with `sexto init`."""
    env = environment(
        write_config(tmp_path), database_url, TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_URL=api_url
    )
    assert run(env, "init").returncode == 0
    return env


async def test_sexto_run_serves_a_telegram_user(
    server: ThreadedBotApiServer, database_url: str, tmp_path: Path
) -> None:
    env = prepared(tmp_path, database_url, server.url)
    code = enroll(env, "professional")
    link = run(env, "enroll", "--role", "officer", "--school", "nord").stdout
    assert "https://t.me/sexto_test_bot?start=" in link  # the username comes from getMe

    bot = BotProcess(env, tmp_path / "bot.log")
    bot.start()
    try:
        user = server.add_user(4242, "Julie", language_code="fr")
        server.send_text(user, f"/start {code}")
        welcome = await server.wait_for_message(4242, timeout=30)
        assert "Bienvenue, Julie" in welcome["text"]
        server.send_text(user, "/incident")
        mode = await server.wait_for_message(4242)
        server.press_button(user, mode, text="Exercice")
        opened = await server.wait_for_message(4242, lambda m: "SX-" in m["text"])
        assert "EXERCICE" in opened["text"]
        server.send_text(user, "/status")
        status = await server.wait_for_message(4242, lambda m: "Statut" in m["text"])
        assert "Incident ouvert" in status["text"]
    finally:
        code_at_exit = bot.stop()
    assert code_at_exit == 0, bot.output()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _output_shows(bot: BotProcess, text: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if text in bot.output():
            return True
        await asyncio.sleep(0.2)
    return False


async def test_sexto_run_waits_for_a_bot_api_server_that_is_not_up_yet(
    database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = prepared(tmp_path, database_url, f"http://127.0.0.1:{port}")
    code = enroll(env, "professional")
    bot = BotProcess(env, tmp_path / "bot.log")
    bot.start()
    try:
        assert await _output_shows(bot, "does not answer", within=60), bot.output()
        assert bot.process is not None
        assert bot.process.poll() is None, bot.output()
        with ThreadedBotApiServer(token=TOKEN, bot_username="sexto_test_bot", port=port) as server:
            user = server.add_user(4242, "Julie", language_code="fr")
            server.send_text(user, f"/start {code}")
            welcome = await server.wait_for_message(4242, timeout=60)
            assert "Bienvenue, Julie" in welcome["text"]
            code_at_exit = bot.stop()
    finally:
        bot.stop()
    output = bot.output()
    assert code_at_exit == 0, output
    assert f"the Bot API server at http://127.0.0.1:{port} does not answer" in output
    assert "Traceback" not in output, output
    assert "Unclosed" not in output, output


@pytest.mark.parametrize("refusal", ["token", "deleteWebhook"])
async def test_sexto_run_stops_at_once_on_what_it_cannot_serve_without(
    server: ThreadedBotApiServer, database_url: str, tmp_path: Path, refusal: str
) -> None:
    """Another bot's token, or a Bot API server without deleteWebhook (which polling needs):
    exit code 1 and one line saying why, not a traceback (nor the token)."""
    other_token = "987654321:AAsome-other_bots_secret"
    if refusal == "token":
        env = prepared(tmp_path, database_url, server.url, token=other_token)
        why = f"Error: the Bot API server at {server.url} refused TELEGRAM_BOT_TOKEN"
    else:
        server.forget_method("deleteWebhook")
        env = prepared(tmp_path, database_url, server.url)
        why = f"Error: the Bot API server at {server.url} does not know deleteWebhook"
    bot = BotProcess(env, tmp_path / "bot.log")
    bot.start()
    assert bot.process is not None
    try:
        code_at_exit = await asyncio.to_thread(bot.process.wait, 90)
    finally:
        bot.stop()
    output = bot.output()
    assert code_at_exit == 1, output
    assert why in output
    assert "AAsome-other_bots_secret" not in output
    assert "Traceback" not in output, output
    assert "Unclosed" not in output, output
