"""The database goes away under the running bot: it recovers without a restart, loses nothing.

PostgreSQL is restarted (fast shutdown: every connection is cut) while three professionals
wait at the call-911 step (reminders every second) and the officers take their time to
acknowledge (alert repeats fall due). While it is down one professional asks for /status.
Afterwards, with the same bot process: reminders come again, the incidents are finished, every
reminder and alert reached Telegram exactly once, and the /status question was answered.

A wake-up whose database work fails (the database was unreachable at that moment) is shown on
its own, on both databases, by failing one reminder's work once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot.runtime import Runtime
from bot.settings import Config
from storage.database import create_engine
from storage.models import Role
from tests.e2e.conftest import with_sections
from tests.support.audit import audit_deliveries, audit_reminders, read_ledger, timeline_problems
from tests.support.chaos import TOKEN, Deployment, desks, professionals, walk_incident
from tests.support.databases import in_ci, postgres_database
from tests.support.fleet import Seat, create_codes, crew, enroll
from tests.support.loadserver import StampedBotApiServer
from tests.support.postgres import down, restart_command, restart_postgres
from tests.support.professionals import Chat, Stuck, has_button, says
from tests.support.serving import serving

pytestmark = pytest.mark.slow

ANSWER_LOST = (
    "an update handled while the database is unreachable raises out of its handler and is "
    "dropped: the person's message is never answered (fix: handle it again after a pause)"
)
WAKE_UP_LOST = (
    "a wake-up was lost to the outage: its work failed and used up its job (fix: try the "
    "wake-up again), or the job store failed in the scheduler's thread and ended it (fix: "
    "try that pass again); the chain's reminders or alert repeats stop until the bot is "
    "restarted"
)


class AnswerLost(AssertionError):
    """Something a person sent was never answered."""


class WakeUpLost(AssertionError):
    """A reminder chain stopped reminding."""


POLICY = {
    "call_911_reminder_every": "1s",
    "call_911_reminders_before_escalation": 100,
    "officer_ack_timeout": "2s",
    "officer_alert_repeats": 2,
    "stalled_after": "1h",
}


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database on a server this machine can restart."""
    if restart_command() is None:
        reason = "pg_ctlcluster is not available: cannot restart the PostgreSQL server"
        if in_ci():
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    async with postgres_database() as url:
        yield url


async def to_call_911(chat: Chat) -> None:
    """Walk one professional to the call-911 step."""
    step = await chat.send("/incident", has_button("Real situation"))
    for label, then in (
        ("Real situation", "No immediate danger"),
        ("No immediate danger", "Understood"),
        ("Understood", "Done"),
        ("Done", "None to seize"),
        ("None to seize", "Grid filled in"),
        ("Grid filled in", "I called 911"),
    ):
        step = await chat.press(step, label, has_button(then))


