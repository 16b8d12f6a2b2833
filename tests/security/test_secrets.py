"""Secrets and what people type stay out of the logs, even with ``sexto -v``."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.e2e.conftest import TOKEN
from tests.support.botapi import ThreadedBotApiServer
from tests.support.process import enroll, environment, run, sexto_executable, write_config
from tests.support.webhook import free_port

pytestmark = pytest.mark.slow


async def test_verbose_logs_hold_no_secret_and_nothing_typed(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path, dashboard={"port": port, "base_url": f"http://127.0.0.1:{port}"}
    )
    dashboard_secret = secrets.token_urlsafe(32)
    typed = "Something only the professional typed 7391"
    with ThreadedBotApiServer(token=TOKEN, bot_username="sexto_test_bot") as server:
        env = environment(
            config,
            f"sqlite:///{tmp_path / 'sexto.db'}",
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=server.url,
            SEXTO_DASHBOARD_SECRET=dashboard_secret,
        )
        assert run(env, "init").returncode == 0
        code = enroll(env, "professional")
        log = tmp_path / "bot.log"
        with log.open("wb") as out:
            bot = subprocess.Popen(
                [sexto_executable(), "-v", "run"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            user = server.add_user(4242, "Julie", language_code="en")
            server.send_text(user, f"/start {code}")
            await server.wait_for_message(4242, timeout=30)
            server.send_text(user, "/incident")
            mode = await server.wait_for_message(4242)
            server.press_button(user, mode, text="Drill")
            await server.wait_for_message(4242, lambda m: "SX-" in m["text"])
            server.send_text(user, typed)
            server.send_text(user, "/status")
            await server.wait_for_message(4242, lambda m: "DRILL" in m["text"])
        finally:
            bot.terminate()
            bot.wait(timeout=20)
    output = log.read_text(encoding="utf-8", errors="replace")
    assert "DEBUG" in output  # verbose it was
    for secret in (TOKEN, TOKEN.split(":")[1], dashboard_secret, TEST_ENCRYPTION_KEY, code, typed):
        assert secret not in output, f"{secret[:12]}… is in the log"
