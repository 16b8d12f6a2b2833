"""The drill simulator of local mode: the guide in a web chat, and what it would send to officers.

The trainer plays the professional through the same guide, engine and content as Telegram
(like the console chat). Messages the escalator would send go to a :class:`DrillMessenger`,
which keeps them; wake-ups are kept by :class:`ClockWakeups` and come due by the runtime's
clock, which a :class:`~dashboard.clock.ShiftedClock` lets the trainer move forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.clock import Clock
from bot.console import local_member
from bot.escalation import ACK_PREFIX, Escalator, NoWakeup
from bot.guide import Guide, Outcome, command_event, command_name
from bot.messenger import Rows
from bot.runtime import Runtime
from bot.settings import Config
from dashboard.clock import ShiftedClock
from dialogues.effects import Button
from dialogues.engine import START_BUTTON
from dialogues.events import (
    ButtonPressed,
    Event,
    UserSaid,
)
from dialogues.protocol import Protocol
from storage.models import Delivery, Member, Role
from storage.repositories import Members, Officers, row_id

log = logging.getLogger(__name__)

REAL_MODE = re.compile(r"^\d+:mode:real$")
DRILL_MODE = re.compile(r"^\d+:mode:drill$")
COMMANDS = ("status", "help", "lang", "cancel")  # the simulator's command buttons
MAX_FIRES = 200


@dataclass
class Post:
    """A message the program would have sent to Telegram."""

    message_id: int
    chat_id: int | None
    text: str
    buttons: Rows
    at: datetime
    member_id: int | None = None
    attributed: bool = False
    edited: bool = False


class DrillMessenger:
    """A Messenger that keeps every message instead of sending it (local mode has no Telegram)."""

    def __init__(self, clock: Clock, first_id: int = 1) -> None:
        self.clock = clock
        self.posts: dict[int, Post] = {}
        self.next_id = first_id

    async def send(
        self, chat_id: int | None, text: str, buttons: Rows = (), *, protect: bool = True
    ) -> int:
        """Keep the message; returns its id."""
        message_id = self.next_id
        self.next_id += 1
        self.posts[message_id] = Post(message_id, chat_id, text, buttons, self.clock.now())
        return message_id

    async def edit(
        self, chat_id: int | None, message_id: int, text: str, buttons: Rows = ()
    ) -> None:
        """Replace a kept message's text and buttons."""
        post = self.posts.get(message_id)
        if post is not None:
            post.text = text
            post.buttons = buttons
            post.edited = True


class ClockWakeups(NoWakeup):
    """Wake-ups kept in memory, due by the runtime's clock (which drills move forward)."""

    def due(self, now: datetime) -> list[int]:
        """Chains due by now, earliest first."""
        return [e for e, at in sorted(self.jobs.items(), key=lambda j: j[1]) if at <= now]


@dataclass
class ChatLine:
    """One message of the web chat, the trainer's or the bot's (a kept message, if any)."""

    at: datetime
    mine: bool
    said: str
    offered: Rows = ()
    number: int = 0
    post: Post | None = None

    @property
    def text(self) -> str:
        """The text as it is now (an alert is edited once acknowledged)."""
        return self.post.text if self.post is not None else self.said

    @property
    def buttons(self) -> Rows:
        """The buttons still on offer."""
        return self.post.buttons if self.post is not None else self.offered

    def close(self) -> None:
        """A button was pressed: the message keeps its text and loses its buttons."""
        if self.post is not None:
            self.post.buttons = ()
        self.offered = ()


@dataclass
class Recipient:
    """What one member would have received (the officers' panel)."""

    member_id: int
    name: str
    role: str
    posts: list[Post] = field(default_factory=list)


