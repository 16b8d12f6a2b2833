"""Telegram misbehaving: 429 with retry_after, 502, time-outs and dropped connections.

The local Bot API server injects each fault into the next call of a method, and the call never
takes effect (like a request Telegram refused or never received). Whatever fails, every answer
reaches the professional once, and every reminder and alert reaches Telegram exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.audit import audit_deliveries, audit_reminders, read_ledger, timeline_problems
from tests.support.chaos import TOKEN, Deployment, desks, professionals, step_of, walk_incident
from tests.support.fleet import Seat, crew
from tests.support.loadserver import StampedBotApiServer
from tests.support.professionals import Chat, has_button, says

pytestmark = pytest.mark.slow

POLICY = {
    "call_911_reminder_every": "1s",
    "call_911_reminders_before_escalation": 2,
    "officer_ack_timeout": "2s",
    "officer_alert_repeats": 1,
    "stalled_after": "1h",
}
TELEGRAM = {"read_timeout": "1s", "connect_timeout": "1s"}
# The longest a send started before the faults stopped may take to finish (see settle_and_audit).
SETTLE_S = 15.0
KINDS = ("429", "502", "timeout", "drop")
# Faults the bot must ride out without losing anything (a failed answerCallbackQuery is
# tested on its own below).
RIDDEN_OUT = [
    *(("sendMessage", kind) for kind in KINDS),
    *(("editMessageText", kind) for kind in KINDS),
    *(("getUpdates", kind) for kind in KINDS),
    ("answerCallbackQuery", "429"),
]


@pytest.fixture
async def deployment(tmp_path: Path, seats: list[Seat]) -> AsyncIterator[Deployment]:
    """The bot with short timings and client time-outs, and its crew enrolled.

    On SQLite only: the faults are Telegram's, and what the program records about its sends
    is the same on both databases (the kill -9 trials run on both).
    """
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'sexto.db'}"
    async with StampedBotApiServer(token=TOKEN, bot_username="sexto_chaos_bot") as server:
        running = await Deployment.start(
            server, tmp_path, database_url, seats, escalation=POLICY, telegram=TELEGRAM
        )
        try:
            yield running
        finally:
            await running.stop()


@pytest.fixture
def seats() -> list[Seat]:
    """Two officers, a coordinator and three professionals."""
    return crew(3)


def inject(server: StampedBotApiServer, method: str, kind: str) -> None:
    """The next call of ``method`` fails with ``kind`` (a held request outlives time-outs)."""
    server.inject_fault(method, kind, times=1, retry_after=1, hold=3)  # type: ignore[arg-type]


async def scripted_incident(
    chat: Chat, faults: list[tuple[str, str]], within: float = 20.0
) -> list[tuple[str, str]]:
    """Walk an incident, injecting the next fault(s) before each action; returns them."""
    server = chat.server
    chat.timeout = within
    actions: list[tuple[str, str, str]] = [
        ("send", "/incident", "Real situation"),
        ("press", "Real situation", "No immediate danger"),
        ("press", "No immediate danger", "Understood"),
        ("press", "Understood", "Done"),
        ("press", "Done", "None to seize"),
        ("send", "2", "Grid filled in"),
        ("press", "Grid filled in", "I called 911"),
        ("press", "I called 911", "Skip"),
        ("send", "2026-104522", "Kit handed to the patrol officer"),
        ("press", "Kit handed to the patrol officer", "Noted"),
        ("press", "Noted", ""),
    ]
    injected = []
    step: dict[str, object] = {}
    for index, (how, what, then) in enumerate(actions):
        for method, kind in faults[index :: len(actions)]:
            inject(server, method, kind)
            injected.append((method, kind))
        expect = has_button(then) if then else says("Summary of incident")
        if what == "I called 911":
            step = await chat.expect(says("Reminder 1"), server.last_update_at[chat.id])
        if how == "send":
            step = await chat.send(what, expect)
        else:
            step = await chat.press(step, what, expect)
    return injected


def step_messages(server: StampedBotApiServer, chat: int) -> Counter[str]:
    """How many times the bot showed each step in a chat."""
    return Counter(
        name for m in server.sent_messages(chat) if (name := step_of(m)) not in (None, "idle")
    )


async def settle_and_audit(deployment: Deployment) -> None:
    """Let late reminders and alerts go out, then check nothing was lost or repeated.

    A send still in its retries when the faults stop goes out at its next attempt: up to
    ``SETTLE_S`` later (the messenger's pauses double up to 4 s between five attempts, each
    of which may wait out a client time-out). A delivery still pending after that is a fault.
    """
    server = deployment.server
    server.clear_faults()
    await asyncio.sleep(2.5)
    ledger = await read_ledger(deployment.database_url)
    deadline = time.monotonic() + SETTLE_S
    while any(d.status == "pending" for d in ledger.deliveries) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        ledger = await read_ledger(deployment.database_url)
    calls = server.calls
    deliveries = audit_deliveries(ledger, calls)
    assert deliveries.missing == []
    assert deliveries.duplicated == []
    assert deliveries.failed == []
    reminders = audit_reminders(ledger, calls, timedelta(seconds=1), grace=timedelta(seconds=6))
    assert reminders.duplicated == []
    assert reminders.gaps == []
    assert timeline_problems(ledger) == []


async def test_faults_on_every_method_lose_and_repeat_nothing(
    deployment: Deployment, seats: list[Seat]
) -> None:
    server = deployment.server
    stop = asyncio.Event()
    serving = [asyncio.create_task(desk.serve(stop)) for desk in desks(deployment, seats)]
    pro = professionals(seats)[0]
    try:
        injected = await scripted_incident(deployment.chats[pro], RIDDEN_OUT)
    finally:
        stop.set()
        await asyncio.gather(*serving)
    assert sorted(injected) == sorted(RIDDEN_OUT)
    faulted = Counter((c.method, c.fault) for c in server.calls if c.fault)
    assert sum(faulted.values()) == len(RIDDEN_OUT), faulted
    shown = step_messages(server, pro)
    assert set(shown.values()) == {1}, shown  # each step shown once: nothing sent twice
    await settle_and_audit(deployment)


async def test_a_failed_callback_answer_does_not_lose_the_next_step(
    deployment: Deployment, seats: list[Seat]
) -> None:
    """The step is saved before the button press is answered: a 5xx, time-out or dropped
    connection on answerCallbackQuery must not keep the next step from being sent."""
    server = deployment.server
    chat = deployment.chats[professionals(seats)[0]]
    chat.timeout = 6.0
    step = await chat.send("/incident", has_button("Real situation"))
    for kind, (label, then) in zip(
        ("502", "timeout", "drop"),
        (
            ("Real situation", "No immediate danger"),
            ("No immediate danger", "Understood"),
            ("Understood", "Done"),
        ),
        strict=True,
    ):
        inject(server, "answerCallbackQuery", kind)
        step = await chat.press(step, label, has_button(then))


async def test_a_storm_of_faults_while_incidents_run(
    deployment: Deployment, seats: list[Seat], chaos_rng: random.Random
) -> None:
    server = deployment.server
    stop = asyncio.Event()
    serving = [asyncio.create_task(desk.serve(stop)) for desk in desks(deployment, seats)]

    for method in ("sendMessage", "editMessageText", "getUpdates"):
        server.fail_randomly(method, 0.15)
    server.fail_randomly("answerCallbackQuery", 0.15, ("429",))
    server.fault_rng = random.Random(chaos_rng.randrange(1 << 30))
    walks = [
        walk_incident(
            deployment.chats[user], random.Random(chaos_rng.randrange(1 << 30)), patience=15.0
        )
        for user in professionals(seats)
    ]
    try:
        done = await asyncio.gather(*walks)
    finally:
        stop.set()
        await asyncio.gather(*serving)
        for method in ("sendMessage", "editMessageText", "getUpdates", "answerCallbackQuery"):
            server.fail_randomly(method, 0)
    assert sum(1 for c in server.calls if c.fault) > 5
    assert [w.error for w in done if not w.finished] == []
    # The audit first: a late answer must not hide a lost or repeated reminder or alert.
    await settle_and_audit(deployment)
    assert [problem for w in done for problem in w.went_back()] == []
    # No answer was lost nor so late that the person asked again (each stall says why).
    assert [(w.user, w.stalls) for w in done if w.resyncs] == []
    for user in professionals(seats):
        shown = step_messages(server, user)
        assert set(shown.values()) == {1}, (user, shown)
