"""Simulated Telegram users for load and chaos runs: professionals, officers, echo users.

Each :class:`Chat` is one user's side of a private chat with the bot, on a
:class:`~tests.support.loadserver.StampedBotApiServer` running on the same event loop. A user
acts (types, presses a button), then waits for the reply it needs; every action leaves a
:class:`Sample` with two latencies measured on the server's clock, from the moment the update
was enqueued:

- ``first_ms``: to the first message of the bot's answer (reminders and other unsolicited
  messages are not answers);
- ``done_ms``: to the message the user was waiting for (the next step, with its buttons).

:func:`professional_incident` walks one whole incident in English, with buttons and typed text
(a question, the number of phones in a sentence, the 911 event number), waiting for the first
911 reminder before confirming the call. :class:`OfficerDesk` acknowledges every alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.loadserver import StampedBotApiServer

JsonDict = dict[str, Any]
Predicate = Callable[[JsonDict], bool]
Think = Callable[[], Awaitable[None]]

# Messages the bot sends on its own: never the answer to what the user just did.
UNSOLICITED = re.compile(
    r"Reminder \d+|Rappel \d+|is aware of incident|est au courant de l'incident"
    r"|has not moved for a while|n'a pas avancé depuis|\(reminder \d+\)|\(rappel \d+\)"
)
CODE = re.compile(r"SX-\d{4}-\d{4}")
QUESTIONS = (
    "can I look at the photo to check?",
    "should I forward the picture to the principal?",
    "the mother wants the phone back, what do I say",
    "do I have to call the DPJ?",
    "est-ce que je peux regarder la photo?",
)
PHONES_TYPED = ("the 2 phones are in the bags", "2 phones bagged", "2")


class Stuck(AssertionError):
    """A reply the user waited for never came."""


def buttons(message: JsonDict) -> list[str]:
    """The labels of a message's inline buttons."""
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def has_button(label: str) -> Predicate:
    """A message offering a button with this label."""
    return lambda message: label in buttons(message)


def says(fragment: str) -> Predicate:
    """A message whose text contains a fragment."""
    return lambda message: fragment in str(message.get("text", ""))


@dataclass(frozen=True)
class Sample:
    """One action of one user and how long the bot took to answer it."""

    user: int
    action: str
    at: float
    first_ms: float
    done_ms: float


@dataclass
class Chat:
    """One simulated user's private chat with the bot."""

    server: StampedBotApiServer
    user: JsonDict
    timeout: float = 60.0
    samples: list[Sample] = field(default_factory=list)
    seen: list[JsonDict] = field(default_factory=list)

    @property
    def id(self) -> int:
        """The user's (and chat's) id."""
        return int(self.user["id"])

    def _drain(self) -> None:
        """Move what the bot sent so far from the server's queue to ``seen``."""
        inbox = self.server.inbox(self.id)
        while not inbox.empty():
            self.seen.append(inbox.get_nowait())

    async def expect(
        self, predicate: Predicate, since: float = 0.0, within: float | None = None
    ) -> JsonDict:
        """The first bot message at or after ``since`` matching ``predicate`` (waits for it)."""
        limit = self.timeout if within is None else within
        deadline = time.monotonic() + limit
        index = 0
        inbox = self.server.inbox(self.id)
        while True:
            self._drain()
            for message in self.seen[index:]:
                if self.server.stamp(message) >= since and predicate(message):
                    return message
            index = len(self.seen)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = [str(m.get("text", ""))[:60] for m in self.seen[-5:]]
                raise Stuck(f"user {self.id}: no expected reply in {limit:g}s; last: {recent}")
            try:
                message = await asyncio.wait_for(inbox.get(), remaining)
            except TimeoutError:
                continue
            self.seen.append(message)

    def latest(self, predicate: Predicate) -> JsonDict:
        """The most recent bot message matching ``predicate``."""
        self._drain()
        for message in reversed(self.seen):
            if predicate(message):
                return message
        raise Stuck(f"user {self.id}: no message matches")

    async def _answered(self, action: str, expect: Predicate) -> JsonDict:
        """Wait for the answer to the update just enqueued, and record the sample."""
        sent = self.server.last_update_at[self.id]
        reply = await self.expect(expect, since=sent)
        first = next(
            (
                m
                for m in self.seen
                if self.server.stamp(m) >= sent and not UNSOLICITED.search(str(m.get("text", "")))
            ),
            reply,
        )
        self.samples.append(
            Sample(
                user=self.id,
                action=action,
                at=sent,
                first_ms=(self.server.stamp(first) - sent) * 1000,
                done_ms=(self.server.stamp(reply) - sent) * 1000,
            )
        )
        return reply

    async def send(self, text: str, expect: Predicate, action: str = "") -> JsonDict:
        """Type a message; returns the awaited reply."""
        self.server.send_text(self.user, text)
        return await self._answered(action or f"text:{text[:20]}", expect)

    async def press(self, message: JsonDict, label: str, expect: Predicate) -> JsonDict:
        """Press a button of a message; returns the awaited reply."""
        self.server.press_button(self.user, message, text=label)
        return await self._answered(f"button:{label}", expect)


def thinker(rng: random.Random, low: float, high: float) -> Think:
    """A pause of a random length between two actions (a person reading the step)."""

    async def think() -> None:
        await asyncio.sleep(rng.uniform(low, high))

    return think


