"""Tests of the fake Bot API server, driven by the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    MessageOriginChannel,
    MessageOriginHiddenUser,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.support.botapi import (
    BotApiServer,
    BotApiWaitTimeout,
    CallRecord,
    ThreadedBotApiServer,
)

App: TypeAlias = Application[Any, Any, Any, Any, Any, Any]
TOKEN = "123456789:AAtest-token_for_fake"
USERNAME = "sexto_test_bot"
KEYBOARD = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Oui", callback_data="yes"),
            InlineKeyboardButton("Non", callback_data="no"),
        ],
        [InlineKeyboardButton("Site", url="https://example.org")],
    ]
)


def build_app(server: BotApiServer, **options: Any) -> App:
    """Build a real PTB Application pointed at the fake server."""
    builder = (
        Application.builder()
        .token(server.token)
        .base_url(f"{server.url}/bot")
        .base_file_url(f"{server.url}/file/bot")
    )
    if "rate_limiter" in options:
        builder = builder.rate_limiter(options["rate_limiter"])
    return builder.build()


@pytest.fixture(autouse=True)
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in to PTB's timedelta periods, as ``filterwarnings = error`` requires.

    Without PTB_TIMEDELTA=1, PTB 22 emits a PTBDeprecationWarning when it builds RetryAfter for a
    429 answer or when a media ``duration`` is read; pytest turns that warning into an error.
    """
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    """A running fake server."""
    async with BotApiServer(token=TOKEN, bot_username=USERNAME) as fake:
        yield fake


@pytest.fixture
async def app(server: BotApiServer) -> AsyncIterator[App]:
    """An initialised PTB Application using the fake server."""
    application = build_app(server)
    async with application:
        yield application


async def post(server: BotApiServer, method: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Call the fake server with aiohttp (kwargs go to ClientSession.post)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.url}/bot{server.token}/{method}", **kwargs) as response,
    ):
        return response.status, await response.json(content_type=None)


# ------------------------------------------------------------------------------------------
# Envelope, routing and parameter decoding
# ------------------------------------------------------------------------------------------


async def test_get_me_through_ptb(app: App, server: BotApiServer) -> None:
    """PTB's initialize() and get_me() see a bot user with the getMe-only fields."""
    me = await app.bot.get_me()
    assert me.is_bot
    assert me.id == 123456789
    assert me.username == USERNAME
    assert me.can_join_groups is True
    assert me.can_read_all_group_messages is False
    assert me.supports_inline_queries is False
    assert me.api_kwargs == {}
    assert [c.method for c in server.calls] == ["getMe", "getMe"]
    assert all(c.status == 200 for c in server.calls)


async def test_routing_errors_and_case_insensitive_methods(server: BotApiServer) -> None:
    """Bad tokens and unknown methods answer like api.telegram.org."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.url}/bot999:WRONG/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with session.get(f"{server.url}/botnot-a-token/getMe") as response:
            assert response.status == 404
            assert (await response.json())["description"] == "Not Found"
        async with session.get(f"{server.url}/bot{server.token}/sendTelepathy") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        async with session.get(f"{server.url}/bot{server.token}/GETME") as response:
            body = await response.json()
            assert body["ok"] is True
            assert body["result"]["is_bot"] is True
    assert [c.status for c in server.calls] == [401, 404, 404, 200]


async def test_bad_token_is_invalid_token_for_ptb(server: BotApiServer) -> None:
    """PTB raises InvalidToken when the token is unknown."""
    bot = Bot("42:NOPE", base_url=f"{server.url}/bot")
    with pytest.raises(InvalidToken):
        await bot.initialize()
    await bot.shutdown()


async def test_form_json_and_multipart_parameters(server: BotApiServer) -> None:
    """Form values are decoded like Telegram; text that looks numeric stays a string."""
    user = server.add_user(42, "Alice", started=True)
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    status, body = await post(
        server,
        "sendMessage",
        data={"chat_id": "42", "text": "123", "reply_markup": json.dumps(markup)},
    )
    assert status == 200
    assert body["result"]["text"] == "123"
    assert body["result"]["reply_markup"] == markup
    params = server.calls[-1].params
    assert params == {"chat_id": 42, "text": "123", "reply_markup": markup}

    status, body = await post(
        server,
        "sendMessage",
        json={"chat_id": 42, "text": "true", "disable_notification": True},
    )
    assert status == 200
    assert body["result"]["text"] == "true"
    assert server.calls[-1].params == {
        "chat_id": 42,
        "text": "true",
        "disable_notification": True,
    }

    form = aiohttp.FormData()
    form.add_field("chat_id", "42")
    form.add_field("caption", "0042")
    form.add_field("photo", b"\xff\xd8fake-jpeg", filename="p.jpg", content_type="image/jpeg")
    status, body = await post(server, "sendPhoto", data=form)
    assert status == 200, body
    assert body["result"]["caption"] == "0042"
    assert len(body["result"]["photo"]) == 4
    record = server.calls[-1]
    assert record.params == {"chat_id": 42, "caption": "0042"}
    assert record.files["photo"].filename == "p.jpg"
    assert record.files["photo"].size == 11
    assert [m["message_id"] for m in server.sent_messages(user)] == [1, 2, 3]


async def test_message_shape(app: App, server: BotApiServer) -> None:
    """Sent messages have Telegram's shape: int seconds date, from, chat, no null fields."""
    user = server.add_user(7, "Bob", username="bob", started=True)
    before = int(time.time())
    message = await app.bot.send_message(7, "Bonjour", reply_markup=KEYBOARD)
    raw = server.calls[-1].result
    assert isinstance(raw["date"], int)
    assert before <= raw["date"] <= int(time.time())
    assert raw == {
        "message_id": 1,
        "from": {
            "id": 123456789,
            "is_bot": True,
            "first_name": "SEXTO assistant",
            "username": USERNAME,
        },
        "chat": {"id": 7, "first_name": "Bob", "username": "bob", "type": "private"},
        "date": raw["date"],
        "text": "Bonjour",
        "reply_markup": KEYBOARD.to_dict(),
    }
    assert message.api_kwargs == {}
    assert message.reply_markup == KEYBOARD
    assert message.chat.type == "private"
    assert message.date.tzinfo is not None
    second = await app.bot.send_message(7, "Encore", protect_content=True)
    assert second.message_id == 2
    assert second.has_protected_content is True
    assert server.sent_messages(user)[1]["has_protected_content"] is True


