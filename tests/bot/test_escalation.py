"""Escalation policy with a frozen clock: reminders, alerts, acknowledgement, nudges, recovery."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError

from bot.escalation import Ack, NoWakeup, Wake
from bot.messenger import BotRefused, Rows
from bot.runtime import Runtime
from bot.settings import Config
from dialogues.events import ButtonPressed, CancelRequested
from storage.models import Delivery, EventKind, Incident, IncidentStatus, Role, TimelineEvent
from storage.repositories import Escalations, Timeline
from tests.conftest import add_member, fire_due, messenger, scheduled, settings_for
from tests.support.clock import FrozenClock
from tests.support.messenger import RecordingMessenger
from tests.support.transcript import Transcript, answer_until_call_911

PRO, OFFICER, BACKUP, COORD = 1001, 2001, 2002, 3001


async def events(runtime: Runtime, kind: str) -> list[TimelineEvent]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(TimelineEvent).where(TimelineEvent.kind == kind).order_by(TimelineEvent.id)
        )
        return list(rows)


async def team(runtime: Runtime, *, backup: bool = True, coordinator: bool = True) -> Transcript:
    """A professional, the school's officer (and backup), a coordinator; returns the pro's chat."""
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), PRO, "Julie", "en")
    await add_member(runtime, Role.OFFICER, ("nord",), OFFICER, "Officer Roy", "en")
    if backup:
        await add_member(runtime, Role.OFFICER, ("nord",), BACKUP, "Officer Tremblay", "fr")
    if coordinator:
        await add_member(runtime, Role.COORDINATOR, (), COORD, "Coord Lee", "en")
    return Transcript(runtime.guide, pro.id)


async def to_call_911(chat: Transcript, drill: bool = False) -> None:
    await chat.start()
    await chat.press("Drill" if drill else "Real situation")
    await answer_until_call_911(chat)


def refuse_once(
    monkeypatch: pytest.MonkeyPatch, sent: RecordingMessenger, containing: str, reason: str
) -> list[str]:
    """The Bot API server refuses the bot itself (BotRefused) for the first message whose text
    contains ``containing``; returns the refused texts."""
    send = sent.send
    refusals: list[str] = []

    async def refused_once(chat_id: int | None, text: str, *args: Any, **kwargs: Any) -> int:
        if not refusals and containing in text:
            refusals.append(text)
            raise BotRefused(reason)
        return await send(chat_id, text, *args, **kwargs)

    monkeypatch.setattr(sent, "send", refused_once)
    return refusals


# ---- 911 reminders ------------------------------------------------------------------------------


async def test_911_reminders_repeat_then_escalate(runtime: Runtime, clock: FrozenClock) -> None:
    chat = await team(runtime)
    await to_call_911(chat)
    await fire_due(runtime)  # the opening alert
    sent = messenger(runtime)
    before = len(sent.to(PRO))
    assert await fire_due(runtime) == 0  # nothing more is due yet

    for number in (1, 2):
        clock.advance(minutes=5)
        await fire_due(runtime)
        reminder = sent.to(PRO)[-1]
        assert f"Reminder {number}" in reminder.text
        assert "since 09:30" in reminder.text
        assert reminder.labels == ["I called 911"]
    assert not [m for m in sent.sent if "911 not confirmed" in m.text]

    clock.advance(minutes=5)
    await fire_due(runtime)
    assert "Reminder 3" in sent.to(PRO)[-1].text
    notices = [m for m in sent.sent if "911 not confirmed" in m.text]
    assert sorted(m.chat_id for m in notices) == [OFFICER, COORD]
    officer_notice = next(m for m in notices if m.chat_id == OFFICER)
    assert "SX-2026-0001" in officer_notice.text
    assert "since 09:30 (3 reminders unanswered)" in officer_notice.text
    assert "École secondaire du Nord" in officer_notice.text
    assert len(sent.to(PRO)) == before + 3
    [escalated] = await events(runtime, EventKind.ESCALATED)
    assert escalated.data["reason"] == "call_911_unconfirmed"

    clock.advance(minutes=5)
    await fire_due(runtime)
    assert "Reminder 4" in sent.to(PRO)[-1].text  # reminders go on until 911 is confirmed
    assert len(notices) == 2  # the escalation is not repeated
    assert len([m for m in sent.sent if "911 not confirmed" in m.text]) == 2


async def test_the_reminder_button_confirms_and_stops_them(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = await team(runtime)
    await to_call_911(chat)
    clock.advance(minutes=5)
    await fire_due(runtime)
    reminder = messenger(runtime).to(PRO)[-1]
    confirm = reminder.buttons[0][0]
    outcome = await chat.send(ButtonPressed(confirm.data))
    assert "911 call recorded" in "\n".join(s.text for s in outcome.replies)
    count = len(messenger(runtime).to(PRO))
    for _ in range(3):
        clock.advance(minutes=5)
        await fire_due(runtime)
    assert not [m for m in messenger(runtime).to(PRO)[count:] if "Reminder" in m.text]
    assert len(await events(runtime, EventKind.REMINDER_SENT)) == 1


async def test_reminders_go_on_once_each_after_a_restart_mid_chain(
    runtime: Runtime, config: Config, database_url: str, clock: FrozenClock
) -> None:
    """The program that started a chain gives its reminders in one transaction each; a
    restarted one first finds out whom the chain reminds. Either way, each comes once."""
    chat = await team(runtime)
    await to_call_911(chat)
    await fire_due(runtime)  # the opening alert
    clock.advance(minutes=5)
    await fire_due(runtime)
    restarted = Runtime.create(settings_for(config, database_url), clock=clock)
    restarted.escalator.messenger = messenger(runtime)
    restarted.escalator.wakeup = runtime.escalator.wakeup  # the stored wake-ups carry over
    try:
        for number in (2, 3):
            clock.advance(minutes=5)
            await fire_due(restarted)
            assert f"Reminder {number}" in messenger(runtime).to(PRO)[-1].text
    finally:
        await restarted.close()
    reminders = [m.text for m in messenger(runtime).to(PRO) if "Reminder" in m.text]
    assert [f"Reminder {n}" in text for n, text in enumerate(reminders, 1)] == [True] * 3
    sent = await events(runtime, EventKind.REMINDER_SENT)
    assert [e.data["seq"] for e in sent if e.data["level"] == "professional"] == [1, 2, 3]
    said = [
        e.data["text"]
        for e in await events(runtime, EventKind.MESSAGE_OUT)
        if "Reminder" in e.data.get("text", "")
    ]
    assert len(said) == 3


async def test_a_reminder_that_could_not_be_recorded_is_given_once_when_tried_again(
    runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reminder's turn in the conversation and its pending message are one transaction:
    when recording the message fails, the turn is not kept either, and the retry gives the
    reminder once, in the chat and in the conversation log."""
    chat = await team(runtime)
    await to_call_911(chat)
    await fire_due(runtime)  # the opening alert
    record = Escalations.add_delivery
    failures: list[int] = []

    async def unreachable_once(self: Escalations, *args: Any, **kwargs: Any) -> Delivery:
        if not failures:
            failures.append(1)
            raise OperationalError("INSERT", {}, ConnectionRefusedError("the database restarts"))
        return await record(self, *args, **kwargs)

    monkeypatch.setattr(Escalations, "add_delivery", unreachable_once)
    clock.advance(minutes=5)
    await fire_due(runtime)
    assert failures
    reminders = [m for m in messenger(runtime).to(PRO) if "Reminder" in m.text]
    assert len(reminders) == 1
    assert "Reminder 1" in reminders[0].text
    said = [
        e.data["text"]
        for e in await events(runtime, EventKind.MESSAGE_OUT)
        if "Reminder" in e.data.get("text", "")
    ]
    assert len(said) == 1
    assert len(await events(runtime, EventKind.REMINDER_SENT)) == 1


