"""Interleavings that crashes and load make likely, forced here so that they happen every time.

Under load, and right after a restart (an overdue reminder fires while the presses queued
during the outage are handled), a 911 reminder and the professional's own button can be
handled at the same moment. Each loads the conversation, works, and saves it back.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.runtime import Runtime
from dialogues.events import ButtonPressed
from storage.database import PG_POOL_SIZE
from storage.models import EscalationKind, EventKind, IncidentStatus, Member, Role
from storage.repositories import Conversations, Escalations, Incidents, Timeline
from tests.conftest import add_member, fire_due, messenger, scheduled
from tests.support.clock import FrozenClock
from tests.support.transcript import Transcript, walk_to_call_911

pytestmark = pytest.mark.slow


async def _at_call_911(runtime: Runtime) -> tuple[Transcript, int]:
    """A professional at the call-911 step; returns the chat and the reminder chain's id."""
    await add_member(runtime, Role.OFFICER, ("nord",), 601, "Officer Roy", "en")
    member = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 501, "Julie", "en")
    chat = Transcript(runtime.guide, member.id)
    await chat.start()
    for label in ("Real situation", "No immediate danger", "Understood", "Done", "1"):
        await chat.press(label)
    await chat.press("Grid filled in")
    assert "I called 911" in [b.label for b in chat.buttons()]
    async with runtime.sessions() as session:
        state = await Conversations(session).load(member.id)
        assert state is not None
        chains = await Escalations(session).for_incident(
            int(state["incident_id"]), EscalationKind.CALL_911
        )
    return chat, chains[0].id


async def test_a_reminder_does_not_undo_the_911_button_pressed_meanwhile(
    runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reminder that loads the conversation while a button press is being saved must not
    write back the older state (one event at a time per member)."""
    chat, chain = await _at_call_911(runtime)
    [called] = [b for b in chat.buttons() if b.label == "I called 911"]
    clock.advance(runtime.settings.config.escalation.call_911_reminder_every)

    # The reminder's turn loads the conversation, then waits until the press has run.
    loaded, release = asyncio.Event(), asyncio.Event()
    original = Conversations.load_with_member

    async def load_then_wait(
        self: Conversations, member_id: int
    ) -> tuple[Member | None, dict[str, object] | None]:
        found = await original(self, member_id)
        if not loaded.is_set():
            loaded.set()
            await release.wait()
        return found

    monkeypatch.setattr(Conversations, "load_with_member", load_then_wait)
    reminder = asyncio.create_task(runtime.escalator.fire(chain))
    await asyncio.wait_for(loaded.wait(), 10)
    clock.advance(timedelta(milliseconds=50))
    press = asyncio.create_task(chat.send(ButtonPressed(called.data)))
    await asyncio.wait([press], timeout=1.0)  # done at once, unless it waits for its turn
    release.set()
    await asyncio.wait_for(asyncio.gather(reminder, press), 10)
    monkeypatch.undo()

    async with runtime.sessions() as session:
        state = await Conversations(session).load(chat.member_id)
        incident = await Incidents(session).get(int(state["incident_id"]))  # type: ignore[arg-type, index]
    assert incident is not None
    assert incident.status is IncidentStatus.POLICE_CALLED
    assert state is not None
    assert state["step"] == "event_number"  # not back at call911 with the call forgotten


async def test_a_wake_up_before_the_chain_is_due_sends_nothing(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """A stray wake-up (an old job put back after a restart) sends nothing before the chain
    is due."""
    _, chain = await _at_call_911(runtime)
    sent = messenger(runtime)
    await fire_due(runtime)  # the opening alert to the officer, due at once
    async with runtime.sessions() as session:
        row = await Escalations(session).get(chain)
        assert row is not None
        [alert] = await Escalations(session).for_incident(
            row.incident_id, EscalationKind.OFFICER_ALERT
        )
    before = len(sent.sent)

    await runtime.escalator.fire(chain)  # a period early
    await runtime.escalator.fire(alert.id)  # long before the officer's time to acknowledge

    assert [m.text for m in sent.sent[before:]] == []
    assert scheduled(runtime)[chain] > clock.now()


async def test_more_people_at_once_than_connections_all_get_their_step(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """Professionals pressing "I called 911" while their reminders fall due, more of them at
    once than the database keeps connections: each waits its turn, none is lost or stuck."""
    await add_member(runtime, Role.OFFICER, ("nord",), 601, "Officer Roy", "en")
    chats: list[Transcript] = []
    accounts = [700 + n for n in range(3 * PG_POOL_SIZE + 1)]
    for account in accounts:
        member = await add_member(runtime, Role.PROFESSIONAL, ("nord",), account, "Pro", "en")
        chat = Transcript(runtime.guide, member.id)
        await walk_to_call_911(chat)
        chats.append(chat)
    await fire_due(runtime)  # the opening alerts
    chains = []
    async with runtime.sessions() as session:
        for chat in chats:
            state = await Conversations(session).load(chat.member_id)
            assert state is not None
            [chain] = await Escalations(session).for_incident(
                int(state["incident_id"]), EscalationKind.CALL_911
            )
            chains.append(chain.id)
    clock.advance(runtime.settings.config.escalation.call_911_reminder_every)
    sent = messenger(runtime)
    before = len(sent.sent)

    async def press(chat: Transcript) -> None:
        [called] = [b for b in chat.buttons() if b.label == "I called 911"]
        await chat.send(ButtonPressed(called.data))

    # Half the reminders start before their professional's press, half after.
    work = [
        step
        for n, (chat, chain) in enumerate(zip(chats, chains, strict=True))
        for step in (
            (runtime.escalator.fire(chain), press(chat))
            if n % 2
            else (press(chat), runtime.escalator.fire(chain))
        )
    ]
    await asyncio.wait_for(asyncio.gather(*work), 60)

    # What reached the professionals' chats meanwhile: reminders (each step's answer is
    # returned to its front end, not sent through the messenger).
    reminders = [m.chat_id for m in sent.sent[before:] if m.chat_id in accounts]
    async with runtime.sessions() as session:
        for chat in chats:
            assert chat.last.replies  # the next step, asked
            state = await Conversations(session).load(chat.member_id)
            assert state is not None
            assert state["step"] == "event_number"
            incident = await Incidents(session).get(int(state["incident_id"]))
            assert incident is not None
            assert incident.status is IncidentStatus.POLICE_CALLED
            done = [
                e.step
                for e in await Timeline(session).for_incident(incident.id)
                if e.kind == EventKind.STEP_DONE
            ]
            assert done.count("call911") == 1
    # A reminder given before the press, or none: never two for anyone.
    assert len(reminders) == len(set(reminders)) <= len(chats)