# ------------------------------------------------------------------------------------------
# Sending, editing and deleting
# ------------------------------------------------------------------------------------------


async def test_send_edit_delete_round_trip(app: App, server: BotApiServer) -> None:
    """Edits and deletions are applied, logged and validated like Telegram."""
    user = server.add_user(42, "Alice", started=True)
    sent = await app.bot.send_message(42, "Question ?", reply_markup=KEYBOARD)

    edited = await app.bot.edit_message_text("Question modifiée", 42, sent.message_id)
    assert isinstance(edited, type(sent))
    assert edited.text == "Question modifiée"
    assert edited.edit_date is not None
    assert edited.reply_markup is None, "omitting reply_markup removes the inline keyboard"

    with pytest.raises(BadRequest, match="Message is not modified"):
        await app.bot.edit_message_text("Question modifiée", 42, sent.message_id)

    with_keyboard = await app.bot.edit_message_reply_markup(
        42, sent.message_id, reply_markup=KEYBOARD
    )
    assert with_keyboard.reply_markup == KEYBOARD
    with pytest.raises(BadRequest, match="Message is not modified"):
        await app.bot.edit_message_reply_markup(42, sent.message_id, reply_markup=KEYBOARD)

    assert [e.method for e in server.edits] == ["editMessageText", "editMessageReplyMarkup"]
    assert server.edits[0].before["text"] == "Question ?"
    assert server.sent_messages(user)[0]["text"] == "Question modifiée"

    assert await app.bot.delete_message(42, sent.message_id) is True
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await app.bot.delete_message(42, sent.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await app.bot.edit_message_text("trop tard", 42, sent.message_id)
    assert [m["message_id"] for m in server.deleted_messages(user)] == [sent.message_id]
    assert server.sent_messages(user, include_deleted=False) == []
    assert len(server.sent_messages(user)) == 1


async def test_validation_errors(app: App, server: BotApiServer) -> None:
    """The checks a bot can get wrong answer with Telegram's descriptions."""
    server.add_user(42, "Alice", started=True)
    with pytest.raises(BadRequest, match="Chat not found"):
        await app.bot.send_message(999, "hello")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await app.bot.send_message(42, "")
    with pytest.raises(BadRequest, match="Text must be non-empty"):
        await app.bot.send_message(42, "  \n ")
    with pytest.raises(BadRequest, match="Message is too long"):
        await app.bot.send_message(42, "x" * 4097)
    assert (await app.bot.send_message(42, "é" * 4096)).text == "é" * 4096
    too_long_data = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await app.bot.send_message(42, "hi", reply_markup=too_long_data)
    ok_data = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="é" * 32)]])
    await app.bot.send_message(42, "hi", reply_markup=ok_data)
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await app.bot.send_message(42, "hi", reply_parameters=ReplyParameters(message_id=99))
    await app.bot.send_message(
        42, "hi", reply_parameters=ReplyParameters(message_id=99, allow_sending_without_reply=True)
    )
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await app.bot.send_chat_action(42, "dancing")
    with pytest.raises(BadRequest, match="Query is too old"):
        await app.bot.answer_callback_query("123")
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await app.bot.get_file("nope")
    descriptions = [c.description for c in server.calls if c.ok is False]
    assert descriptions[:4] == [
        "Bad Request: chat not found",
        "Bad Request: message text is empty",
        "Bad Request: text must be non-empty",
        "Bad Request: message is too long",
    ]
    assert "Bad Request: BUTTON_DATA_INVALID" in descriptions