async def test_a_reminder_whose_sending_could_not_be_recorded_is_not_sent_again(
    runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database stops answering just after a reminder went out: recording that it was
    sent is tried again until it answers, and the reminder is not sent a second time."""
    chat = await team(runtime)
    await to_call_911(chat)
    await fire_due(runtime)  # the opening alert
    extend = Timeline.extend
    failures: list[str] = []

    async def unreachable_twice(self: Timeline, events: Sequence[dict[str, Any]]) -> None:
        if len(failures) < 2 and any(e["kind"] == EventKind.REMINDER_SENT for e in events):
            failures.append("down")
            raise OperationalError("UPDATE", {}, ConnectionRefusedError("the database restarts"))
        await extend(self, events)

    monkeypatch.setattr(Timeline, "extend", unreachable_twice)
    clock.advance(minutes=5)
    await fire_due(runtime)
    assert failures == ["down", "down"]
    reminders = [m for m in messenger(runtime).to(PRO) if "Reminder" in m.text]
    assert len(reminders) == 1
    [sent] = await events(runtime, EventKind.REMINDER_SENT)
    async with runtime.sessions() as session:
        delivery = await session.get(Delivery, sent.data["delivery"])
        assert delivery is not None
        assert (delivery.status, delivery.message_id) == ("delivered", reminders[0].message_id)


async def test_a_reminder_refused_with_the_whole_bot_is_given_once_when_tried_again(
    runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Bot API server refuses the bot itself for a moment (a 404 or 401): the reminder is
    not given up as undelivered; its wake-up is tried again and gives it once."""
    chat = await team(runtime)
    await to_call_911(chat)
    await fire_due(runtime)  # the opening alert
    sent = messenger(runtime)
    refusals = refuse_once(monkeypatch, sent, "Reminder", "sendMessage: Not Found")
    clock.advance(minutes=5)
    await fire_due(runtime)
    assert refusals
    reminders = [m for m in sent.to(PRO) if "Reminder" in m.text]
    assert [m.text for m in reminders] == refusals
    [given] = await events(runtime, EventKind.REMINDER_SENT)
    async with runtime.sessions() as session:
        delivery = await session.get(Delivery, given.data["delivery"])
        assert delivery is not None
        assert (delivery.status, delivery.message_id) == ("delivered", reminders[0].message_id)
    clock.advance(minutes=5)
    await fire_due(runtime)
    assert "Reminder 2" in sent.to(PRO)[-1].text


async def test_cancelling_stops_every_chain(runtime: Runtime, clock: FrozenClock) -> None:
    chat = await team(runtime)
    await to_call_911(chat)
    await chat.send(CancelRequested())
    await chat.press("Opened by mistake")
    clock.advance(hours=2)
    assert await fire_due(runtime) <= 1  # at most the opening alert, which finds it cancelled
    assert not [m for m in messenger(runtime).sent if "Reminder" in m.text]
    assert not [m for m in messenger(runtime).sent if "SEXTO: incident" in m.text]


# ---- officer alerts -----------------------------------------------------------------------------


async def test_the_officer_acknowledges(runtime: Runtime, clock: FrozenClock) -> None:
    chat = await team(runtime)
    await chat.start()
    await chat.press("Real situation")
    assert "I am alerting the school's community relations officer (Officer Roy)" in chat.text()
    await fire_due(runtime)
    sent = messenger(runtime)
    [alert] = sent.to(OFFICER)
    assert "SX-2026-0001" in alert.text
    assert "Incident opened at 09:30" in alert.text
    assert "Status: open" in alert.text
    assert alert.labels == ["Acknowledge"]
    escalation_id = int(alert.buttons[0][0].data.split(":")[1])

    clock.advance(minutes=3)
    result = await runtime.escalator.acknowledge(escalation_id, await member_id(runtime, OFFICER))
    assert result.result is Ack.DONE
    [(chat_id, message_id, edited)] = sent.edits
    assert (chat_id, message_id) == (OFFICER, alert.message_id)
    assert edited.endswith("✅ Acknowledged by Officer Roy at 09:33")
    aware = sent.to(PRO)[-1]
    assert (
        "Officer Roy (community relations officer) is aware of incident SX-2026-0001" in aware.text
    )

    clock.advance(hours=1)
    await fire_due(runtime)
    assert len(sent.to(OFFICER)) == 1  # no repeat after the acknowledgement
    again = await runtime.escalator.acknowledge(escalation_id, await member_id(runtime, OFFICER))
    assert again.result is Ack.ALREADY
    assert "Already acknowledged by Officer Roy" in again.popup
    [ack] = await events(runtime, EventKind.ALERT_ACKNOWLEDGED)
    assert ack.at == clock.now() - timedelta(hours=1)


async def member_id(runtime: Runtime, telegram_id: int) -> int:
    member = await runtime.guide.member_for(telegram_id)
    assert member is not None
    return member.id


async def officer_alerted(runtime: Runtime) -> tuple[Transcript, int]:
    """A real incident opened and its officer alerted: the professional's chat, the alert's
    chain."""
    chat = await team(runtime)
    await chat.start()
    await chat.press("Real situation")
    await fire_due(runtime)
    [alert] = messenger(runtime).to(OFFICER)
    return chat, int(alert.buttons[0][0].data.split(":")[1])


async def test_only_the_addressed_officer_may_acknowledge(runtime: Runtime) -> None:
    _, escalation_id = await officer_alerted(runtime)
    for intruder in (PRO, BACKUP, COORD):
        refused = await runtime.escalator.acknowledge(
            escalation_id, await member_id(runtime, intruder)
        )
        assert refused.result is Ack.NOT_YOURS
    assert refused.popup == "This alert is not addressed to you."
    assert messenger(runtime).edits == []
    assert await events(runtime, EventKind.ALERT_ACKNOWLEDGED) == []


async def test_the_officer_may_acknowledge_before_the_alert_is_recorded_as_delivered(
    runtime: Runtime,
) -> None:
    """The alert reached the officer, but its record as delivered is not written yet (it is
    written after the send, and again later if that write fails): the press is still the
    officer's own, not refused as someone else's."""
    _, escalation_id = await officer_alerted(runtime)
    async with runtime.sessions() as session, session.begin():
        [sent] = await session.scalars(select(Delivery).where(Delivery.chat_id == OFFICER))
        sent.status = "pending"
    done = await runtime.escalator.acknowledge(escalation_id, await member_id(runtime, OFFICER))
    assert done.result is Ack.DONE
    [ack] = await events(runtime, EventKind.ALERT_ACKNOWLEDGED)
    assert ack.member_id == await member_id(runtime, OFFICER)
    assert any("is aware of incident" in m.text for m in messenger(runtime).to(PRO))


async def test_unacknowledged_alerts_repeat_then_go_to_backup_then_coordinators(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = await team(runtime)
    await chat.start()
    await chat.press("Real situation")
    await fire_due(runtime)
    sent = messenger(runtime)
    timeline = []
    for _ in range(5):
        clock.advance(minutes=10)
        await fire_due(runtime)
    timeline = [(m.chat_id, m.text) for m in sent.sent if "SEXTO" in m.text]
    recipients = [chat_id for chat_id, _ in timeline]
    assert recipients == [OFFICER, OFFICER, OFFICER, BACKUP, COORD]
    assert "(reminder 2)" in timeline[2][1]
    assert "Incident ouvert" in timeline[3][1]  # the backup reads French
    sent_events = await events(runtime, EventKind.ALERT_SENT)
    assert [e.data["level"] for e in sent_events] == [
        "officer",
        "officer",
        "officer",
        "backup",
        "coordinator",
    ]
    minutes = [(e.at - sent_events[0].at).total_seconds() / 60 for e in sent_events]
    assert minutes == [0, 10, 20, 30, 40]
    # The backup, once alerted, may acknowledge; the chain then stops for everyone.
    escalation_id = int(sent.to(BACKUP)[0].buttons[0][0].data.split(":")[1])
    result = await runtime.escalator.acknowledge(escalation_id, await member_id(runtime, BACKUP))
    assert result.result is Ack.DONE
    assert len(sent.edits) == 5
    assert all("Tremblay" in text for _, _, text in sent.edits)


async def test_an_undeliverable_officer_is_skipped_at_once(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = await team(runtime)
    messenger(runtime).unreachable.add(OFFICER)  # e.g. the officer blocked the bot
    await chat.start()
    await chat.press("Real situation")
    await fire_due(runtime)  # no time passes: the failures escalate immediately
    assert [m.chat_id for m in messenger(runtime).sent if "SEXTO" in m.text] == [BACKUP]
    failed = await events(runtime, EventKind.ALERT_FAILED)
    assert [e.data["level"] for e in failed] == ["officer", "officer", "officer"]
    assert "unreachable" in failed[0].data["error"]


async def test_no_officer_means_the_coordinators(runtime: Runtime) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("west",), PRO, "Sam", "en")
    await add_member(runtime, Role.COORDINATOR, (), COORD, "Coord Lee", "en")
    chat = Transcript(runtime.guide, pro.id)
    await chat.start()
    await chat.press("Real situation")
    assert "I am alerting the coordinators" in chat.text()
    await fire_due(runtime)
    assert [m.chat_id for m in messenger(runtime).sent] == [COORD]


async def test_nobody_to_alert_is_recorded(runtime: Runtime, clock: FrozenClock) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("west",), PRO, "Sam", "en")
    chat = Transcript(runtime.guide, pro.id)
    await chat.start()
    await chat.press("Real situation")
    assert "let your coordinator know" in chat.text()
    await fire_due(runtime)
    assert messenger(runtime).sent == []
    [exhausted] = await events(runtime, EventKind.ALERT_EXHAUSTED)
    assert exhausted.data["reason"] == "opened"


async def test_drills_alert_only_the_professional(runtime: Runtime, clock: FrozenClock) -> None:
    chat = await team(runtime)
    await to_call_911(chat, drill=True)
    await fire_due(runtime)
    for _ in range(3):
        clock.advance(minutes=5)
        await fire_due(runtime)
    sent = messenger(runtime)
    assert {m.chat_id for m in sent.sent} == {PRO}
    alerts = [m for m in sent.sent if "SEXTO" in m.text]
    assert alerts
    assert all("(DRILL)" in m.text for m in alerts)


async def test_drills_may_alert_officers(runtime: Runtime) -> None:
    config = runtime.settings.config
    policy = config.escalation.model_copy(update={"drills_alert_officers": True})
    runtime.escalator.policy = policy
    chat = await team(runtime)
    await chat.start()
    await chat.press("Drill")
    await fire_due(runtime)
    [alert] = messenger(runtime).to(OFFICER)
    assert "(DRILL)" in alert.text


async def test_which_events_alert_is_configurable(runtime: Runtime) -> None:
    policy = runtime.settings.config.escalation.model_copy(update={"notify_officer_on": ()})
    runtime.escalator.policy = policy
    chat = await team(runtime)
    await to_call_911(chat)
    await chat.press("I called 911")
    await fire_due(runtime)
    assert messenger(runtime).to(OFFICER) == []


# ---- stalled incidents --------------------------------------------------------------------------


async def test_a_stalled_incident_nudges_once(runtime: Runtime, clock: FrozenClock) -> None:
    chat = await team(runtime)
    await chat.start()
    await chat.press("Real situation")
    await chat.press("No immediate danger")
    await fire_due(runtime)
    clock.advance(minutes=14)
    await fire_due(runtime)
    assert not [m for m in messenger(runtime).to(PRO) if "has not moved" in m.text]
    clock.advance(minutes=1)
    await fire_due(runtime)
    nudges = [m for m in messenger(runtime).to(PRO) if "has not moved" in m.text]
    assert len(nudges) == 1
    step = messenger(runtime).to(PRO)[-1]
    assert "Never, at any time" in step.text  # the pending step, with its button
    assert step.labels == ["Understood"]
    clock.advance(minutes=30)
    await fire_due(runtime)
    assert len([m for m in messenger(runtime).to(PRO) if "has not moved" in m.text]) == 1
    await chat.press("Understood")  # progress restarts the timer
    clock.advance(minutes=15)
    await fire_due(runtime)
    assert len([m for m in messenger(runtime).to(PRO) if "has not moved" in m.text]) == 2


async def test_a_step_that_failed_and_was_tried_again_still_starts_the_stalled_timer(
    runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try of the opening step starts the timer, then fails before its commit (the
    database restarts): the timer it started is not taken as running by the retry."""
    chat = await team(runtime)
    await chat.start()
    extend = Timeline.extend
    failures: list[str] = []

    async def unreachable_once(self: Timeline, events: Sequence[dict[str, Any]]) -> None:
        if not failures and any(e["kind"] == EventKind.INCIDENT_OPENED for e in events):
            failures.append("down")
            raise OperationalError("INSERT", {}, ConnectionRefusedError("the database restarts"))
        await extend(self, events)

    monkeypatch.setattr(Timeline, "extend", unreachable_once)
    with pytest.raises(OperationalError):
        await chat.press("Real situation")
    await chat.press("Real situation")  # tried again, as the Telegram handler does
    await chat.press("No immediate danger")
    await fire_due(runtime)
    clock.advance(minutes=15)
    await fire_due(runtime)
    assert len([m for m in messenger(runtime).to(PRO) if "has not moved" in m.text]) == 1


async def test_progress_pushes_the_nudge_back(runtime: Runtime, clock: FrozenClock) -> None:
    chat = await team(runtime)
    await chat.start()
    await chat.press("Real situation")
    await fire_due(runtime)
    clock.advance(minutes=10)
    await chat.press("No immediate danger")  # a step done 10 minutes in
    clock.advance(minutes=5)
    await fire_due(runtime)  # 15 minutes after opening, 5 after the last step
    assert not [m for m in messenger(runtime).to(PRO) if "has not moved" in m.text]
    clock.advance(minutes=9)
    await fire_due(runtime)
    assert not [m for m in messenger(runtime).to(PRO) if "has not moved" in m.text]
    clock.advance(minutes=1)  # 15 minutes after the last step
    await fire_due(runtime)
    assert len([m for m in messenger(runtime).to(PRO) if "has not moved" in m.text]) == 1


async def test_no_nudge_while_911_reminders_run(runtime: Runtime, clock: FrozenClock) -> None:
    chat = await team(runtime)
    await to_call_911(chat)
    for _ in range(6):
        clock.advance(minutes=5)
        await fire_due(runtime)
    assert not [m for m in messenger(runtime).to(PRO) if "has not moved" in m.text]


# ---- recovery -----------------------------------------------------------------------------------


async def test_recovery_resends_interrupted_messages_and_restores_wakeups(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = await team(runtime)
    await to_call_911(chat)
    jobs = scheduled(runtime)
    wanted = dict(jobs)
    jobs.clear()  # as if the process died and its stored jobs were lost
    jobs[999] = clock.now()  # and an obsolete one lingered
    resent, created, removed = await runtime.escalator.recover()
    assert (resent, removed) == (0, 1)
    assert created == len(wanted)
    assert scheduled(runtime) == wanted


async def test_a_pending_message_is_sent_after_a_crash(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = await team(runtime)
    await chat.start()
    await chat.press("Real situation")
    messenger(runtime).unreachable.add(OFFICER)
    await fire_due(runtime)
    async with runtime.sessions() as session, session.begin():
        failed = (
            await session.scalars(select(Delivery).where(Delivery.chat_id == OFFICER))
        ).first()
        assert failed is not None
        failed.status = "pending"  # died between recording and sending
    messenger(runtime).unreachable.clear()
    resent, _, _ = await runtime.escalator.recover()
    assert resent == 1
    assert len(messenger(runtime).to(OFFICER)) == 1


async def test_a_start_the_bot_api_server_refuses_goes_on_and_sends_the_message_later(
    runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start the Bot API server refuses the bot for a moment (a 404 or 401) as a message
    left pending by a crash is resent: start-up goes on, and the chain's wake-up gives it once."""
    chat = await team(runtime)
    await chat.start()
    await chat.press("Real situation")
    await fire_due(runtime)  # the alert to the officer
    async with runtime.sessions() as session, session.begin():
        [alert] = (
            await session.scalars(select(Delivery).where(Delivery.chat_id == OFFICER))
        ).all()
        alert.status = "pending"  # died between recording and sending
    sent = messenger(runtime)
    sent.sent.clear()
    refusals = refuse_once(monkeypatch, sent, "", "sendMessage: Unauthorized")
    assert await runtime.escalator.interrupted() == {alert.escalation_id}
    resent, _, _ = await runtime.escalator.recover()
    assert resent == 0
    assert refusals
    assert not sent.to(OFFICER)

    await fire_due(runtime)
    assert [m.text for m in sent.to(OFFICER)] == refusals
    async with runtime.sessions() as session:
        delivery = await session.get(Delivery, alert.id)
        assert delivery is not None
        assert delivery.status == "delivered"
    clock.advance(minutes=30)
    await fire_due(runtime)
    assert len([m for m in sent.to(OFFICER) if m.text == refusals[0]]) == 1


async def test_a_reminder_left_pending_by_a_crash_goes_out_before_the_next_one(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """At start the scheduler may run a chain's overdue wake-up before the interrupted
    message of that chain is resent: the professional still gets the reminders, and the
    timeline records them, in order."""
    chat = await team(runtime)
    await to_call_911(chat)
    await fire_due(runtime)  # the opening alert
    clock.advance(minutes=5)
    await fire_due(runtime)  # reminder 1, which the crash below interrupts
    async with runtime.sessions() as session, session.begin():
        [first] = (await session.scalars(select(Delivery).where(Delivery.chat_id == PRO))).all()
        first.status = "pending"  # died between recording it and sending it
        await session.execute(
            delete(TimelineEvent).where(TimelineEvent.kind == EventKind.REMINDER_SENT)
        )
    messenger(runtime).sent.clear()
    clock.advance(minutes=5)  # down while reminder 2 came due

    assert await runtime.escalator.interrupted() == {first.escalation_id}
    await fire_due(runtime)  # the overdue wake-up runs first
    resent, _, _ = await runtime.escalator.recover()

    assert resent == 0  # the wake-up sent it
    texts = [m.text for m in messenger(runtime).to(PRO)]
    assert len(texts) == 2
    assert "Reminder 1" in texts[0]
    assert "Reminder 2" in texts[1]
    recorded = await events(runtime, EventKind.REMINDER_SENT)
    professional = [e for e in recorded if e.data["level"] == "professional"]
    assert [e.data["seq"] for e in professional] == [1, 2]


class HeldMessenger(RecordingMessenger):
    """Sends to one chat wait until released, as on a slow network."""

    def __init__(self, held: int) -> None:
        super().__init__()
        self.held = held
        self.waiting = asyncio.Event()
        self.released = asyncio.Event()

    async def send(
        self, chat_id: int | None, text: str, buttons: Rows = (), *, protect: bool = True
    ) -> int:
        if chat_id == self.held:
            self.waiting.set()
            await self.released.wait()
        return await super().send(chat_id, text, buttons, protect=protect)


async def test_a_restart_does_not_resend_what_an_overdue_wake_up_is_sending(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """At start the scheduler already runs overdue wake-ups while interrupted messages are
    looked for: the alert being sent is not one of them."""
    chat = await team(runtime)
    await chat.start()
    await chat.press("Real situation")
    await runtime.escalator.settle()
    held = HeldMessenger(OFFICER)
    runtime.escalator.messenger = held
    (alert,) = [e for e, at in scheduled(runtime).items() if at <= clock.now()]
    firing = asyncio.create_task(runtime.escalator.fire(alert))
    await asyncio.wait_for(held.waiting.wait(), 5)  # recorded as pending, on its way
    recovering = asyncio.create_task(runtime.escalator.recover())
    await asyncio.sleep(0.2)
    held.released.set()
    await firing
    resent, _, _ = await recovering
    assert resent == 0
    assert len(held.to(OFFICER)) == 1


async def test_reminders_for_a_cancelled_incident_stop_themselves(
    runtime: Runtime, clock: FrozenClock
) -> None:
    chat = await team(runtime)
    await to_call_911(chat)
    await chat.send(CancelRequested())
    await chat.say("duplicate of another report")
    clock.advance(hours=1)
    await fire_due(runtime)
    assert not [m for m in messenger(runtime).to(PRO) if "Reminder" in m.text]


# ---- wake-ups ----------------------------------------------------------------------------------


class SlowStore(NoWakeup):
    """A scheduler whose job store writes hang until released; wake-ups due now need none."""

    def __init__(self, clock: FrozenClock) -> None:
        super().__init__()
        self.clock = clock
        self.released = asyncio.Event()
        self.started: list[int] = []

    async def schedule(
        self, escalation_id: int, at: datetime, every: timedelta | None = None
    ) -> None:
        if at <= self.clock.now():
            self.started.append(escalation_id)
            return
        await self.released.wait()
        await super().schedule(escalation_id, at, every)


async def test_an_alert_due_now_does_not_wait_for_earlier_job_store_writes(
    runtime: Runtime, clock: FrozenClock
) -> None:
    store = SlowStore(clock)
    runtime.escalator.wakeup = store
    escalator = runtime.escalator
    escalator.apply_soon([Wake(1, clock.now() + timedelta(minutes=5))])  # another incident's timer
    escalator.apply_soon([Wake(2, clock.now())])  # an alert to send at once
    try:
        for _ in range(5):
            await asyncio.sleep(0)
        assert store.started == [2]
        assert store.jobs == {}  # the timer is still being stored
    finally:
        store.released.set()
    await escalator.settle()
    assert store.jobs == {1: clock.now() + timedelta(minutes=5)}


class RecordingWakeup(NoWakeup):
    """Wake-ups remembered, every request noted: (chain, time, period), time None to cancel."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[int, datetime | None, timedelta | None]] = []

    async def schedule(
        self, escalation_id: int, at: datetime, every: timedelta | None = None
    ) -> None:
        self.asked.append((escalation_id, at, every))
        await super().schedule(escalation_id, at, every)

    async def cancel(self, escalation_id: int) -> None:
        self.asked.append((escalation_id, None, None))
        await super().cancel(escalation_id)


async def test_a_911_chain_asks_for_wake_ups_on_the_beat_of_its_reminders(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """The scheduler can keep one repeating job for a 911 chain (nothing to store at each
    reminder) because the chain says its period, keeps to the beat, and cancels its wake-up
    when it finds itself over."""
    wakeup = RecordingWakeup()
    runtime.escalator.wakeup = wakeup
    every = runtime.escalator.policy.call_911_reminder_every
    started = clock.now()
    chat = await team(runtime)
    await to_call_911(chat)
    await runtime.escalator.settle()
    [(chain, at, period)] = [a for a in wakeup.asked if a[2] is not None]
    assert (at, period) == (started + every, every)

    clock.advance(minutes=5)
    await fire_due(runtime)
    assert wakeup.asked[-1] == (chain, started + 2 * every, every)

    # The incident moves on without the chain being stopped (the dashboard, another program):
    # the chain's next wake-up stops it, and cancels its repeating job.
    async with runtime.sessions() as session, session.begin():
        await session.execute(update(Incident).values(status=IncidentStatus.POLICE_CALLED))
    clock.advance(minutes=5)
    await fire_due(runtime)
    assert wakeup.asked[-1] == (chain, None, None)
    assert chain not in wakeup.jobs

    # A repeating job that comes anyway (stored again by a reminder that crossed the stop)
    # finds the chain over and is cancelled, rather than waking it every period.
    for hinted in (True, False):  # the reminder's short way, then the long way
        if not hinted:
            runtime.escalator._reminded.clear()
        wakeup.asked.clear()
        await runtime.escalator.fire(chain)
        await runtime.escalator.settle()
        assert wakeup.asked == [(chain, None, None)]


async def waiting_for_911(runtime: Runtime) -> dict[int, datetime]:
    """An incident at the 911 step, its wake-ups stored: chain id -> time."""
    chat = await team(runtime)
    await to_call_911(chat)
    await runtime.escalator.settle()
    return scheduled(runtime)


class BusyStore(NoWakeup):
    """A scheduler that, just as it is asked to reconcile, has stored the wake-up of a chain
    started by another update after the resync read the running chains."""

    def __init__(self, late: Wake) -> None:
        super().__init__()
        self.late = late

    async def reconcile(
        self, running: Sequence[tuple[int, datetime]], known: Mapping[int, datetime]
    ) -> tuple[int, int]:
        assert self.late.at is not None
        await self.schedule(self.late.escalation_id, self.late.at)
        return await super().reconcile(running, known)


async def test_a_resync_keeps_the_wake_up_of_a_chain_started_meanwhile(
    runtime: Runtime, clock: FrozenClock
) -> None:
    running = await waiting_for_911(runtime)
    late = Wake(max(running) + 1, clock.now() + timedelta(minutes=1))
    store = BusyStore(late)
    store.jobs = dict(running)
    runtime.escalator.wakeup = store
    assert await runtime.escalator.resync() == (0, 0)
    assert store.jobs == {**running, late.escalation_id: late.at}


class FiringStore(NoWakeup):
    """A scheduler whose job for some chains has just fired: gone from the store, the chain's
    wake-up still at work."""

    def __init__(self, jobs: dict[int, datetime], at_work: set[int]) -> None:
        super().__init__()
        self.jobs = {chain: at for chain, at in jobs.items() if chain not in at_work}
        self.at_work = at_work

    @contextlib.contextmanager
    def watch(self) -> Iterator[set[int]]:
        yield set(self.at_work)


async def test_a_resync_leaves_alone_a_chain_whose_wake_up_is_at_work(
    runtime: Runtime, clock: FrozenClock
) -> None:
    # A busy moment: the reminder's job fired and its wake-up waits for its turn. The chain is
    # not missing a wake-up; restoring one would report a loss and run the chain twice.
    running = await waiting_for_911(runtime)
    firing = max(running)
    store = FiringStore(running, {firing})
    runtime.escalator.wakeup = store
    assert await runtime.escalator.resync() == (0, 0)
    assert firing not in store.jobs
    # Once it is no longer at work, a missing wake-up is one: it is put back.
    store.at_work = set()
    assert await runtime.escalator.resync() == (1, 0)
    assert store.jobs[firing] == running[firing]


async def test_a_resync_leaves_alone_a_wake_up_not_stored_yet(
    runtime: Runtime, clock: FrozenClock
) -> None:
    running = await waiting_for_911(runtime)
    store = SlowStore(clock)
    store.jobs = {chain: at for chain, at in running.items() if chain != max(running)}
    runtime.escalator.wakeup = store
    # The chain's wake-up is being stored (the job store is slow): not lost.
    runtime.escalator.apply_soon([Wake(max(running), running[max(running)])])
    try:
        assert await runtime.escalator.resync() == (0, 0)
    finally:
        store.released.set()
    await runtime.escalator.settle()
    assert store.jobs == running


async def test_chains_stopped_by_a_step_or_an_acknowledgement_count_as_changing_from_the_commit(
    runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between a transaction's commit and its wake-ups being handed over, the stored wake-ups
    no longer match the chains: a resync looking then must leave those chains alone instead
    of cancelling their jobs itself (and reporting wake-ups out of step)."""
    escalator = runtime.escalator
    seen_at_hand_over: list[tuple[set[int], set[int]]] = []
    apply_soon, apply = escalator.apply_soon, escalator.apply

    def busy() -> set[int]:
        with escalator._changing.watch() as seen:  # what a resync would leave alone
            return set(seen)

    def spied_soon(wakes: Sequence[Wake]) -> None:
        seen_at_hand_over.append(({w.escalation_id for w in wakes if w.at is None}, busy()))
        apply_soon(wakes)

    async def spied(wakes: Sequence[Wake]) -> None:
        seen_at_hand_over.append(({w.escalation_id for w in wakes if w.at is None}, busy()))
        await apply(wakes)

    chat, alert_chain = await officer_alerted(runtime)
    await answer_until_call_911(chat)
    await escalator.settle()
    monkeypatch.setattr(escalator, "apply_soon", spied_soon)
    monkeypatch.setattr(escalator, "apply", spied)

    await chat.press("I called 911")  # stops the 911 reminders
    await escalator.acknowledge(alert_chain, await member_id(runtime, OFFICER))
    await escalator.settle()
    stops = [(stopped, seen) for stopped, seen in seen_at_hand_over if stopped]
    assert {chain for stopped, _ in stops for chain in stopped} >= {alert_chain}
    assert len(stops) >= 2
    for stopped, seen in stops:
        assert stopped <= seen, (stopped, seen)
    assert busy() == set()
