"""Incidents worth purging, made through the guide, and ways to look for what is left of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select, text

from bot.runtime import Runtime
from dialogues.events import CancelRequested
from storage.models import Base, Incident, Member, Role
from tests.conftest import add_member, fire_due, messenger
from tests.support.clock import FrozenClock
from tests.support.transcript import Transcript, answer_until_call_911

# Distinctive sentences typed into the bot: each must be found, then be gone, by name.
TYPED = "The blue giraffe phone is in locker forty-two"
BEFORE_OPENING = "Quick question about the teal umbrella first"
CANCEL_REASON = "Just practice: the purple kangaroo poster was a cartoon"
STILL_OPEN = "Open case about the orange submarine"
EVENT_NUMBER = "EV-2026-777"


@dataclass
class Story:
    """A closed real incident, a cancelled drill, and an incident left open."""

    professional: Member
    drill_professional: Member
    west_professional: Member
    officer: Member
    closed: str  # real, at nord: alerted, acknowledged, reminded, 911 called, closed
    drill: str  # a drill at nord, cancelled with a typed reason
    open: str  # real, at west, still open
    started_at: datetime  # the first message
    closed_at: datetime  # when the later of the first two ended


async def tell_story(runtime: Runtime, clock: FrozenClock) -> Story:
    """Make the three incidents as people would, through the guide and the officer's buttons."""
    started_at = clock.now()
    officer = await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Agent Roy", "en")
    professional = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Julie", "en")
    drill_pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1003, "Sam Dubé", "en")
    west_pro = await add_member(runtime, Role.PROFESSIONAL, ("west",), 1002, "Mark Lee", "en")

    chat = Transcript(runtime.guide, professional.id)
    await chat.start()
    await chat.say(BEFORE_OPENING)  # before any incident exists: chat outside incidents
    await chat.start()
    await chat.press("Real situation")
    await fire_due(runtime)
    [alert] = messenger(runtime).to(2001)
    clock.advance(minutes=2)
    await runtime.escalator.acknowledge(int(alert.buttons[0][0].data.split(":")[1]), officer.id)
    await chat.say(TYPED)
    await answer_until_call_911(chat)
    clock.advance(minutes=6)
    await fire_due(runtime)  # a 911 reminder, whose text is kept with its delivery
    await chat.press("I called 911")
    await chat.say(EVENT_NUMBER)
    await fire_due(runtime)
    clock.advance(minutes=20)
    await chat.press("Kit handed to the patrol officer")
    await chat.press("Noted")
    clock.advance(days=2)
    await runtime.follow_up.act(officer, 1, "malicious")  # the DPCP's decision closes it

    clock.advance(minutes=30)
    drill = Transcript(runtime.guide, drill_pro.id)
    await drill.start()
    await drill.press("Drill")
    await drill.press("No immediate danger")
    await drill.send(CancelRequested())
    await drill.say(CANCEL_REASON)
    closed_at = clock.now()

    clock.advance(minutes=30)
    west = Transcript(runtime.guide, west_pro.id)
    await west.start()
    await west.press("Real situation")
    await west.say(STILL_OPEN)
    await west.press("No immediate danger")
    await fire_due(runtime)

    async with runtime.sessions() as session:
        codes = {
            i.code: i
            for i in (await session.scalars(select(Incident).order_by(Incident.id))).all()
        }
    closed, cancelled, still_open = list(codes)
    assert codes[closed].status.value == "closed"
    assert codes[cancelled].status.value == "cancelled"
    assert codes[cancelled].drill
    assert codes[still_open].status.value == "open"
    return Story(
        professional,
        drill_pro,
        west_pro,
        officer,
        closed,
        cancelled,
        still_open,
        started_at,
        closed_at,
    )


async def stored_text(runtime: Runtime, skip: tuple[str, ...] = ()) -> str:
    """Everything the database holds, as the program reads it (decrypted) and as stored (raw).

    ``skip`` names tables to leave out.
    """
    parts: list[str] = []
    async with runtime.sessions() as session:
        for mapper in Base.registry.mappers:
            model: Any = mapper.class_
            if mapper.local_table.name in skip:
                continue
            for row in (await session.scalars(select(model))).all():
                parts.append(repr({c.key: getattr(row, c.key) for c in mapper.column_attrs}))
    async with runtime.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        for table in (t for t in tables if t not in skip):
            rows = (await connection.execute(text(f'SELECT * FROM "{table}"'))).all()  # noqa: S608
            for row in rows:
                parts.extend(
                    v.decode("utf-8", "replace") if isinstance(v, bytes | memoryview) else repr(v)
                    for v in (bytes(x) if isinstance(x, memoryview) else x for x in row)
                )
    return "\n".join(parts)