async def test_forbidden_chats(app: App, server: BotApiServer) -> None:
    """Users who never started or blocked the bot, and groups it left, answer 403."""
    stranger = server.add_user(5, "Never started")
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await app.bot.send_message(stranger["id"], "hello")
    server.send_text(stranger, "/start")
    await app.bot.send_message(stranger["id"], "hello")

    update = server.block_bot(stranger)
    assert update["new_chat_member"]["status"] == "kicked"
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await app.bot.send_message(stranger["id"], "hello again")
    server.unblock_bot(stranger)
    await app.bot.send_message(stranger["id"], "welcome back")

    admin = server.add_user(6, "Admin")
    group = server.add_group("Équipe")
    server.add_bot_to_group(group, by=admin)
    await app.bot.send_message(group["id"], "hello group")
    server.remove_bot_from_group(group, by=admin)
    with pytest.raises(Forbidden, match="bot was kicked from the group chat"):
        await app.bot.send_message(group["id"], "still here?")

    other = server.add_group("Autre", supergroup=True)
    server.add_bot_to_group(other, by=admin)
    assert await app.bot.leave_chat(other["id"]) is True
    assert server.left_chats == [other["id"]]
    with pytest.raises(Forbidden, match="bot is not a member of the supergroup chat"):
        await app.bot.send_message(other["id"], "hello?")
    with pytest.raises(BadRequest, match="Can't leave private chats"):
        await app.bot.leave_chat(stranger["id"])


async def test_parse_modes_and_automatic_entities(app: App, server: BotApiServer) -> None:
    """HTML and MarkdownV2 are parsed into entities; invalid markup fails like Telegram."""
    user = server.add_user(42, "Alice", started=True)
    html = await app.bot.send_message(
        42,
        '<b>Gras</b> &amp; <a href="https://example.org">lien</a>\n',
        parse_mode=ParseMode.HTML,
    )
    assert html.text == "Gras & lien"
    raw = server.sent_messages(user)[-1]["entities"]
    assert raw == [
        {"offset": 0, "length": 4, "type": "bold"},
        {"offset": 7, "length": 4, "type": "text_link", "url": "https://example.org/"},
    ]
    with pytest.raises(BadRequest, match='unsupported start tag "br" at byte offset 4'):
        await app.bot.send_message(42, "1 & <br> 2", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="can't find end tag corresponding to start tag"):
        await app.bot.send_message(42, "<b>gras", parse_mode=ParseMode.HTML)

    md = await app.bot.send_message(42, "*Gras* et _italique_ 😀 \\!", parse_mode="MarkdownV2")
    assert md.text == "Gras et italique 😀 !"
    assert [(e.type, e.offset, e.length) for e in md.entities] == [
        ("bold", 0, 4),
        ("italic", 8, 8),
    ]
    with pytest.raises(BadRequest, match=r"character '\.' is reserved"):
        await app.bot.send_message(42, "Fin.", parse_mode=ParseMode.MARKDOWN_V2)

    auto = await app.bot.send_message(42, "  Tapez /aide ou visitez https://sexto.example.com.  ")
    assert auto.text == "Tapez /aide ou visitez https://sexto.example.com."
    assert [(e.type, e.offset, e.length) for e in auto.entities] == [
        ("bot_command", 6, 5),
        ("url", 23, 25),
    ]


async def test_reply_keyboards_and_link_previews(app: App, server: BotApiServer) -> None:
    """Reply keyboards are tracked per chat but, like Telegram, not echoed in the Message."""
    user = server.add_user(42, "Alice", started=True)
    menu = ReplyKeyboardMarkup([["Signaler", "Aide"]], resize_keyboard=True)
    message = await app.bot.send_message(
        42, "Menu", reply_markup=menu, link_preview_options=LinkPreviewOptions(is_disabled=True)
    )
    assert message.reply_markup is None
    assert message.link_preview_options == LinkPreviewOptions(is_disabled=True)
    assert server.reply_keyboard(user) == menu.to_dict()
    await app.bot.send_message(42, "Fermé", reply_markup=ReplyKeyboardRemove())
    assert server.reply_keyboard(user) is None


