"""Escalation end to end, with second-scale timings, through the real Telegram stack."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from storage.models import Delivery, Role
from tests.e2e.conftest import Bot

pytestmark = pytest.mark.slow

PRO, OFFICER, BACKUP, COORD = 500, 700, 701, 900


@pytest.fixture
def policy() -> dict[str, Any]:
    return {
        "call_911_reminder_every": "1s",
        "call_911_reminders_before_escalation": 2,
        "officer_ack_timeout": "1s",
        "officer_alert_repeats": 1,
        "stalled_after": "1h",
    }


@pytest.fixture
def telegram_options() -> dict[str, Any]:
    return {"read_timeout": "1s", "connect_timeout": "1s"}


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def walk_to_911(bot: Bot, pro: dict[str, Any]) -> dict[str, Any]:
    server = bot.server
    server.send_text(pro, "/incident")
    step = await server.wait_for_message(PRO, lambda m: bool(buttons(m)))
    for label in (
        "Real situation",
        "No immediate danger",
        "Understood",
        "Done",
        "1",
        "Grid filled in",
    ):
        query = server.press_button(pro, step, text=label)
        await server.wait_for_callback_answer(query)
        step = await server.wait_for_message(PRO, lambda m: bool(buttons(m)))
    assert "Call 911 now" in step["text"]
    return step


def texts(bot: Bot, chat: int, needle: str) -> list[str]:
    return [m["text"] for m in bot.server.sent_messages(chat) if needle in m["text"]]


async def test_reminders_escalate_and_stop_on_confirmation(telegram: Bot) -> None:
    server = telegram.server
    await telegram.enrolled(Role.OFFICER, OFFICER, "Officer Roy")
    await telegram.enrolled(Role.COORDINATOR, COORD, "Coord Lee", school=None)
    pro = await telegram.enrolled(Role.PROFESSIONAL, PRO, "Julie")
    await walk_to_911(telegram, pro)

    first = await server.wait_for_message(PRO, lambda m: "Reminder 1" in m["text"])
    assert buttons(first) == ["I called 911"]
    await server.wait_for_message(PRO, lambda m: "Reminder 2" in m["text"])
    for chat in (OFFICER, COORD):
        notice = await server.wait_for_message(chat, lambda m: "911 not confirmed" in m["text"])
        assert "SX-2026-0001" in notice["text"]
    reminder = texts(telegram, PRO, "Reminder")[-1]
    assert "Call 911 now, then confirm here" in reminder

    latest = [m for m in server.sent_messages(PRO) if buttons(m) == ["I called 911"]][-1]
    query = server.press_button(pro, latest, text="I called 911")
    await server.wait_for_callback_answer(query)
    await server.wait_for_message(PRO, lambda m: "911 call recorded" in m["text"])
    count = len(texts(telegram, PRO, "Reminder"))
    await asyncio.sleep(2.5)  # over two reminder periods: nothing more may come
    assert len(texts(telegram, PRO, "Reminder")) == count
    assert len(texts(telegram, OFFICER, "911 not confirmed")) == 1


async def test_the_officer_acknowledges_and_strangers_are_refused(telegram: Bot) -> None:
    server = telegram.server
    officer = await telegram.enrolled(Role.OFFICER, OFFICER, "Officer Roy")
    other = await telegram.enrolled(Role.OFFICER, 777, "Officer Elsewhere", school="west")
    pro = await telegram.enrolled(Role.PROFESSIONAL, PRO, "Julie")
    server.send_text(pro, "/incident")
    mode = await server.wait_for_message(PRO, lambda m: bool(buttons(m)))
    await server.wait_for_callback_answer(server.press_button(pro, mode, text="Real situation"))
    alert = await server.wait_for_message(OFFICER, lambda m: "🔔 SEXTO" in m["text"])
    assert buttons(alert) == ["Acknowledge"]

    forged = server.press_button(other, alert, text="Acknowledge")
    answer = await server.wait_for_callback_answer(forged)
    assert answer.show_alert is True
    assert answer.text == "This alert is not addressed to you."

    await server.wait_for_callback_answer(server.press_button(officer, alert, text="Acknowledge"))
    aware = await server.wait_for_message(PRO, lambda m: "is aware of incident" in m["text"])
    assert "Officer Roy" in aware["text"]
    [closed] = [m for m in server.sent_messages(OFFICER) if m["message_id"] == alert["message_id"]]
    assert "Acknowledged by Officer Roy at" in closed["text"]
    assert buttons(closed) == []
    await asyncio.sleep(1.5)
    assert len(texts(telegram, OFFICER, "🔔 SEXTO")) == 1  # no repeat after the acknowledgement


async def test_silence_goes_to_the_backup_then_the_coordinators(telegram: Bot) -> None:
    server = telegram.server
    await telegram.enrolled(Role.OFFICER, OFFICER, "Officer Roy")
    await telegram.enrolled(Role.OFFICER, BACKUP, "Officer Tremblay", language="fr")
    await telegram.enrolled(Role.COORDINATOR, COORD, "Coord Lee", school=None)
    pro = await telegram.enrolled(Role.PROFESSIONAL, PRO, "Julie")
    server.send_text(pro, "/incident")
    mode = await server.wait_for_message(PRO, lambda m: bool(buttons(m)))
    await server.wait_for_callback_answer(server.press_button(pro, mode, text="Real situation"))
    await server.wait_for_message(OFFICER, lambda m: "🔔 SEXTO" in m["text"])
    await server.wait_for_message(OFFICER, lambda m: "(reminder 1)" in m["text"])
    await server.wait_for_message(BACKUP, lambda m: "🔔 SEXTO" in m["text"])
    last = await server.wait_for_message(COORD, lambda m: "🔔 SEXTO" in m["text"])
    assert buttons(last) == ["Acknowledge"]
    await asyncio.sleep(1.5)
    assert len(texts(telegram, OFFICER, "🔔 SEXTO")) == 2
    assert len(texts(telegram, BACKUP, "🔔 SEXTO")) == 1
    assert len(texts(telegram, COORD, "🔔 SEXTO")) == 1


@pytest.mark.parametrize("fault", ["429", "502", "timeout", "drop"])
async def test_telegram_faults_still_deliver_exactly_once(telegram: Bot, fault: str) -> None:
    server = telegram.server
    pro = await telegram.enrolled(Role.PROFESSIONAL, PRO, "Julie")
    await walk_to_911(telegram, pro)
    server.inject_fault("sendMessage", fault, times=2, retry_after=1, hold=3)
    await server.wait_for_message(PRO, lambda m: "Reminder 1" in m["text"], timeout=20)
    faulted = [c for c in server.calls_of("sendMessage") if c.fault]
    assert len(faulted) == 2

    async def recorded() -> list[Delivery]:
        async with telegram.runtime.sessions() as session:
            rows = await session.scalars(select(Delivery).where(Delivery.chat_id == PRO))
            return [d for d in rows if "Reminder 1" in d.text]

    for _ in range(50):  # the delivery is recorded just after Telegram answered
        reminders = await recorded()
        if reminders and reminders[0].status != "pending":
            break
        await asyncio.sleep(0.1)
    assert len(reminders) == 1
    assert reminders[0].status == "delivered"
    assert len(texts(telegram, PRO, "Reminder 1")) == 1
