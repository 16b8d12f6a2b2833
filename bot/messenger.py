"""Sending messages to Telegram, retrying what can be retried."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol, TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)

from dialogues.effects import Button

log = logging.getLogger(__name__)
T = TypeVar("T")

Rows = tuple[tuple[Button, ...], ...]


class DeliveryError(Exception):
    """A message could not be delivered, even after retrying."""


class BotRefused(DeliveryError):
    """The Bot API server refuses the bot itself (401 or 404: a token it does not know, revoked
    or mistyped, or a server in the way that does not know the bot): nothing can be sent until
    that is fixed. Whatever was to be sent is not given up but kept to be tried again."""


def retry_after_seconds(error: RetryAfter) -> float:
    """How long a 429 asks to wait (python-telegram-bot gives an int or, opted in, a timedelta)."""
    wait = error.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


class Messenger(Protocol):
    """Where the program's messages go."""

    async def send(
        self, chat_id: int | None, text: str, buttons: Rows = (), *, protect: bool = True
    ) -> int:
        """Send a message; returns its message id. Raises DeliveryError."""
        ...

    async def edit(
        self, chat_id: int | None, message_id: int, text: str, buttons: Rows = ()
    ) -> None:
        """Replace a message's text and buttons (none: removed). Raises DeliveryError."""
        ...


def keyboard(rows: Rows) -> InlineKeyboardMarkup | None:
    """An inline keyboard for rows of buttons (None when there are none)."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in rows]
    )


class TelegramMessenger:
    """Sends through python-telegram-bot, retrying what Telegram says can be retried.

    429 waits ``retry_after``; time-outs, dropped connections and 5xx answers are retried with
    an exponential backoff; 400 and 403 are final; 401 and 404 raise :class:`BotRefused`. A
    send that timed out may in rare cases have reached Telegram anyway: Telegram offers no
    idempotency key to rule that out.
    """

    def __init__(
        self,
        bot: Bot,
        attempts: int = 5,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.bot = bot
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep

    async def _retry(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return await call()
            except RetryAfter as error:
                problem: Exception = error
                pause = retry_after_seconds(error) + 0.1
            except (Forbidden, BadRequest) as error:
                raise DeliveryError(f"{what}: {error.message}") from error
            except InvalidToken as error:
                raise BotRefused(f"{what}: {error.message}") from error
            except (TimedOut, NetworkError) as error:
                problem = error
                pause = delay
                delay *= 2
            if attempt == self.attempts:
                raise DeliveryError(f"{what}: {problem}") from problem
            log.warning("%s failed (%s), retry %d in %.1fs", what, problem, attempt, pause)
            await self.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(
        self, chat_id: int | None, text: str, buttons: Rows = (), *, protect: bool = True
    ) -> int:
        """Send an HTML message."""
        if chat_id is None:
            raise DeliveryError("this member has no Telegram account")

        async def call() -> Message:
            return await self.bot.send_message(
                chat_id,
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(buttons),
                protect_content=protect,
            )

        message = await self._retry("sendMessage", call)
        return message.message_id

    async def edit(
        self, chat_id: int | None, message_id: int, text: str, buttons: Rows = ()
    ) -> None:
        """Replace a message's text and buttons (none: the buttons are removed)."""
        if chat_id is None:
            raise DeliveryError("this member has no Telegram account")

        async def call() -> object:
            try:
                return await self.bot.edit_message_text(
                    text,
                    chat_id=chat_id,
                    message_id=message_id,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(buttons),
                )
            except BadRequest as error:
                if "not modified" in error.message.lower():
                    return True  # already says so: a double tap, or a retry that had landed
                raise

        await self._retry("editMessageText", call)