async def test_callback_queries_and_user_messages(app: App, server: BotApiServer) -> None:
    """Callback queries are answered once; users' messages can be deleted, not edited."""
    user = server.add_user(42, "Alice", started=True)
    menu = await app.bot.send_message(42, "Choix", reply_markup=KEYBOARD)
    query = server.press_button(user, menu.message_id, text="Non")
    assert query["data"] == "no"
    assert query["message"]["reply_markup"] == KEYBOARD.to_dict()
    update = (await app.bot.get_updates())[0]
    assert update.callback_query is not None
    assert update.callback_query.message is not None
    assert update.callback_query.message.message_id == menu.message_id
    assert await update.callback_query.answer("Noté")
    with pytest.raises(BadRequest, match="Query is too old"):
        await update.callback_query.answer("encore")
    assert server.callback_answers[0].text == "Noté"

    said = server.send_text(user, "mon message")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await app.bot.edit_message_text("modifié", 42, said["message_id"])
    assert await app.bot.delete_message(42, said["message_id"])
    edited = server.edit_text(user, server.send_text(user, "fautte"), "faute")
    updates = await app.bot.get_updates(offset=update.update_id + 1)
    assert updates[-1].edited_message is not None
    assert updates[-1].edited_message.text == "faute"
    assert edited["edit_date"] >= edited["date"]


async def test_bot_media_chat_info_and_actions(app: App, server: BotApiServer) -> None:
    """sendPhoto/sendDocument, getChat, getChatMember and sendChatAction behave like Telegram."""
    user = server.add_user(42, "Alice", username="alice", started=True)
    incoming = server.send_photo(user)
    resent = await app.bot.send_photo(
        42, incoming["photo"][-1]["file_id"], caption="<b>Vu</b>", parse_mode=ParseMode.HTML
    )
    assert resent.photo[-1].file_unique_id == incoming["photo"][-1]["file_unique_id"]
    assert resent.caption == "Vu"
    document = await app.bot.send_document(42, b"%PDF-1.4 fake", filename="guide.pdf")
    assert document.document is not None
    assert document.document.file_name == "guide.pdf"
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await app.bot.send_photo(42, "AgACAgQAAxkBAAIunknown")

    chat = await app.bot.get_chat(42)
    assert (chat.type, chat.username, chat.first_name) == ("private", "alice", "Alice")
    assert chat.accepted_gift_types.unlimited_gifts is True
    member = await app.bot.get_chat_member(42, 42)
    assert member.status == "member"
    assert await app.bot.send_chat_action(42, "typing")
    assert [(a.chat_id, a.action) for a in server.chat_actions] == [(42, "typing")]
    assert server.file_requests == []


# ------------------------------------------------------------------------------------------
# Polling
# ------------------------------------------------------------------------------------------


async def test_polling_round_trip(server: BotApiServer) -> None:
    """A user's command, text and button press round-trip through a polling Application."""
    received: list[int] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        received.append(update.update_id)
        await update.effective_message.reply_text(
            f"start args={context.args}", reply_markup=KEYBOARD
        )

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        received.append(update.update_id)
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        received.append(update.update_id)
        await query.answer(f"choisi {query.data}", show_alert=True)
        await query.edit_message_text(f"Réponse : {query.data}")

    application = build_app(server)
    application.add_handler(CommandHandler("start", start))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.add_handler(CallbackQueryHandler(button))
    user = server.add_user(42, "Alice", language_code="fr")
    async with application:
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1)
        await application.start()
        try:
            server.send_text(user, "/start ABC123")
            menu = await server.wait_for_message(42, timeout=5)
            assert menu["text"] == "start args=['ABC123']"
            assert menu["reply_markup"] == KEYBOARD.to_dict()

            server.send_text(user, "bonjour")
            reply = await server.wait_for_message(42, timeout=5)
            assert reply["text"] == "echo: bonjour"

            query = server.press_button(user, menu, "yes")
            answer = await server.wait_for_callback_answer(query, timeout=5)
            assert (answer.text, answer.show_alert) == ("choisi yes", True)
            edit = await server.wait_for_call("editMessageText", timeout=5)
            assert edit.ok
            assert server.sent_messages(42)[0]["text"] == "Réponse : yes"
            assert "reply_markup" not in server.sent_messages(42)[0]
        finally:
            await application.updater.stop()
            await application.stop()
    assert len(received) == 3
    assert len(set(received)) == 3, "every update is handled exactly once"
    assert server.pending_updates == [], "the shutdown getUpdates confirms the last offset"
    polls = [c for c in server.calls if c.method == "getUpdates"]
    assert polls[-1].params["timeout"] == 0
    assert all("allowed_updates" not in c.params for c in polls)
    with pytest.raises(LookupError, match="has no callback button with callback_data='maybe'"):
        server.press_button(user, menu, "maybe")


