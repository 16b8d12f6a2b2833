"""Telegram handlers: turn updates into guide events and deliver what the guide answers."""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from telegram import (
    BotCommand,
    BotCommandScopeDefault,
    CallbackQuery,
    Chat,
    ChatMemberUpdated,
    MaybeInaccessibleMessage,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    PrefixHandler,
    filters,
)

from bot.escalation import ACK_PREFIX, Ack, Escalator
from bot.follow_up import FOLLOWERS, FollowUp
from bot.follow_up import PREFIX as FOLLOW_UP_PREFIX
from bot.guide import TYPED_COMMAND, Guide, Outcome, language_for
from bot.messenger import DeliveryError, Messenger, TelegramMessenger
from dashboard.links import issue_login_link
from dialogues.effects import Button
from dialogues.engine import START_BUTTON
from dialogues.events import (
    ButtonPressed,
    CancelRequested,
    Event,
    HelpRequested,
    StatusRequested,
    UserSaid,
    language_request,
)
from storage.models import Member, Role
from storage.repositories import row_id

log = logging.getLogger(__name__)

Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]

MEDIA = (
    filters.PHOTO
    | filters.VIDEO
    | filters.Document.ALL
    | filters.VOICE
    | filters.VIDEO_NOTE
    | filters.Sticker.ALL
    | filters.ANIMATION
    | filters.AUDIO
    | filters.PAID_MEDIA
    | filters.STORY
    | filters.LIVE_PHOTO
)
# A command: marked as one by Telegram (a bot_command entity at the start), or typed where the
# client or the Bot API server did not mark it.
COMMAND_MESSAGE = filters.COMMAND | filters.Regex(TYPED_COMMAND)
COMMANDS = ("incident", "status", "cancel", "incidents", "dashboard", "lang", "help")
CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OPENERS = (Role.PROFESSIONAL, Role.ADMIN)


def media_kind(message: Message) -> str:
    """What kind of file a message carries (recorded instead of any file id)."""
    for kind in (
        "photo",
        "video",
        "document",
        "voice",
        "video_note",
        "sticker",
        "animation",
        "audio",
        "paid_media",
        "story",
    ):
        if getattr(message, kind, None):
            return kind
    return "other"


