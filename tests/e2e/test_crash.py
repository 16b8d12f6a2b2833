"""Kill -9 the real bot process and restart it: reminders and alerts arrive exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from bot.scheduler import jobs_url, sync_url
from tests.e2e.conftest import TOKEN
from tests.support.botapi import ThreadedBotApiServer
from tests.support.process import BotProcess, enroll, environment, run, write_config

pytestmark = pytest.mark.slow

PRO, OFFICER = 4242, 4343
EVERY = 4.0


@pytest.fixture
def server() -> Iterator[ThreadedBotApiServer]:
    with ThreadedBotApiServer(token=TOKEN, bot_username="sexto_test_bot") as server:
        yield server


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def count(server: ThreadedBotApiServer, chat: int, needle: str) -> int:
    return sum(needle in m["text"] for m in server.sent_messages(chat))


def started(
    server: ThreadedBotApiServer, database_url: str, tmp_path: Path, ack_timeout: float = EVERY
) -> tuple[BotProcess, tuple[str, str]]:
    """The bot process, with reminders every EVERY seconds and alert repeats every
    ``ack_timeout`` seconds, and enrollment codes for a professional and an officer."""
    config = write_config(
        tmp_path,
        escalation={
            "call_911_reminder_every": f"{EVERY:g}s",
            "call_911_reminders_before_escalation": 10,
            "officer_ack_timeout": f"{ack_timeout:g}s",
            "officer_alert_repeats": 5,
            "stalled_after": "1h",
        },
        telegram={"read_timeout": "2s", "connect_timeout": "2s"},
    )
    env = environment(config, database_url, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=server.url)
    assert run(env, "init").returncode == 0
    codes = enroll(env, "professional"), enroll(env, "officer")
    bot = BotProcess(env, tmp_path / "bot.log")
    bot.start()
    return bot, codes


async def at_grid_step(
    server: ThreadedBotApiServer, codes: tuple[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A professional at the grid step of a real incident, its officer alerted: the
    professional's user and the step's message."""
    pro_code, officer_code = codes
    pro = server.add_user(PRO, "Julie", language_code="en")
    officer = server.add_user(OFFICER, "Officer Roy", language_code="en")
    server.send_text(officer, f"/start {officer_code}")
    await server.wait_for_message(OFFICER, timeout=30)
    server.send_text(pro, f"/start {pro_code}")
    await server.wait_for_message(PRO, timeout=30)
    server.send_text(pro, "/incident")
    step = await server.wait_for_message(PRO, lambda m: bool(buttons(m)))
    for label in ("Real situation", "No immediate danger", "Understood", "Done", "1"):
        server.press_button(pro, step, text=label)
        step = await server.wait_for_message(PRO, lambda m: bool(buttons(m)))
    await server.wait_for_message(OFFICER, lambda m: "🔔 SEXTO" in m["text"])
    return pro, step


async def test_kill_9_loses_and_repeats_nothing(
    server: ThreadedBotApiServer, database_url: str, tmp_path: Path
) -> None:
    bot, codes = started(server, database_url, tmp_path)
    try:
        pro, step = await at_grid_step(server, codes)
        server.press_button(pro, step, text="Grid filled in")
        await server.wait_for_message(PRO, lambda m: "Call 911 now" in m["text"])
        shown = time.monotonic()

        bot.kill()  # the reminder and the alert's repeat fall due while the bot is dead
        await asyncio.sleep(EVERY + 1.5)
        assert count(server, PRO, "Reminder 1") == 0
        bot.start()

        await server.wait_for_message(PRO, lambda m: "Reminder 1" in m["text"], timeout=30)
        await server.wait_for_message(OFFICER, lambda m: "(reminder 1)" in m["text"], timeout=30)
        await server.wait_for_message(PRO, lambda m: "Reminder 2" in m["text"], timeout=30)
        assert time.monotonic() - shown >= 2 * EVERY
        await asyncio.sleep(0.5)
        assert count(server, PRO, "Reminder 1") == 1
        assert count(server, PRO, "Reminder 2") == 1
        assert count(server, OFFICER, "(reminder 1)") == 1
        assert count(server, OFFICER, "🔔 SEXTO: incident SX-2026-0001\n") == 1

        bot.kill()  # a second crash, right after a reminder
        bot.start()
        await server.wait_for_message(PRO, lambda m: "Reminder 3" in m["text"], timeout=30)
        assert count(server, PRO, "Reminder 2") == 1
        assert count(server, PRO, "Reminder 3") == 1
    finally:
        bot.stop()
    assert "interrupted message(s) resent" in bot.output()