async def test_offset_confirmation_and_limit(app: App, server: BotApiServer) -> None:
    """Updates stay queued until an offset confirms them; limit and negative offsets work."""
    user = server.add_user(42, "Alice")
    for text in ("un", "deux", "trois"):
        server.send_text(user, text)
    first = await app.bot.get_updates()
    assert [u.message.text for u in first if u.message] == ["un", "deux", "trois"]
    again = await app.bot.get_updates(limit=2)
    assert [u.update_id for u in again] == [u.update_id for u in first[:2]]
    confirmed = await app.bot.get_updates(offset=first[1].update_id + 1)
    assert [u.update_id for u in confirmed] == [first[2].update_id]
    assert len(server.pending_updates) == 1
    server.send_text(user, "quatre")
    server.send_text(user, "cinq")
    last = await app.bot.get_updates(offset=-1)
    assert [u.message.text for u in last if u.message] == ["cinq"]
    assert [u["message"]["text"] for u in server.pending_updates] == ["cinq"]
    assert await app.bot.get_updates(offset=last[0].update_id + 1) == ()


async def test_long_poll_timeout_and_wakeup(app: App, server: BotApiServer) -> None:
    """A long poll returns [] after its timeout, or as soon as an update arrives."""
    started = time.monotonic()
    assert await app.bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 2

    user = server.add_user(42, "Alice")
    poll = asyncio.create_task(app.bot.get_updates(timeout=5))
    await server.wait_until(lambda: server.waiting_polls == 1, timeout=2)
    started = time.monotonic()
    server.send_text(user, "réveil")
    updates = await poll
    assert time.monotonic() - started < 1
    assert [u.message.text for u in updates if u.message] == ["réveil"]


async def test_concurrent_long_polls_conflict(app: App, server: BotApiServer) -> None:
    """A second long poll (another bot instance) terminates the first one with 409 Conflict."""
    first = asyncio.create_task(app.bot.get_updates(timeout=5))
    await server.wait_until(lambda: server.waiting_polls == 1, timeout=2)
    # PTB's getUpdates pool has one connection: a second poll needs a second Bot instance.
    async with Bot(server.token, base_url=f"{server.url}/bot") as other_instance:
        second = asyncio.create_task(other_instance.get_updates(timeout=1))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await first
        assert await second == ()


async def test_webhook_blocks_get_updates(app: App, server: BotApiServer) -> None:
    """getUpdates answers 409 while a webhook is set."""
    assert await app.bot.set_webhook("https://bot.example.org/hook", secret_token="s3cret")
    info = await app.bot.get_webhook_info()
    assert info.url == "https://bot.example.org/hook"
    assert server.webhook["secret_token"] == "s3cret"
    with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
        await app.bot.get_updates()
    assert await app.bot.delete_webhook(drop_pending_updates=True)
    assert (await app.bot.get_webhook_info()).url == ""
    assert await app.bot.get_updates() == ()


async def test_allowed_updates_filter(app: App, server: BotApiServer) -> None:
    """allowed_updates is remembered and filters the updates created afterwards."""
    user = server.add_user(42, "Alice")
    await app.bot.get_updates(allowed_updates=["callback_query"])
    server.send_text(user, "ignoré")
    assert server.pending_updates == []
    assert server.dropped_updates[0]["message"]["text"] == "ignoré"
    await app.bot.get_updates(allowed_updates=[])
    server.send_text(user, "reçu")
    assert [u.message.text for u in await app.bot.get_updates() if u.message] == ["reçu"]


# ------------------------------------------------------------------------------------------
# Fault injection
# ------------------------------------------------------------------------------------------


async def test_429_is_retried_by_the_rate_limiter(server: BotApiServer) -> None:
    """A flood-wait is visible in calls and retried by PTB's AIORateLimiter, once."""
    server.add_user(42, "Alice", started=True)
    application = build_app(server, rate_limiter=AIORateLimiter(max_retries=1))
    server.inject_fault("sendMessage", "429", retry_after=1)
    async with application:
        started = time.monotonic()
        message = await application.bot.send_message(42, "après la pause")
        assert time.monotonic() - started >= 1
    sends = [c for c in server.calls if c.method == "sendMessage"]
    assert [(c.status, c.fault) for c in sends] == [(429, "429"), (200, None)]
    assert sends[0].description == "Too Many Requests: retry after 1"
    assert [m["text"] for m in server.sent_messages(42)] == ["après la pause"]
    assert message.message_id == 1


