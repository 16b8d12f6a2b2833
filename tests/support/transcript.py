"""Drive the guide as a member would: press buttons by their label, type text, read replies."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.guide import Guide, Outcome
from dialogues.effects import Button
from dialogues.events import ButtonPressed, Event, UserSaid


@dataclass
class Transcript:
    """One member's conversation with the guide."""

    guide: Guide
    member_id: int
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def last(self) -> Outcome:
        """The latest answer."""
        return self.outcomes[-1]

    def text(self) -> str:
        """All the text of the latest answer."""
        return "\n".join(say.text for say in self.last.replies)

    def buttons(self) -> list[Button]:
        """The buttons on offer in the latest answer."""
        return [b for say in self.last.replies for row in say.buttons for b in row]

    async def start(self) -> Outcome:
        """/incident."""
        self.outcomes.append(await self.guide.start_incident(self.member_id))
        await self.guide.escalator.settle()  # its wake-ups, as the running program would
        return self.last

    async def send(self, event: Event) -> Outcome:
        """Any event."""
        self.outcomes.append(await self.guide.handle(self.member_id, event))
        await self.guide.escalator.settle()
        return self.last

    async def press(self, label: str) -> Outcome:
        """Press the button with this label among those of the latest answer."""
        offered = self.buttons()
        matches = [b for b in offered if b.label == label]
        if not matches:
            raise AssertionError(f"no button {label!r}; offered: {[b.label for b in offered]}")
        return await self.send(ButtonPressed(matches[0].data))

    async def say(self, text: str) -> Outcome:
        """Type text."""
        return await self.send(UserSaid(text))


async def walk_to_call_911(chat: Transcript, mode: str = "Real situation") -> None:
    """From /incident to the call-911 step."""
    await chat.start()
    await chat.press(mode)
    await answer_until_call_911(chat)


async def answer_until_call_911(chat: Transcript) -> None:
    """From the immediate-danger question to the call-911 step: no danger, two phones."""
    await chat.press("No immediate danger")
    await chat.press("Understood")
    await chat.press("Done")
    await chat.press("2")
    await chat.press("Grid filled in")