async def running_without_wake_up(database_url: str) -> list[int]:
    """Escalations still due something that have no stored wake-up job."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT e.id FROM escalations e WHERE e.stopped_at IS NULL "
                    "AND e.next_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM apscheduler_jobs j "
                    "WHERE j.id = 'escalation-' || e.id)"
                )
            )
            return [int(row[0]) for row in rows]
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_postgres_restart_loses_nothing_and_needs_no_bot_restart(
    postgres_url: str, tmp_path: Path, chaos_rng: random.Random
) -> None:
    seats = crew(3)
    pros = professionals(seats)
    async with StampedBotApiServer(token=TOKEN, bot_username="sexto_chaos_bot") as server:
        deployment = await Deployment.start(
            server,
            tmp_path,
            postgres_url,
            seats,
            escalation=POLICY,
            telegram={"read_timeout": "2s", "connect_timeout": "2s"},
        )
        assert deployment.bot.process is not None
        pid = deployment.bot.process.pid
        stop = asyncio.Event()
        officers = desks(deployment, seats)
        for desk in officers:
            desk.pause = (2.5, 4.0)  # a repeat falls due before each acknowledgement
        serving = [asyncio.create_task(desk.serve(stop)) for desk in officers]
        try:
            chats = [deployment.chats[user] for user in pros]
            await asyncio.gather(*(to_call_911(chat) for chat in chats))
            await asyncio.sleep(chaos_rng.uniform(0, 1))

            asking = chats[0]
            restarting = asyncio.create_task(restart_postgres())
            assert await down(), "PostgreSQL never went down"
            asking.server.send_text(asking.user, "/status")
            asked_at = server.last_update_at[asking.id]
            outage = await restarting
            back = time.monotonic()
            print(f"PostgreSQL was down or restarting for {outage:.1f}s")

            # Reminders come again, from the same process.
            for chat in chats:
                chat.timeout = 15.0
                try:
                    await chat.expect(says("Reminder"), since=back + 1.0)
                except Stuck as error:
                    raise WakeUpLost(f"{WAKE_UP_LOST}: {error}") from error
            assert deployment.bot.process.pid == pid
            assert deployment.bot.process.poll() is None

            walks = await asyncio.gather(
                *(walk_incident(chat, random.Random(chat.id), patience=8.0) for chat in chats)
            )
            await asyncio.sleep(4.5)  # the officers' last acknowledgements
        finally:
            stop.set()
            await asyncio.gather(*serving)
            await deployment.stop()
        calls = server.calls

    assert [w.error for w in walks if not w.finished] == []
    assert [(w.user, w.stalls) for w in walks if w.resyncs] == []  # nothing they did was lost
    assert await running_without_wake_up(postgres_url) == []
    ledger = await read_ledger(postgres_url)
    assert timeline_problems(ledger) == []
    deliveries = audit_deliveries(ledger, calls)
    assert deliveries.missing == []
    assert deliveries.duplicated == []
    assert deliveries.failed == []
    reminders = audit_reminders(ledger, calls, timedelta(seconds=1))
    assert reminders.gaps == []
    assert reminders.duplicated == []
    # Last, the question asked while the database was down.
    status = [
        m
        for m in asking.seen
        if asking.server.stamp(m) >= asked_at
        and "Incident SX-" in str(m.get("text", ""))
        and "Status:" in str(m.get("text", ""))
    ]
    if not status:
        raise AnswerLost(ANSWER_LOST)


@pytest.fixture
async def served(config: Config, database_url: str) -> AsyncIterator[tuple[Chat, Runtime]]:
    """The bot in this process (reminders every second) and a professional at the 911 step."""
    config = with_sections(
        config,
        escalation={"call_911_reminder_every": "1s", "stalled_after": "1h"},
        telegram={"read_timeout": "1s", "connect_timeout": "1s"},
    )
    async with (
        StampedBotApiServer(token=TOKEN, bot_username="sexto_chaos_bot") as server,
        serving(server, config, database_url, TOKEN) as runtime,
    ):
        seat = Seat(4242, Role.PROFESSIONAL, "nord", "Julie")
        chats = await enroll(server, [seat], await create_codes(database_url, [seat]))
        await to_call_911(chats[seat.user_id])
        yield chats[seat.user_id], runtime


async def test_a_wake_up_whose_work_fails_is_tried_again(
    served: tuple[Chat, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    chat, runtime = served
    escalator = runtime.escalator
    work = escalator._record_reminder
    failed: list[int] = []

    async def unreachable_once(*args: Any) -> Any:
        # Giving the reminder: the professional's step and its pending message.
        due = args[3]
        if not failed:
            failed.append(due.escalation_id)
            raise OperationalError("SELECT", {}, ConnectionRefusedError("the database restarts"))
        return await work(*args)

    monkeypatch.setattr(escalator, "_record_reminder", unreachable_once)
    try:
        await chat.expect(says("Reminder 1"), since=chat.samples[-1].at, within=8.0)
    except Stuck as error:
        raise WakeUpLost(f"{WAKE_UP_LOST}: {error}") from error
    assert failed