async def test_429_without_rate_limiter(app: App, server: BotApiServer) -> None:
    """Without a rate limiter PTB raises RetryAfter and nothing is sent."""
    server.add_user(42, "Alice", started=True)
    server.inject_fault("sendmessage", "429", retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await app.bot.send_message(42, "trop vite")
    assert caught.value.retry_after == dt.timedelta(seconds=3)
    assert server.sent_messages(42) == []
    status, _ = await post(server, "getMe")
    assert status == 200, "the fault was consumed"


async def test_gateway_drop_and_timeout_faults(app: App, server: BotApiServer) -> None:
    """502, dropped connections and timeouts reach PTB as network errors, with no effect."""
    server.add_user(42, "Alice", started=True)
    server.inject_fault("sendMessage", "502")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await app.bot.send_message(42, "a")
    server.inject_fault("sendMessage", "drop")
    with pytest.raises(NetworkError):
        await app.bot.send_message(42, "b")
    server.inject_fault("sendMessage", "timeout")
    with pytest.raises(TimedOut):
        await app.bot.send_message(42, "c", read_timeout=0.3)
    assert server.sent_messages(42) == []
    assert [c.fault for c in server.calls if c.method == "sendMessage"] == [
        "502",
        "drop",
        "timeout",
    ]
    sent = await app.bot.send_message(42, "d")
    assert sent.message_id == 1, "faulted calls never consumed a message id"


async def test_refusals_of_the_bot_reach_ptb_as_an_invalid_token(
    app: App, server: BotApiServer
) -> None:
    """401 and 404 faults answer as the Bot API refusing the bot, with no effect."""
    server.add_user(42, "Alice", started=True)
    server.inject_fault("sendMessage", "401")
    with pytest.raises(InvalidToken):
        await app.bot.send_message(42, "a")
    server.inject_fault("sendMessage", "404")
    with pytest.raises(InvalidToken):
        await app.bot.send_message(42, "b")
    sends = [c for c in server.calls if c.method == "sendMessage"]
    assert [(c.status, c.fault, c.description) for c in sends] == [
        (401, "401", "Unauthorized"),
        (404, "404", "Not Found"),
    ]
    assert server.sent_messages(42) == []
    sent = await app.bot.send_message(42, "c")
    assert sent.message_id == 1, "refused calls never consumed a message id"


async def test_polling_survives_a_429_on_get_updates(server: BotApiServer) -> None:
    """The Updater's retry loop honours retry_after and keeps polling."""
    user = server.add_user(42, "Alice")
    application = build_app(server)

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("ok")

    application.add_handler(MessageHandler(filters.TEXT, echo))
    server.inject_fault("getUpdates", "429", retry_after=1)
    async with application:
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1)
        await application.start()
        try:
            server.send_text(user, "salut")
            assert (await server.wait_for_message(42, timeout=5))["text"] == "ok"
        finally:
            await application.updater.stop()
            await application.stop()
    statuses = [c.status for c in server.calls if c.method == "getUpdates"]
    assert statuses[0] == 429
    assert 200 in statuses[1:]


# ------------------------------------------------------------------------------------------
# Media, files and groups
# ------------------------------------------------------------------------------------------


async def test_media_updates_are_parsed_by_ptb(app: App, server: BotApiServer) -> None:
    """Every simulated media kind produces an update PTB understands."""
    user = server.add_user(42, "Alice")
    channel = server.add_channel("Canal", username="canal")
    server.send_photo(user, caption="Regardez #preuve")
    server.send_video(user)
    server.send_document(user, file_name="capture.pdf")
    server.send_voice(user)
    server.send_video_note(user)
    server.send_sticker(user)
    server.send_animation(user)
    server.send_audio(user)
    server.send_location(user)
    server.forward_photo(user, from_chat=channel)
    server.forward_text(user, "transféré", from_chat="Anonyme")
    updates = await app.bot.get_updates()
    messages = [u.message for u in updates if u.message]
    assert len(messages) == 11
    kinds = [
        "photo",
        "video",
        "document",
        "voice",
        "video_note",
        "sticker",
        "animation",
        "audio",
        "location",
        "photo",
        "text",
    ]
    for message, kind in zip(messages, kinds, strict=True):
        assert getattr(message, kind), kind
    photo = messages[0]
    assert [p.width for p in photo.photo] == [90, 320, 800, 1280]
    assert photo.caption == "Regardez #preuve"
    assert photo.caption_entities[0].type == "hashtag"
    assert messages[1].video is not None
    assert messages[1].video.duration == dt.timedelta(seconds=12)
    assert messages[2].document is not None
    assert messages[2].document.file_name == "capture.pdf"
    assert messages[6].document is not None, "GIFs also carry a document, like Telegram"
    forwarded = messages[9].forward_origin
    assert isinstance(forwarded, MessageOriginChannel)
    assert forwarded.chat.id == channel["id"]
    assert isinstance(messages[10].forward_origin, MessageOriginHiddenUser)
    assert server.file_requests == []


