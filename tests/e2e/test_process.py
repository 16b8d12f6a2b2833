"""The real program as a process, pointed at a Bot API server by TELEGRAM_API_URL."""

from __future__ import annotations

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


async def test_sexto_run_serves_a_telegram_user(
    server: ThreadedBotApiServer, database_url: str, tmp_path: Path
) -> None:
    env = environment(
        write_config(tmp_path),
        database_url,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=server.url,
    )
    assert run(env, "init").returncode == 0
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