async def test_lost_wake_ups_are_made_again_at_start(
    server: ThreadedBotApiServer, database_url: str, tmp_path: Path
) -> None:
    """The job store is a copy of the escalations table (its SQLite file is not synced at each
    commit): when its jobs are gone, the next start makes them again and reminders come."""
    bot, codes = started(server, database_url, tmp_path)
    try:
        pro, step = await at_grid_step(server, codes)
        server.press_button(pro, step, text="Grid filled in")
        await server.wait_for_message(PRO, lambda m: "Call 911 now" in m["text"])
        bot.kill()
        lose_jobs(database_url)
        bot.start()
        await server.wait_for_message(PRO, lambda m: "Reminder 1" in m["text"], timeout=30)
        await server.wait_for_message(PRO, lambda m: "Reminder 2" in m["text"], timeout=30)
        assert count(server, PRO, "Reminder 1") == 1
    finally:
        bot.stop()


async def test_a_start_the_bot_api_server_refuses_still_serves_and_resends_later(
    server: ThreadedBotApiServer, database_url: str, tmp_path: Path
) -> None:
    """Killed between recording the officer's alert and sending it, the bot starts again while
    the Bot API server refuses it for a moment (a 401): it serves, and the alert comes once.
    No wake-up is due then (the alert repeats after an hour): the start itself resends it."""
    bot, codes = started(server, database_url, tmp_path, ack_timeout=3600)
    try:
        pro, step = await at_grid_step(server, codes)
        bot.kill()
        interrupt_first_delivery(database_url, OFFICER)
        server.inject_fault("sendMessage", "401", times=2)
        bot.start()
        alert = "🔔 SEXTO: incident SX-2026-0001\n"
        await server.wait_for_message(OFFICER, lambda m: alert in m["text"], timeout=30)
        assert [c.fault for c in server.calls if c.fault] == ["401", "401"]
        server.press_button(pro, step, text="Grid filled in")
        await server.wait_for_message(PRO, lambda m: "Call 911 now" in m["text"], timeout=30)
        await asyncio.sleep(1)
        assert count(server, OFFICER, alert) == 2  # the first, then the one interrupted
    finally:
        bot.stop()
    assert "could not resend chain" in bot.output()


def interrupt_first_delivery(database_url: str, chat_id: int) -> None:
    """The first message recorded for ``chat_id`` left pending, as by a crash between recording
    it and sending it."""
    engine = sqlalchemy.create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            first = connection.execute(
                sqlalchemy.text("SELECT min(id) FROM deliveries WHERE chat_id = :chat"),
                {"chat": chat_id},
            ).scalar_one()
            connection.execute(
                sqlalchemy.text("UPDATE deliveries SET status = 'pending' WHERE id = :id"),
                {"id": first},
            )
    finally:
        engine.dispose()


def lose_jobs(database_url: str) -> None:
    """Every stored wake-up gone: the SQLite jobs file deleted, or PostgreSQL's jobs table
    emptied."""
    url = jobs_url(database_url)
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for lost in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            lost.unlink(missing_ok=True)
        return
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            gone = connection.execute(sqlalchemy.text("DELETE FROM apscheduler_jobs")).rowcount
        assert gone > 0
    finally:
        engine.dispose()