class Simulator:
    """One web chat with the guide as local mode's demo professional, starting drills only."""

    def __init__(
        self,
        guide: Guide,
        escalator: Escalator,
        config: Config,
        protocol: Protocol,
    ) -> None:
        self.guide = guide
        self.escalator = escalator
        self.config = config
        self.protocol = protocol
        self.sessions = guide.sessions
        self.clock = guide.clock
        # Message ids that cannot be mistaken for those of an earlier run in the same database.
        self.messenger = DrillMessenger(self.clock, int(self.clock.now().timestamp() * 1000))
        self.wakeups = ClockWakeups()
        self.lock = asyncio.Lock()
        self.lines: list[ChatLine] = []
        self.notice: str | None = None
        self.member_id: int | None = None
        self.school_id = config.local.school

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> Simulator:
        """A simulator on a runtime's guide and escalator."""
        return cls(runtime.guide, runtime.escalator, runtime.settings.config, runtime.protocol)

    def attach(self) -> None:
        """Route the escalator's messages and wake-ups through the simulator."""
        self.escalator.messenger = self.messenger
        self.escalator.wakeup = self.wakeups

    @property
    def can_forward(self) -> bool:
        """Whether the clock can be moved forward."""
        return isinstance(self.clock, ShiftedClock)

    @property
    def ahead(self) -> timedelta:
        """How far the simulated time is ahead of the real one."""
        return self.clock.offset if isinstance(self.clock, ShiftedClock) else timedelta(0)

    async def member(self, language: str) -> int:
        """The demo professional (created once, like the console chat's)."""
        if self.member_id is None:
            self.member_id = await local_member(self.guide, self.school_id, language)
        return self.member_id

    # ---- what the trainer does ------------------------------------------------------------------

    async def start(self, language: str) -> None:
        """/incident, choosing drill at once when asked."""
        async with self.lock:
            member_id = await self.member(language)
            self._mine("/incident")
            await self._show(await self.guide.start_incident(member_id))
            await self._settle()

    async def press(self, data: str, language: str, line: int | None = None) -> None:
        """A button of the chat."""
        async with self.lock:
            member_id = await self.member(language)
            label = self._label(data)
            self._drop_buttons(line, data)
            if data == START_BUTTON:
                self._mine("/incident")
                await self._show(await self.guide.start_incident(member_id))
            elif data.startswith(ACK_PREFIX):
                await self._acknowledge(data, member_id)
            elif REAL_MODE.match(data):
                self.notice = "drill.real_refused"
            else:
                self._mine(label)
                await self._show(await self.guide.handle(member_id, ButtonPressed(data)))
            await self._settle()

    async def say(self, text: str, language: str) -> None:
        """Typed text, understood by the NLU like in Telegram; a command typed ("/help",
        "/lang en") is that command, as in Telegram."""
        text = text.strip()[:2000]
        if not text:
            return
        event: Event = UserSaid(text)
        name = command_name(text)
        if name == "incident":
            await self.start(language)
            return
        if name is not None:
            event = command_event(name, text.partition(" ")[2])
        await self._typed(text, event, language)

    async def command(self, name: str, language: str) -> None:
        """/status, /help, /lang or /cancel."""
        if name in COMMANDS:
            await self._typed(f"/{name}", command_event(name, ""), language)

    async def _typed(self, text: str, event: Event, language: str) -> None:
        async with self.lock:
            member_id = await self.member(language)
            self._mine(text)
            await self._show(await self.guide.handle(member_id, event))
            await self._settle()

    async def acknowledge(self, data: str, member_id: int) -> None:
        """An Acknowledge button of the officers' panel, pressed as its recipient."""
        async with self.lock:
            await self._acknowledge(data, member_id)
            await self._settle()

    async def forward(self, minutes: int) -> None:
        """Move the simulated time forward and send what comes due meanwhile."""
        if not isinstance(self.clock, ShiftedClock) or not 0 < minutes <= 24 * 60:
            return
        async with self.lock:
            self.clock.advance(timedelta(minutes=minutes))
            await self._settle()

    async def tick(self) -> None:
        """Send what is due now (real time passes too)."""
        async with self.lock:
            await self._settle()

    async def recover(self) -> None:
        """At start-up: wake-ups from the database, interrupted messages sent."""
        async with self.lock:
            await self.escalator.recover()
            await self._settle()

    async def run(self, stop: asyncio.Event, every: float = 1.0) -> None:
        """Keep sending what comes due until ``stop`` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                break
            try:
                await self.tick()
            except Exception:  # a failed wake-up must not stop the simulator
                log.exception("drill wake-up failed")

    # ---- what the trainer sees ------------------------------------------------------------------

    async def recipients(self) -> list[Recipient]:
        """Everyone but the demo professional who would have received something."""
        others = [p for p in self.messenger.posts.values() if p.member_id != self.member_id]
        ids = {p.member_id for p in others if p.member_id is not None}
        async with self.sessions() as session:
            members = {
                m.id: m
                for m in (
                    await session.scalars(select(Member).where(Member.id.in_(sorted(ids))))
                ).all()
            }
        people: dict[int, Recipient] = {}
        for post in others:
            if post.member_id is None:
                continue
            member = members.get(post.member_id)
            person = people.setdefault(
                post.member_id,
                Recipient(
                    post.member_id,
                    member.display_name if member else f"#{post.member_id}",
                    member.role.value if member else "",
                ),
            )
            person.posts.append(post)
        return list(people.values())

    async def would_alert(self) -> list[str]:
        """Who a real incident at the demo school would alert: officer, backup, coordinators."""
        async with self.sessions() as session:
            members = Members(session)
            names: list[str] = []
            assignment = await Officers(session).for_school(self.school_id)
            if assignment is not None:
                for member_id in (assignment.officer_id, assignment.backup_officer_id):
                    member = await members.get(member_id) if member_id else None
                    if member is not None and member.active:
                        names.append(member.display_name)
            names += [m.display_name for m in await members.with_role(Role.COORDINATOR)]
            return names

    # ---- inside ---------------------------------------------------------------------------------

    def _mine(self, text: str) -> None:
        self.lines.append(ChatLine(self.clock.now(), True, text, number=len(self.lines)))

    def _bot(self, text: str, buttons: Rows = ()) -> None:
        self.lines.append(ChatLine(self.clock.now(), False, text, buttons, len(self.lines)))

    def _drop_buttons(self, line: int | None, data: str) -> None:
        if line is not None and 0 <= line < len(self.lines):
            target = self.lines[line]
            if any(b.data == data for row in target.buttons for b in row):
                target.close()

    def _label(self, data: str) -> str:
        for line in reversed(self.lines):
            for row in line.buttons:
                for button in row:
                    if button.data == data:
                        return button.label
        return data

    async def _show(self, outcome: Outcome) -> None:
        for say in outcome.replies:
            self._bot(say.text, say.buttons)
        drill = self._drill_button(outcome)
        if drill is not None and self.member_id is not None:
            # The simulator only makes drills: answer the real-or-drill question for the trainer.
            self._drop_buttons(len(self.lines) - 1, drill.data)
            for line in self.lines:
                if any(b.data == drill.data for row in line.buttons for b in row):
                    line.close()
            self._mine(drill.label)
            await self._show(await self.guide.handle(self.member_id, ButtonPressed(drill.data)))

    @staticmethod
    def _drill_button(outcome: Outcome) -> Button | None:
        for say in outcome.replies:
            for row in say.buttons:
                for button in row:
                    if DRILL_MODE.match(button.data):
                        return button
        return None

    async def _acknowledge(self, data: str, member_id: int) -> None:
        number = data[len(ACK_PREFIX) :]
        escalation_id = row_id(number)
        if escalation_id is None:
            return
        result = await self.escalator.acknowledge(escalation_id, member_id)
        if result.popup:
            self.notice = result.popup

    async def _settle(self) -> None:
        """Fire every wake-up that is due, then sort the kept messages by recipient."""
        for _ in range(MAX_FIRES):
            await self.escalator.settle()
            due = self.wakeups.due(self.clock.now())
            if not due:
                break
            for escalation_id in due:
                self.wakeups.jobs.pop(escalation_id, None)
                await self.escalator.fire(escalation_id)
        await self._attribute()

    async def _attribute(self) -> None:
        fresh = [p for p in self.messenger.posts.values() if not p.attributed]
        if not fresh:
            return
        async with self.sessions() as session:
            rows = await session.execute(
                select(Delivery.message_id, Delivery.member_id).where(
                    Delivery.message_id.in_([p.message_id for p in fresh])
                )
            )
            owners = {message_id: member_id for message_id, member_id in rows}
        for post in sorted(fresh, key=lambda p: p.message_id):
            post.attributed = True
            # Only the professional is told things outside a delivery (an officer is aware).
            post.member_id = owners.get(post.message_id, self.member_id)
            if post.member_id == self.member_id:
                self.lines.append(ChatLine(post.at, False, "", (), len(self.lines), post))
