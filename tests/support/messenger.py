"""A messenger that records what would have been sent, and can be told to fail."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.messenger import DeliveryError, Rows


@dataclass
class Sent:
    """One message as the recipient would see it."""

    chat_id: int | None
    text: str
    buttons: Rows
    message_id: int

    @property
    def labels(self) -> list[str]:
        """The button labels."""
        return [b.label for row in self.buttons for b in row]


@dataclass
class RecordingMessenger:
    """Keeps every message; ``unreachable`` chats fail like a blocked bot."""

    sent: list[Sent] = field(default_factory=list)
    edits: list[tuple[int | None, int, str]] = field(default_factory=list)
    unreachable: set[int] = field(default_factory=set)

    async def send(
        self, chat_id: int | None, text: str, buttons: Rows = (), *, protect: bool = True
    ) -> int:
        """Record, or fail for an unreachable chat."""
        if chat_id is None or chat_id in self.unreachable:
            raise DeliveryError(f"chat {chat_id} unreachable")
        message = Sent(chat_id, text, buttons, len(self.sent) + 1)
        self.sent.append(message)
        return message.message_id

    async def edit(
        self, chat_id: int | None, message_id: int, text: str, buttons: Rows = ()
    ) -> None:
        """Record the edit."""
        self.edits.append((chat_id, message_id, text))

    def to(self, chat_id: int) -> list[Sent]:
        """Everything sent to one chat."""
        return [m for m in self.sent if m.chat_id == chat_id]