async def test_get_file_is_recorded(app: App, server: BotApiServer) -> None:
    """getFile and downloads are recorded so tests can assert media is never fetched."""
    user = server.add_user(42, "Alice")
    message = server.send_photo(user)
    largest = message["photo"][-1]
    file = await app.bot.get_file(largest["file_id"])
    assert file.file_unique_id == largest["file_unique_id"]
    assert file.file_path is not None
    assert file.file_path.endswith(".jpg")
    data = await file.download_as_bytearray()
    assert len(data) == largest["file_size"]
    assert server.file_requests == [largest["file_id"]]
    raw_path = server.calls_of("getFile")[0].result["file_path"]
    assert file.file_path == f"{server.url}/file/bot{server.token}/{raw_path}"
    assert server.file_downloads == [raw_path]


async def test_group_membership_and_privacy_mode(app: App, server: BotApiServer) -> None:
    """Adding the bot emits my_chat_member; privacy mode filters ordinary group chatter."""
    admin = server.add_user(6, "Admin")
    member = server.add_user(8, "Membre")
    group = server.add_group("Équipe école", members=[member])
    assert group["type"] == "group"
    assert group["id"] < 0
    server.add_bot_to_group(group, by=admin)
    updates = await app.bot.get_updates()
    assert updates[0].my_chat_member is not None
    change = updates[0].my_chat_member
    assert change.old_chat_member.status == "left"
    assert change.new_chat_member.status == "member"
    assert change.new_chat_member.user.id == app.bot.id
    assert change.from_user.id == admin["id"]
    joined = updates[1].message
    assert joined is not None
    assert [u.id for u in joined.new_chat_members] == [app.bot.id]

    server.send_text(member, "bavardage", chat=group)
    server.send_photo(member, chat=group)
    server.send_text(member, "/aide", chat=group)
    server.send_text(member, "/aide@other_bot", chat=group)
    server.send_text(member, f"/aide@{USERNAME}", chat=group)
    bot_message = await app.bot.send_message(group["id"], "Bonjour")
    server.send_text(member, "réponse au bot", chat=group, reply_to=bot_message.message_id)
    new = await app.bot.get_updates(offset=updates[-1].update_id + 1)
    texts = [u.message.text for u in new if u.message]
    assert texts == ["/aide", f"/aide@{USERNAME}", "réponse au bot"]
    assert len(server.history(group)) == 8
    chat = await app.bot.get_chat(group["id"])
    assert chat.title == "Équipe école"
    assert chat.max_reaction_count == 11


async def test_a_forgotten_method_is_answered_as_unknown(app: App, server: BotApiServer) -> None:
    server.forget_method("setMyCommands")
    with pytest.raises(InvalidToken):  # how python-telegram-bot reads a 404
        await app.bot.set_my_commands([BotCommand("start", "Commencer")])
    assert server.commands == {}
    assert (await app.bot.get_me()).username == USERNAME


async def test_commands_by_scope_and_language(app: App, server: BotApiServer) -> None:
    """set/get/deleteMyCommands are stored per scope and language."""
    user = server.add_user(42, "Alice")
    commands = [BotCommand("start", "Commencer"), BotCommand("aide", "Obtenir de l'aide")]
    assert await app.bot.set_my_commands(commands, language_code="fr")
    assert await app.bot.set_my_commands(
        [BotCommand("help", "Help")], scope=BotCommandScopeAllPrivateChats()
    )
    assert await app.bot.set_my_commands(
        [BotCommand("admin", "Admin")], scope=BotCommandScopeChat(user["id"])
    )
    assert await app.bot.get_my_commands(language_code="fr") == tuple(commands)
    assert await app.bot.get_my_commands() == ()
    assert set(server.commands) == {
        ("default", "fr"),
        ("all_private_chats", ""),
        (f"chat:{user['id']}", ""),
    }
    assert server.get_commands({"type": "all_private_chats"}) == [
        {"command": "help", "description": "Help"}
    ]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await app.bot.set_my_commands([BotCommand("Start", "Majuscule")])
    assert await app.bot.delete_my_commands(language_code="fr")
    assert ("default", "fr") not in server.commands


