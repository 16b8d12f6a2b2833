"""A local Bot API server that timestamps traffic and hands each chat its bot messages.

Built on :class:`tests.support.botapi.BotApiServer` for load and chaos runs with many simulated
users: instead of every waiter re-checking every chat after each change, each chat has its own
queue of the bot's new messages, and the moments that latency is measured between are stamped
on the server itself (``time.monotonic()``):

- ``update_at[update_id]``: when an update (a user's message or button press) was enqueued;
- ``last_update_at[user_id]``: the same, for the last update of each user;
- ``message_at[(chat_id, message_id)]``: when a bot message reached the server;
- ``polls_started``: getUpdates calls received so far (a long poll is logged when it ends).

:meth:`StampedBotApiServer.fail_randomly` makes a share of a method's calls fail.

Run it with ``async with`` on the same event loop as the simulated users (no thread).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from tests.support.botapi import BotApiServer, _Fault

JsonDict = dict[str, Any]


class StampedBotApiServer(BotApiServer):
    """BotApiServer with enqueue and delivery timestamps and per-chat message queues."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Same arguments as BotApiServer."""
        super().__init__(*args, **kwargs)
        self.update_at: dict[int, float] = {}
        self.last_update_at: dict[int, float] = {}
        self.message_at: dict[tuple[int, int], float] = {}
        self._inboxes: dict[int, asyncio.Queue[JsonDict]] = {}
        self.polls_started = 0
        self.fault_rates: dict[str, tuple[float, tuple[str, ...]]] = {}
        self.fault_rng = random.Random(0)
        self.fault_hold = 3.0

    def inbox(self, chat_id: int) -> asyncio.Queue[JsonDict]:
        """The queue of the bot's new messages in a chat (each one put there once)."""
        queue = self._inboxes.get(chat_id)
        if queue is None:
            queue = self._inboxes[chat_id] = asyncio.Queue()
        return queue

    def stamp(self, message: JsonDict) -> float:
        """When a bot message reached the server (monotonic seconds)."""
        return self.message_at[(int(message["chat"]["id"]), int(message["message_id"]))]

    async def _api_get_updates(self, args: Any) -> list[JsonDict]:
        """getUpdates, counted when it arrives (a long poll is recorded only when it ends)."""
        self.polls_started += 1
        self._notify()
        return await super()._api_get_updates(args)

    async def polling(self, after: int = 0, within: float = 60.0) -> None:
        """Wait until more than ``after`` getUpdates calls have arrived: the bot is serving."""
        await self.wait_until(lambda: self.polls_started > after, within, "the bot polls")

    def fail_randomly(
        self,
        method: str,
        rate: float,
        kinds: tuple[str, ...] = ("429", "502", "timeout", "drop"),
    ) -> None:
        """Make each call of ``method`` fail with probability ``rate`` (0 stops it).

        Kinds as in ``inject_fault``; a 429 asks to retry after 1 s, a time-out holds the
        request ``fault_hold`` seconds. Faults injected with ``inject_fault`` come first.
        """
        if rate <= 0:
            self.fault_rates.pop(method.lower(), None)
        else:
            self.fault_rates[method.lower()] = (rate, kinds)

    def _take_fault(self, method: str) -> _Fault | None:
        """An injected fault, else a random one at the method's rate."""
        fault = super()._take_fault(method)
        if fault is not None:
            return fault
        rate, kinds = self.fault_rates.get(method.lower(), (0.0, ()))
        if rate and self.fault_rng.random() < rate:
            return _Fault(self.fault_rng.choice(kinds), 0, 1, self.fault_hold)
        return None

    def _enqueue(self, kind: str, payload: JsonDict) -> JsonDict | None:
        """Queue the update and note when."""
        update = super()._enqueue(kind, payload)
        if update is not None:
            now = time.monotonic()
            self.update_at[int(update["update_id"])] = now
            sender = payload.get("from") or {}
            if "id" in sender:
                self.last_update_at[int(sender["id"])] = now
        return update

    def _store_bot_message(self, *args: Any, **kwargs: Any) -> JsonDict:
        """Store a bot message, note when, and hand it to its chat's queue."""
        message = super()._store_bot_message(*args, **kwargs)
        chat_id = int(message["chat"]["id"])
        self.message_at[(chat_id, int(message["message_id"]))] = time.monotonic()
        self.inbox(chat_id).put_nowait(message)
        return message