@dataclass
class IncidentRun:
    """What one simulated professional did during one incident."""

    user: int
    code: str = ""
    confirmed_911_at: float | None = None
    finished: bool = False
    error: str | None = None
    summary: str = ""


async def professional_incident(chat: Chat, rng: random.Random, think: Think) -> IncidentRun:
    """Walk a whole incident, buttons and typed text, confirming 911 after a first reminder."""
    run = IncidentRun(chat.id)
    try:
        step = await chat.send("/incident", has_button("Real situation"), "command:/incident")
        await think()
        step = await chat.press(step, "Real situation", has_button("No immediate danger"))
        opened = chat.latest(says("opened at"))
        found = CODE.search(str(opened.get("text", "")))
        run.code = found.group(0) if found else ""
        if rng.random() < 0.5:
            await think()
            step = await chat.send(
                rng.choice(QUESTIONS), has_button("No immediate danger"), "text:question"
            )
        for label, then in (
            ("No immediate danger", "Understood"),
            ("Understood", "Done"),
            ("Done", "None to seize"),
        ):
            await think()
            step = await chat.press(step, label, has_button(then))
        await think()
        typed = rng.choice(PHONES_TYPED)
        if typed == "2":
            step = await chat.send(typed, has_button("Grid filled in"), "text:count")
        else:
            prompt = await chat.send(typed, has_button("2 phone(s) bagged"), "text:phones")
            await think()
            step = await chat.press(prompt, "2 phone(s) bagged", has_button("Grid filled in"))
        await think()
        step = await chat.press(step, "Grid filled in", has_button("I called 911"))
        reminder = await chat.expect(says("Reminder 1"), since=chat.server.last_update_at[chat.id])
        await think()
        if rng.random() < 0.3:
            prompt = await chat.send("I called 911", has_button("I called 911"), "text:called")
            await think()
            step = await chat.press(prompt, "I called 911", has_button("Skip"))
        else:
            step = await chat.press(reminder, "I called 911", has_button("Skip"))
        run.confirmed_911_at = chat.server.last_update_at[chat.id]
        await think()
        step = await chat.send(
            f"2026-{rng.randrange(100000, 999999)}",
            has_button("Kit handed to the patrol officer"),
            "text:event_number",
        )
        await think()
        step = await chat.press(step, "Kit handed to the patrol officer", has_button("Noted"))
        await think()
        summary = await chat.press(step, "Noted", says("Summary of incident"))
        run.summary = str(summary.get("text", ""))
        run.finished = True
    except Stuck as error:
        run.error = str(error)
    return run


@dataclass(frozen=True)
class AlertSeen:
    """An officer alert as it reached the server."""

    chat: int
    code: str
    event: str
    repeat: bool
    at: float


@dataclass
class OfficerDesk:
    """An officer (or coordinator) who acknowledges every alert after a pause."""

    chat: Chat
    rng: random.Random
    pause: tuple[float, float] = (0.2, 1.0)
    alerts: list[AlertSeen] = field(default_factory=list)
    notices: list[JsonDict] = field(default_factory=list)

    async def serve(self, stop: asyncio.Event) -> None:
        """Acknowledge alerts until ``stop`` is set."""
        inbox = self.chat.server.inbox(self.chat.id)
        pending: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(inbox.get(), 0.2)
            except TimeoutError:
                continue
            self.chat.seen.append(message)
            text = str(message.get("text", ""))
            found = CODE.search(text)
            if "Acknowledge" in buttons(message) and found:
                event = "police_called" if "911 call confirmed" in text else "opened"
                self.alerts.append(
                    AlertSeen(
                        self.chat.id,
                        found.group(0),
                        event,
                        bool(UNSOLICITED.search(text)),
                        self.chat.server.stamp(message),
                    )
                )
                task = asyncio.create_task(self._acknowledge(message))
                pending.add(task)
                task.add_done_callback(pending.discard)
            else:
                self.notices.append(message)
        for task in list(pending):
            task.cancel()

    async def _acknowledge(self, message: JsonDict) -> None:
        """Press Acknowledge after a pause (the button may be gone: someone else was faster)."""
        await asyncio.sleep(self.rng.uniform(*self.pause))
        with contextlib.suppress(LookupError):
            self.chat.server.press_button(self.chat.user, message, text="Acknowledge")


ECHO_PLAN = (
    "text",
    "button",
    "text",
    "button",
    "button",
    "button",
    "text",
    "button",
    "button",
    "button",
    "text",
    "button",
    "button",
)
"""The shape of :func:`professional_incident` (typed messages and presses), for the echo bot."""


async def echo_session(chat: Chat, rng: random.Random, think: Think) -> IncidentRun:
    """The same number and kinds of actions as an incident, against the echo bot."""
    run = IncidentRun(chat.id)
    try:
        last: JsonDict | None = None
        for index, kind in enumerate(ECHO_PLAN):
            if index:
                await think()
            if kind == "button" and last is not None:
                last = await chat.press(last, "Again", has_button("Again"))
            else:
                last = await chat.send(rng.choice(QUESTIONS), has_button("Again"), "text:echo")
        run.finished = True
    except Stuck as error:
        run.error = str(error)
    return run
