"""Local mode's console chat: the same guide, typed in a terminal, as a demo professional."""

from __future__ import annotations

import asyncio
import html
import re
import string
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot.escalation import ACK_PREFIX, Escalator
from bot.guide import Guide, Outcome, command_event, command_name
from bot.messenger import Rows
from dialogues.effects import Button, Say
from dialogues.events import (
    ButtonPressed,
    Event,
    HelpRequested,
    LanguageRequested,
    UserSaid,
)
from storage.repositories import Members

LOCAL_NAME = "Local trainer"
KEYS = string.ascii_lowercase

ReadLine = Callable[[], Awaitable[str | None]]


def plain(text: str) -> str:
    """Telegram HTML as terminal text."""
    return html.unescape(re.sub(r"</?(b|i|u|s|code|pre)>", "", text))


async def stdin_reader() -> str | None:
    """The next line typed, or None at end of input."""
    line: str = await asyncio.to_thread(sys.stdin.readline)
    if not line:
        return None
    # Bytes that are not UTF-8 (a terminal in another encoding) arrive as lone surrogates under
    # the C locale; they become U+FFFD rather than text nothing can store or print.
    return line.encode("utf-8", "surrogateescape").decode("utf-8", "replace").rstrip("\n")


class ConsoleChat:
    """A terminal conversation with the guide."""

    def __init__(self, guide: Guide, escalator: Escalator, out: TextIO) -> None:
        self.guide = guide
        self.escalator = escalator
        self.out = out
        self.buttons: dict[str, Button] = {}
        self.sent = 0

    def show(self, outcome: Outcome) -> None:
        """Print the guide's answer; buttons get letters to type, lettered on across its
        messages (the step, then the button recording a 911 call: [a] and [b])."""
        if outcome.choice is not None:
            print(f"   {plain(outcome.choice.text)}", file=self.out)
        fresh = True
        for say in outcome.replies:
            self._say(say, keep=not fresh)
            fresh = fresh and not say.buttons
        self.out.flush()

    async def send(
        self, chat_id: int | None, text: str, buttons: Rows = (), *, protect: bool = True
    ) -> int:
        """Messages from reminders and alerts: printed like the guide's own, their buttons
        lettered after those already on offer (which stay as they were: an alert arriving
        while the person reads a step must not take over the step's letters)."""
        self._say(Say(text, buttons), keep=True)
        print("\n> ", end="", file=self.out, flush=True)
        self.sent += 1
        return self.sent

    async def edit(
        self, chat_id: int | None, message_id: int, text: str, buttons: Rows = ()
    ) -> None:
        """An alert was acknowledged: print its new text."""
        print(f"\n{plain(text)}", file=self.out, flush=True)

    def _say(self, say: Say, *, keep: bool = False) -> None:
        """Print a message; its buttons replace those on offer, or with ``keep`` join them."""
        print(f"\n{plain(say.text)}", file=self.out)
        flat = [button for row in say.buttons for button in row]
        if flat:
            kept = self.buttons if keep else {}
            lettered = dict(zip([k for k in KEYS if k not in kept], flat, strict=False))
            self.buttons = kept | lettered
            print(
                "   " + "   ".join(f"[{key}] {b.label}" for key, b in lettered.items()),
                file=self.out,
            )

    def event_for(self, line: str) -> Event | str | None:
        """Turn a typed line into an event ('incident', an ack button's data, '' for a blank
        line, which asks nothing and is not recorded, None to quit)."""
        text = line.strip()
        if not text:
            return ""
        command = command_name(text)
        if command in ("quit", "exit"):
            return None
        if command == "incident":
            return "incident"
        if command is not None:
            return command_event(command, text.partition(" ")[2])
        button = self.buttons.get(text.lower()) if len(text) == 1 else None
        if button is not None:
            if button.data == "start":
                return "incident"
            if button.data.startswith(ACK_PREFIX):
                return button.data
            return ButtonPressed(button.data)
        return UserSaid(text)

    async def run(self, member_id: int, read: ReadLine, language: str | None = None) -> None:
        """Chat until /quit or the end of input.

        ``language``: the one asked for on the command line. The demo professional is shared
        with the dashboard's drill simulator and keeps the language last used; a different one
        asked for here switches to it, as /lang would (an incident under way goes on in it).
        """
        print(
            "SEXTO assistant, local mode. Type /incident to start, a letter to press a button, "
            "/status, /lang, /cancel, /help, /quit.",
            file=self.out,
        )
        if language is not None and language != await self._language_of(member_id):
            self.show(await self.guide.handle(member_id, LanguageRequested(language)))
        self.show(await self.guide.handle(member_id, HelpRequested()))
        while True:
            print("\n> ", end="", file=self.out, flush=True)
            line = await read()
            if line is None:
                break
            event = self.event_for(line)
            if event is None:
                break
            if event == "incident":
                self.show(await self.guide.start_incident(member_id))
            elif isinstance(event, str) and event.startswith(ACK_PREFIX):
                number = event[len(ACK_PREFIX) :]
                result = await self.escalator.acknowledge(int(number), member_id)
                if result.popup:
                    print(f"   {result.popup}", file=self.out)
            elif not isinstance(event, str):
                self.show(await self.guide.handle(member_id, event))

    async def _language_of(self, member_id: int) -> str | None:
        async with self.guide.sessions() as session:
            member = await Members(session).get(member_id, schools=False)
        return member.language if member is not None else None


async def local_member(guide: Guide, school_id: str, language: str) -> int:
    """The id of local mode's demo professional for a school."""
    async with guide.sessions() as session, session.begin():
        member = await Members(session).local_professional(
            LOCAL_NAME, school_id, language, guide.clock.now()
        )
        return member.id
