"""Many enrolled members at once, for load and chaos runs against the real ``sexto run``.

Enrollment codes are created straight in the database (one ``sexto enroll`` process per member
would take minutes for hundreds), then redeemed through Telegram with ``/start CODE`` like
people do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.database import create_engine, session_factory
from storage.models import Role
from storage.repositories import Enrollment
from tests.support.loadserver import StampedBotApiServer
from tests.support.professionals import Chat, says

SCHOOLS = ("nord", "west")


@dataclass(frozen=True)
class Seat:
    """A member to enroll: a Telegram user id, a role, a school (None for coordinators)."""

    user_id: int
    role: Role
    school: str | None
    name: str


def crew(professionals: int, first_id: int = 700_000) -> list[Seat]:
    """An officer per test school, a coordinator, and professionals spread over the schools."""
    seats = [
        Seat(first_id + 1, Role.OFFICER, "nord", "Officer Roy"),
        Seat(first_id + 2, Role.OFFICER, "west", "Officer Lee"),
        Seat(first_id + 3, Role.COORDINATOR, None, "Coord Gagnon"),
    ]
    seats += [
        Seat(first_id + 100 + n, Role.PROFESSIONAL, SCHOOLS[n % len(SCHOOLS)], f"Pro {n}")
        for n in range(professionals)
    ]
    return seats


async def create_codes(database_url: str, seats: Sequence[Seat]) -> dict[int, str]:
    """A fresh enrollment code for each seat, by user id."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    codes = {}
    try:
        async with session_factory(engine)() as session, session.begin():
            enrollment = Enrollment(session)
            for seat in seats:
                code, _ = await enrollment.create_code(
                    seat.role, seat.school, now, timedelta(hours=1)
                )
                codes[seat.user_id] = code
    finally:
        await engine.dispose()
    return codes


async def enroll(
    server: StampedBotApiServer,
    seats: Sequence[Seat],
    codes: dict[int, str],
    *,
    concurrency: int = 25,
    reply_within: float = 60.0,
) -> dict[int, Chat]:
    """Each seat sends /start CODE and gets its welcome; returns their chats by user id."""
    gate = asyncio.Semaphore(concurrency)
    chats: dict[int, Chat] = {}

    async def one(seat: Seat) -> None:
        user = server.add_user(seat.user_id, seat.name, language_code="en")
        chat = chats[seat.user_id] = Chat(server, user, timeout=reply_within)
        async with gate:
            await chat.send(f"/start {codes[seat.user_id]}", says("Welcome"), "command:/start")

    await asyncio.gather(*(one(seat) for seat in seats))
    return chats