class TelegramFront:
    """The bot's behaviour on Telegram; every decision about content is the guide's."""

    # How long a guide button may spin before it is answered without waiting for its step.
    spinner_grace = 0.5

    def __init__(
        self,
        guide: Guide,
        escalator: Escalator,
        follow_up: FollowUp,
        dashboard_url: str | None = None,
    ) -> None:
        self.guide = guide
        self.escalator = escalator
        self.follow_up = follow_up
        self.dashboard_url = dashboard_url
        self.default_language = guide.config.default_language
        self.messenger: Messenger | None = None
        # How long an update is tried again while the database is unreachable.
        self.patience = 300.0

    def install(self, app: Application) -> None:  # type: ignore[type-arg]
        """Register the handlers, groups first so nothing else answers there."""
        self.messenger = TelegramMessenger(app.bot)
        self.escalator.messenger = self.messenger
        private = filters.ChatType.PRIVATE
        steady = self._steady
        app.add_handler(
            ChatMemberHandler(steady(self.on_my_membership), ChatMemberHandler.MY_CHAT_MEMBER)
        )
        app.add_handler(
            MessageHandler(~private & filters.UpdateType.MESSAGES, steady(self.on_group))
        )
        app.add_handler(MessageHandler(private & MEDIA, steady(self.on_media)))
        commands = {
            "start": steady(self.on_start),
            "incident": steady(self.on_incident),
            "incidents": steady(self.on_incidents),
            "dashboard": steady(self.on_dashboard),
            "status": steady(self.on_command),
            "help": steady(self.on_command),
            "cancel": steady(self.on_command),
            "lang": steady(self.on_command),
        }
        for name, callback in commands.items():
            app.add_handler(CommandHandler(name, callback, filters=private))
        # A command typed where the client or the Bot API server did not mark it as one (no
        # bot_command entity) is that command all the same, not words for the guide.
        for name, callback in commands.items():
            app.add_handler(
                PrefixHandler("/", name, callback, filters=private & filters.UpdateType.MESSAGE)
            )
        app.add_handler(CallbackQueryHandler(steady(self.on_button)))
        app.add_handler(
            MessageHandler(
                private & filters.UpdateType.MESSAGE & ~COMMAND_MESSAGE, steady(self.on_text)
            )
        )
        app.add_handler(
            MessageHandler(
                private & filters.UpdateType.MESSAGE & COMMAND_MESSAGE, steady(self.on_unknown)
            )
        )

    def _steady(self, handler: Callback) -> Callback:
        """``handler``, handled again after a pause while the database cannot be reached.

        Each handler writes in one transaction (what follows the commit does not raise on a
        database error), so a failed attempt left nothing behind and running it again is safe.
        Pauses double from half a second up to 30 s; after ``self.patience`` seconds the person
        is told their message was not taken into account.
        """

        @functools.wraps(handler)
        async def steady(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            pause = 0.5
            deadline = time.monotonic() + self.patience
            while True:
                try:
                    await handler(update, context)
                    return
                except (SQLAlchemyError, OSError) as error:
                    if time.monotonic() + pause > deadline:
                        log.error("gave up on update %s: %s", update.update_id, error)
                        await self._unavailable(update)
                        return
                    log.warning(
                        "update %s: database unreachable (%s); trying again in %.1f s",
                        update.update_id,
                        type(error).__name__,
                        pause,
                    )
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)

        return steady

    async def _unavailable(self, update: Update) -> None:
        """Tell the person their message could not be recorded (no database needed)."""
        user = update.effective_user
        chat = update.effective_chat
        if user is None or chat is None or chat.type != ChatType.PRIVATE:
            return
        language = language_for(user.language_code, self.default_language)
        try:
            await self._messenger().send(
                chat.id, self.guide.text("service.unavailable", language), protect=False
            )
        except DeliveryError as error:
            log.warning("could not say the service is unavailable: %s", error)

    async def set_commands(self, app: Application) -> None:  # type: ignore[type-arg]
        """Publish the command menu in French and English.

        Best effort: the menu only lists the commands, which work when typed without it, so a
        server that refuses it (a passing error, a Bot API server without the method) must not
        keep the bot from serving. It is published again at the next start.
        """
        try:
            for language in ("fr", "en"):
                commands = [
                    BotCommand(name, self.guide.text(f"command.{name}", language))
                    for name in COMMANDS
                ]
                code = None if language == self.default_language else language
                await app.bot.set_my_commands(
                    commands, scope=BotCommandScopeDefault(), language_code=code
                )
                if code is None:
                    await app.bot.set_my_commands(
                        commands, scope=BotCommandScopeDefault(), language_code=language
                    )
        except TelegramError as error:
            log.warning(
                "the command menu was not published (%s: %s); typed commands work without it",
                type(error).__name__,
                error,
            )

    # ---- access -------------------------------------------------------------------------------

    def _language(self, update: Update) -> str:
        user = update.effective_user
        return language_for(user.language_code if user else None, self.default_language)

    async def _member(self, update: Update, *, answered: bool = False) -> Member | None:
        """The active member behind an update; strangers and inactive members are told why not
        (``answered``: a button press already answered)."""
        user = update.effective_user
        chat = update.effective_chat
        if user is None or chat is None:
            return None
        member = await self.guide.member_for(user.id)
        if member is not None and member.active:
            return member
        key = "not_enrolled" if member is None else "enroll.inactive"
        language = member.language if member else self._language(update)
        if update.callback_query and not answered:
            await _answer(update.callback_query)
        await self._send(chat.id, self.guide.text(key, language), protect=False)
        return None

    # ---- groups ---------------------------------------------------------------------------------

    async def _leave(self, chat: Chat, language: str) -> None:
        try:
            await chat.send_message(self.guide.text("private_only", language))
        except TelegramError as error:
            log.info("could not say goodbye to chat %s: %s", chat.id, error)
        try:
            await chat.leave()
        except TelegramError as error:
            log.warning("could not leave chat %s: %s", chat.id, error)

    async def on_my_membership(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Added to a group or channel: say why not, and leave."""
        change: ChatMemberUpdated | None = update.my_chat_member
        if change is None or change.chat.type == ChatType.PRIVATE:
            return
        joined = change.new_chat_member.status in (
            ChatMemberStatus.MEMBER,
            ChatMemberStatus.ADMINISTRATOR,
            ChatMemberStatus.RESTRICTED,
        )
        if joined:
            await self._leave(change.chat, self._language(update))

    async def on_group(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anything said in a group: say why not, and leave."""
        if update.effective_chat is not None:
            await self._leave(update.effective_chat, self._language(update))

    # ---- private chat -------------------------------------------------------------------------

    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Delete any file at once, unopened, and warn."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        kind = media_kind(message)
        try:
            await message.delete()
        except TelegramError as error:
            log.warning("could not delete a %s: %s", kind, error)
        member = await self.guide.member_for(user.id)
        if member is not None and member.active:
            warning = await self.guide.media_deleted(member.id, kind)
        else:
            warning = self.guide.text("media.deleted", self._language(update))
        await self._send(message.chat_id, warning, protect=False)

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start CODE enrolls; /start alone greets a member or explains enrollment."""
        user = update.effective_user
        message = update.effective_message
        if user is None or message is None:
            return
        args = context.args or []
        member = await self.guide.member_for(user.id)
        language = member.language if member else self._language(update)
        if member is not None:
            key = "welcome.back" if member.active else "enroll.inactive"
            text = self.guide.text(key, language, name=member.display_name)
        elif args:
            # A malformed code is a wrong code too: it counts toward the lockout.
            code = args[0] if CODE.match(args[0]) else ""
            name = user.full_name or user.username or str(user.id)
            _, text = await self.guide.enroll(code, user.id, name, language)
        else:
            text = self.guide.text("not_enrolled", language)
        await self._send(message.chat_id, text, protect=False)

    async def on_incident(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/incident."""
        member = await self._member(update)
        if member is None or update.effective_chat is None:
            return
        if member.role not in OPENERS:
            text = self.guide.text("role.forbidden", member.language)
            await self._send(update.effective_chat.id, text, protect=False)
            return
        await self._deliver(update.effective_chat.id, await self.guide.start_incident(member.id))

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/status, /help, /cancel, /lang [fr|en]."""
        message = update.effective_message
        member = await self._member(update)
        if member is None or message is None or not message.text:
            return
        name = message.text.split()[0].lstrip("/").split("@")[0].lower()
        event: Event
        if name == "help" and member.role not in OPENERS:
            await self._send(
                message.chat_id, self.guide.text("help.officer", member.language), protect=False
            )
            return
        if name == "status":
            event = StatusRequested()
        elif name == "help":
            event = HelpRequested()
        elif name == "cancel":
            event = CancelRequested()
        else:
            event = language_request(" ".join(context.args or ()))
        outcome = await self.guide.handle(member.id, event, member=member)
        await self._deliver(message.chat_id, outcome)

    async def on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An unknown command: show the help."""
        message = update.effective_message
        member = await self._member(update)
        if member is None or message is None:
            return
        await self._deliver(message.chat_id, await self.guide.handle(member.id, HelpRequested()))

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Typed text (and anything else that is not a file)."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        event = UserSaid(message.text or "", message=str(message.message_id))
        # A known member's step checks their account in its own transaction (no lookup first).
        outcome = await self.guide.handle_account(user.id, event)
        if outcome is None:
            member = await self._member(update)
            if member is None:
                return
            outcome = await self.guide.handle(member.id, event, member=member)
        await self._deliver(message.chat_id, outcome)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An inline button."""
        query: CallbackQuery | None = update.callback_query
        if query is None:
            return
        if query.message is not None and query.message.chat.type != ChatType.PRIVATE:
            await _answer(query)
            return
        data = query.data or ""
        if (
            query.message is not None
            and not data.startswith((ACK_PREFIX, FOLLOW_UP_PREFIX))
            and data != START_BUTTON
            and self.guide.knows(query.from_user.id)
        ):
            # A step of a known member: the account is checked in the step's own transaction.
            async with _Spinner(query, self.spinner_grace) as spinner:
                pressed = ButtonPressed(data, press=query.id)
                outcome = await self.guide.handle_account(query.from_user.id, pressed)
                if outcome is not None:
                    await self._finish_step(query.message, outcome, spinner)
                    return
            member = await self._member(update, answered=True)
            if member is None:
                return
        else:
            member = await self._member(update)
        if member is None or query.message is None:
            return
        if data.startswith(ACK_PREFIX):
            await self._acknowledge(query, member, data[len(ACK_PREFIX) :])
            return
        if data.startswith(FOLLOW_UP_PREFIX) and isinstance(query.message, Message):
            await self._follow_up(query, query.message, member, data[len(FOLLOW_UP_PREFIX) :])
            return
        async with _Spinner(query, self.spinner_grace) as spinner:
            if data == START_BUTTON and member.role in OPENERS:
                outcome = await self.guide.start_incident(member.id)
            else:
                pressed = ButtonPressed(data, press=query.id)
                outcome = await self.guide.handle(member.id, pressed, member=member)
            await self._finish_step(query.message, outcome, spinner)

    async def _finish_step(
        self, pressed: MaybeInaccessibleMessage, outcome: Outcome, spinner: _Spinner
    ) -> None:
        """After a guide button: send the next step, then stop the button's spinner and mark
        the choice on the pressed message.

        The next step goes first: it is what the person waits for, and the two others would
        otherwise compete with it for the program's time. The step is saved already; an old
        button pressed before its buttons go is refused by the guide as stale.
        """
        await self._deliver(pressed.chat.id, outcome)
        if outcome.choice is not None and isinstance(pressed, Message):
            await asyncio.gather(spinner.stop(), self._close(pressed, outcome.choice.text))
        else:
            await spinner.stop()

    # ---- delivery -----------------------------------------------------------------------------

    async def on_incidents(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/incidents: the open incidents an officer or coordinator follows."""
        member = await self._member(update)
        chat = update.effective_chat
        if member is None or chat is None:
            return
        if member.role not in FOLLOWERS:
            await self._send(
                chat.id, self.guide.text("followup.forbidden", member.language), protect=False
            )
            return
        cards = await self.follow_up.cards(member)
        if not cards:
            await self._send(
                chat.id, self.guide.text("followup.none", member.language), protect=False
            )
        for card in cards:
            await self._send(chat.id, card.text, card.buttons, protect=True)

    async def on_dashboard(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/dashboard: a single-use sign-in link to the web dashboard (10 minutes)."""
        member = await self._member(update)
        chat = update.effective_chat
        if member is None or chat is None:
            return
        if member.role not in FOLLOWERS or self.dashboard_url is None:
            key = "dashboard.forbidden" if member.role not in FOLLOWERS else "dashboard.disabled"
            await self._send(chat.id, self.guide.text(key, member.language), protect=False)
            return
        async with self.guide.sessions() as session, session.begin():
            link = await issue_login_link(
                session, member.id, self.guide.clock.now(), self.dashboard_url
            )
        text = self.guide.text("dashboard.link", member.language, link=link)
        await self._send(chat.id, text, protect=True)

    async def _follow_up(
        self, query: CallbackQuery, message: Message, member: Member, raw: str
    ) -> None:
        """A button of an /incidents card."""
        incident, _, action = raw.partition(":")
        result = await self.follow_up.act(member, row_id(incident) or 0, action)
        await _answer(query, result.answer)
        if result.card is not None:
            try:
                await self._messenger().edit(
                    message.chat_id, message.message_id, result.card.text, result.card.buttons
                )
            except DeliveryError as error:
                log.info("could not refresh the card: %s", error)
        for professional, notice in result.notices:
            if professional.telegram_user_id is not None:
                await self._send(professional.telegram_user_id, notice, protect=False)

    async def _acknowledge(self, query: CallbackQuery, member: Member, raw: str) -> None:
        """Acknowledge button of an alert: only its addressee may press it."""
        result = await self.escalator.acknowledge(row_id(raw) or 0, member.id)
        if result.result is Ack.DONE:
            await _answer(query)
        else:
            await _answer(query, result.popup or None, show_alert=bool(result.popup))

    async def _close(self, message: Message, choice: str) -> None:
        """Show the choice under the pressed message and remove its buttons."""
        body = message.text_html if message.text else ""
        text = f"{body}\n\n<i>{html.escape(choice, quote=False)}</i>"
        try:
            await self._messenger().edit(message.chat_id, message.message_id, text)
        except DeliveryError as error:
            log.info("could not mark the choice: %s", error)

    async def _deliver(self, chat_id: int, outcome: Outcome) -> None:
        for say in outcome.replies:
            await self._send(chat_id, say.text, say.buttons, protect=say.protect)

    def _messenger(self) -> Messenger:
        if self.messenger is None:
            raise RuntimeError("install() the front on an application first")
        return self.messenger

    async def _send(
        self,
        chat_id: int,
        text: str,
        buttons: tuple[tuple[Button, ...], ...] = (),
        *,
        protect: bool,
    ) -> None:
        try:
            await self._messenger().send(chat_id, text, buttons, protect=protect)
        except DeliveryError as error:
            log.warning("reply to chat %s not delivered: %s", chat_id, error)


class _Spinner:
    """The answer to a guide button's press, which stops the button's spinner: sent once, when
    :meth:`stop` is called or ``grace`` seconds after the press, whichever comes first.

    A quick step answers after its reply has gone out; a slow one (a busy moment, a database
    that does not answer) still stops the spinner within the grace period.
    """

    def __init__(self, query: CallbackQuery, grace: float) -> None:
        self._query = query
        self._grace = grace
        self._timer: asyncio.TimerHandle | None = None
        self._answering: asyncio.Future[None] | None = None

    async def __aenter__(self) -> _Spinner:
        self._timer = asyncio.get_running_loop().call_later(self._grace, self._start)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def _start(self) -> None:
        if self._answering is None:
            self._answering = asyncio.ensure_future(_answer(self._query))

    async def stop(self) -> None:
        """Answer the press now, unless it was answered already; returns once it has been."""
        if self._timer is not None:
            self._timer.cancel()
        self._start()
        assert self._answering is not None  # noqa: S101 - _start() set it
        await self._answering


async def _answer(
    query: CallbackQuery, text: str | None = None, *, show_alert: bool = False
) -> None:
    """Answer a button press, best effort: the spinner stops by itself after a while, and a
    failed answer must not keep the next step (already saved) from being sent."""
    try:
        await query.answer(text, show_alert=show_alert)
    except TelegramError as error:
        log.info("could not answer a button press: %s", error)
