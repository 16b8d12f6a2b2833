"""Updates of different people side by side, each person's in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from telegram import Chat, Message, Update, User

from bot.updates import PerPersonUpdateProcessor


def _update(update_id: int, user_id: int) -> Update:
    user = User(user_id, f"User {user_id}", is_bot=False)
    chat = Chat(user_id, Chat.PRIVATE)
    sent = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    message = Message(update_id, sent, chat, from_user=user, text=f"message {update_id}")
    return Update(update_id, message=message)


async def test_one_person_in_order_and_people_side_by_side() -> None:
    processor = PerPersonUpdateProcessor(8)
    log: list[str] = []

    async def handle(update: Update, pause: float) -> None:
        assert update.effective_user is not None
        who = update.effective_user.id
        log.append(f"start {who}:{update.update_id}")
        await asyncio.sleep(pause)
        log.append(f"end {who}:{update.update_id}")

    first, second, other = _update(1, 10), _update(2, 10), _update(3, 20)
    async with processor:
        await asyncio.gather(
            processor.process_update(first, handle(first, 0.05)),
            processor.process_update(second, handle(second, 0)),
            processor.process_update(other, handle(other, 0)),
        )

    # Person 10's second message waits for the first; person 20 is not kept waiting by them.
    assert log.index("end 10:1") < log.index("start 10:2")
    assert log.index("end 20:3") < log.index("end 10:1")