# ------------------------------------------------------------------------------------------
# Waits and threads
# ------------------------------------------------------------------------------------------


async def test_wait_timeout_lists_what_arrived(app: App, server: BotApiServer) -> None:
    """A failed wait explains which messages and failed calls the server saw."""
    server.add_user(42, "Alice", started=True)
    await app.bot.send_message(42, "premier")
    assert (await server.wait_for_message(42, timeout=1))["text"] == "premier"
    with pytest.raises(BadRequest):
        await app.bot.send_message(42, "<oops>", parse_mode=ParseMode.HTML)
    with pytest.raises(BotApiWaitTimeout) as caught:
        await server.wait_for_message(42, timeout=0.2)
    report = str(caught.value)
    assert "consumed #1: 'premier'" in report
    assert 'Unsupported start tag \\"oops\\"' in report or 'Unsupported start tag "oops"' in report
    with pytest.raises(TimeoutError):
        await server.wait_for_call("deleteMessage", timeout=0.1)


async def test_wait_predicates_and_cursor(app: App, server: BotApiServer) -> None:
    """Consecutive waits return successive messages; a predicate skips earlier ones."""
    server.add_user(42, "Alice", started=True)
    for text in ("a", "b", "c", "d"):
        await app.bot.send_message(42, text)
    assert (await server.wait_for_message(42))["text"] == "a"
    found = await server.wait_for_message(42, lambda m: m["text"] == "c")
    assert found["text"] == "c"
    assert (await server.wait_for_message(42))["text"] == "d"
    record: CallRecord = await server.wait_for_call(
        "sendmessage", lambda c: c.params["text"] == "b"
    )
    assert record.result["text"] == "b"


async def test_threaded_server_with_ptb_on_another_loop() -> None:
    """The threaded server can be awaited from the test's own event loop."""
    with ThreadedBotApiServer(token=TOKEN, bot_username=USERNAME) as server:
        user = server.add_user(42, "Alice", started=True)
        application = build_app(server)
        async with application:
            await application.bot.send_message(42, "depuis un autre loop")
            message = await server.wait_for_message(user["id"], timeout=5)
            assert message["text"] == "depuis un autre loop"
        assert server.sent_messages(42)[0]["text"] == "depuis un autre loop"


def test_threaded_server_driven_synchronously() -> None:
    """A synchronous client (like a bot subprocess) works against the threaded server."""
    with ThreadedBotApiServer(token=TOKEN, bot_username=USERNAME) as server:
        server.add_user(42, "Alice", started=True)
        connection = http.client.HTTPConnection(server.host, int(server.url.rsplit(":", 1)[1]))
        try:
            connection.request(
                "POST",
                f"/bot{TOKEN}/sendMessage",
                body=json.dumps({"chat_id": 42, "text": "sync"}),
                headers={"Content-Type": "application/json"},
            )
            assert json.load(connection.getresponse())["ok"] is True
        finally:
            connection.close()
        assert server.wait_for_message_sync(42, timeout=5)["text"] == "sync"
        assert server.wait_for_call_sync("sendMessage", timeout=5).ok
        with pytest.raises(BotApiWaitTimeout):
            server.wait_for_message_sync(42, timeout=0.1)


ECHO_BOT = textwrap.dedent(
    """
    import os
    from telegram.ext import Application, MessageHandler, filters

    async def echo(update, context):
        await update.message.reply_text("echo: " + update.message.text)

    url = os.environ["FAKE_BOT_API"]
    app = (
        Application.builder()
        .token(os.environ["FAKE_BOT_TOKEN"])
        .base_url(url + "/bot")
        .base_file_url(url + "/file/bot")
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.run_polling(poll_interval=0, timeout=1)
    """
)


def test_bot_subprocess_against_threaded_server() -> None:
    """A real PTB bot running as a subprocess answers a simulated user."""
    with ThreadedBotApiServer(token=TOKEN, bot_username=USERNAME) as server:
        user = server.add_user(42, "Alice")
        env = {**os.environ, "FAKE_BOT_API": server.url, "FAKE_BOT_TOKEN": TOKEN}
        process = subprocess.Popen(
            [sys.executable, "-c", ECHO_BOT],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            server.send_text(user, "ping")
            assert server.wait_for_message_sync(user["id"], timeout=15)["text"] == "echo: ping"
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=15)
        assert process.returncode == 0, output.decode()
        assert server.pending_updates == []
