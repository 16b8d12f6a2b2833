"""In-process fake of the Telegram Bot API HTTP server for end-to-end tests.

The behaviour mirrors the official Bot API server (https://core.telegram.org/bots/api and the
reference implementation tdlib/telegram-bot-api) wherever a bot can depend on it: the response
envelope, parameter decoding, error descriptions, long polling, entity parsing of ``parse_mode``
texts, whitespace trimming, message shapes and the privacy mode of group chats.

Typical use::

    async with BotApiServer(token="123:ABC", bot_username="sexto_test_bot") as server:
        app = (
            Application.builder()
            .token(server.token)
            .base_url(f"{server.url}/bot")
            .base_file_url(f"{server.url}/file/bot")
            .build()
        )
        user = server.add_user(user_id=42, first_name="Alice", language_code="fr")
        server.send_text(user, "/start")
        reply = await server.wait_for_message(user["id"])

For a bot running in a subprocess, use :class:`ThreadedBotApiServer` (or
:meth:`BotApiServer.start_in_thread`) and the ``*_sync`` waits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import dataclasses
import functools
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, cast

from aiohttp import web

__all__ = [
    "BotApiError",
    "BotApiServer",
    "BotApiWaitTimeout",
    "CallRecord",
    "CallbackAnswer",
    "ChatActionRecord",
    "EditRecord",
    "FaultKind",
    "ThreadedBotApiServer",
    "UploadedFile",
]

JsonDict = dict[str, Any]
FaultKind = Literal["429", "502", "timeout", "drop", "401", "404"]
UserRef = Mapping[str, Any] | int
ChatRef = Mapping[str, Any] | int
# A forward origin: a user or chat dict (or id), or a plain name for a hidden user.
OriginRef = Mapping[str, Any] | int | str

_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")

_MAX_TEXT_LENGTH = 4096
_MAX_CAPTION_LENGTH = 1024
_MAX_CALLBACK_DATA_BYTES = 64
_MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
_LONG_POLL_MAX_TIMEOUT = 50
_UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "managed_bot",
    "guest_message",
)
# Like Telegram: chat_member, message_reaction and message_reaction_count are opt-in.
_DEFAULT_ALLOWED_UPDATES = frozenset(_UPDATE_TYPES) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}
_CHAT_ACTIONS = {
    "cancel": "cancel",
    "typing": "typing",
    "record_video": "record_video",
    "upload_video": "upload_video",
    "record_audio": "record_voice",
    "record_voice": "record_voice",
    "upload_audio": "upload_voice",
    "upload_voice": "upload_voice",
    "upload_photo": "upload_photo",
    "upload_document": "upload_document",
    "choose_sticker": "choose_sticker",
    "pick_up_location": "find_location",
    "find_location": "find_location",
    "record_video_note": "record_video_note",
    "upload_video_note": "upload_video_note",
}
# Parameters that Telegram always reads as plain strings: never JSON-decode them, even when they
# look like numbers or booleans ("text": "123" must stay "123").
_STRING_PARAMS = frozenset(
    {
        "action",
        "address",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "currency",
        "custom_title",
        "description",
        "emoji",
        "error_message",
        "explanation",
        "file_id",
        "first_name",
        "foursquare_id",
        "game_short_name",
        "google_place_id",
        "inline_message_id",
        "invite_link",
        "ip_address",
        "language_code",
        "last_name",
        "message_effect_id",
        "name",
        "parse_mode",
        "payload",
        "phone_number",
        "provider_token",
        "query",
        "question",
        "result_id",
        "secret_token",
        "short_description",
        "start_parameter",
        "sticker_set_name",
        "text",
        "title",
        "url",
        "vcard",
        "web_app_query_id",
    }
)
# Service messages are always delivered to group members, even in privacy mode.
_SERVICE_MESSAGE_FIELDS = frozenset(
    {
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "supergroup_chat_created",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "message_auto_delete_timer_changed",
    }
)
_NUMBER_RE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")
_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "tg-time",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SPACE_CHARS = frozenset(" \t\r\n\0\v")
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)


# --------------------------------------------------------------------------------------------
# Errors and records
# --------------------------------------------------------------------------------------------


class BotApiError(Exception):
    """A Bot API failure, answered as ``{"ok": false, "error_code": ..., ...}``."""

    def __init__(
        self, error_code: int, description: str, parameters: JsonDict | None = None
    ) -> None:
        """Store the Telegram error code, description and optional response parameters."""
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters


class BotApiWaitTimeout(AssertionError, TimeoutError):
    """Raised when a ``wait_for_*`` helper gives up; the message lists what did arrive."""


def _bad_request(message: str) -> BotApiError:
    """Build a 400 error with Telegram's ``Bad Request:`` prefix."""
    return BotApiError(400, f"Bad Request: {message}")


def _forbidden(message: str) -> BotApiError:
    """Build a 403 error with Telegram's ``Forbidden:`` prefix."""
    return BotApiError(403, f"Forbidden: {message}")


@dataclasses.dataclass(frozen=True)
class UploadedFile:
    """A file part received in a ``multipart/form-data`` request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes = dataclasses.field(repr=False)

    @property
    def size(self) -> int:
        """Return the size of the uploaded content in bytes."""
        return len(self.data)


@dataclasses.dataclass
class CallRecord:
    """One request received by the fake server, with its outcome."""

    method: str
    params: JsonDict
    time: datetime
    http_method: str = "POST"
    status: int | None = None
    ok: bool | None = None
    result: Any = None
    description: str | None = None
    fault: str | None = None
    files: dict[str, UploadedFile] = dataclasses.field(default_factory=dict)
    finished: datetime | None = None

    def short(self) -> str:
        """Return a one-line human summary used in timeout messages."""
        outcome = "ok" if self.ok else (self.description or self.fault or "pending")
        params = {k: v for k, v in self.params.items() if k != "reply_markup"}
        return f"{self.method}({params}) -> {self.status}: {outcome}"


@dataclasses.dataclass(frozen=True)
class EditRecord:
    """A change the bot made to one of its messages."""

    method: str
    chat_id: int
    message_id: int
    before: JsonDict
    after: JsonDict
    time: datetime


@dataclasses.dataclass(frozen=True)
class CallbackAnswer:
    """An ``answerCallbackQuery`` call accepted by the server."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int
    time: datetime


@dataclasses.dataclass(frozen=True)
class ChatActionRecord:
    """A ``sendChatAction`` call accepted by the server."""

    chat_id: int
    action: str
    time: datetime


@dataclasses.dataclass
class _Fault:
    """A pending fault injected for a method."""

    kind: str
    remaining: int
    retry_after: int
    hold: float


@dataclasses.dataclass
class _Chat:
    """Server-side state of one chat."""

    info: JsonDict
    bot_status: str = "member"
    members: dict[int, str] = dataclasses.field(default_factory=dict)
    started: bool = True
    next_message_id: int = 1
    messages: dict[int, JsonDict] = dataclasses.field(default_factory=dict)
    deleted: dict[int, JsonDict] = dataclasses.field(default_factory=dict)
    bot_message_ids: list[int] = dataclasses.field(default_factory=list)
    cursor: int = 0
    reply_keyboard: JsonDict | None = None
    description: str = ""

    @property
    def id(self) -> int:
        """Return the chat identifier."""
        return int(self.info["id"])

    @property
    def type(self) -> str:
        """Return the chat type (private, group, supergroup or channel)."""
        return str(self.info["type"])


def _now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def _unix_now() -> int:
    """Return the current Unix time in whole seconds, like Telegram's ``date`` fields."""
    return int(time.time())


# --------------------------------------------------------------------------------------------
# Text helpers: UTF-16 lengths, parse modes, automatic entities
# --------------------------------------------------------------------------------------------


def _utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, as entity offsets are counted."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    """Return the UTF-8 byte offset of character ``index`` (Telegram reports byte offsets)."""
    return len(text[:index].encode("utf-8"))


def _entity(type_: str, offset: int, length: int, **extra: Any) -> JsonDict:
    """Build a MessageEntity dict in the field order the Bot API uses."""
    return {"offset": offset, "length": length, "type": type_, **extra}


def _link_user_id(url: str) -> int | None:
    """Return the user id of a ``tg://user?id=`` link, else None."""
    match = re.fullmatch(r"tg://user\?id=(\d+)", url.strip(), flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


def _checked_link(url: str) -> str:
    """Normalise a link like Telegram does, or return an empty string if it is not valid."""
    url = url.strip()
    if not url:
        return ""
    scheme_match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    if scheme_match and "//" in url[: scheme_match.end() + 2]:
        scheme = scheme_match.group(1).lower()
        if scheme in ("tg", "ton"):
            return url
        if scheme not in ("http", "https"):
            return ""
    elif scheme_match and scheme_match.group(1).lower() in ("mailto", "tg", "ton"):
        return url
    else:
        url = "http://" + url
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        return ""
    if not host or " " in parts.netloc or ("." not in host and ":" not in host):
        return ""
    userinfo, _, host_port = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{host_port.lower()}" if userinfo else host_port.lower()
    return urllib.parse.urlunsplit(
        (parts.scheme.lower(), netloc, parts.path or "/", parts.query, parts.fragment)
    )


def _decode_html_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the HTML entity at ``text[pos]`` ('&'); return (char, next position) or None."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        value = 0
        if end < n and text[end] == "x":
            end += 1
            while end < n and text[end] in "0123456789abcdefABCDEF":
                value = value * 16 + int(text[end], 16)
                end += 1
        else:
            while end < n and "0" <= text[end] <= "9":
                value = value * 10 + int(text[end])
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10 or 0xD800 <= value <= 0xDFFF:
            return None
        char = chr(value)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        named = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(text[pos + 1 : end])
        if named is None:
            return None
        char = named
    if end < n and text[end] == ";":
        end += 1
    return char, end


class _EntityParseError(Exception):
    """A parse_mode error; the Bot API reports it as ``can't parse entities: ...``."""


def _text_link_entity(
    offset: int, length: int, url: str, users: Mapping[int, JsonDict]
) -> JsonDict | None:
    """Build a text_link or text_mention entity for ``url``, or None if the link is invalid."""
    user_id = _link_user_id(url)
    if user_id is not None:
        user = users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": ""}
        return _entity("text_mention", offset, length, user=copy.deepcopy(user))
    checked = _checked_link(url)
    if not checked:
        return None
    return _entity("text_link", offset, length, url=checked)


def _parse_html(text: str, users: Mapping[int, JsonDict]) -> tuple[str, list[JsonDict]]:
    """Parse Telegram's HTML parse mode, following tdlib's parse_html error for error."""
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    def is_space(ch: str) -> bool:
        return ch in _SPACE_CHARS

    out: list[str] = []
    u16 = 0
    entities: list[JsonDict] = []
    # (tag, argument, unix date, utf16 offset, index in out)
    stack: list[tuple[str, str, int, int, int]] = []
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_html_entity(text, i)
            if decoded is not None:
                out.append(decoded[0])
                u16 += _utf16_len(decoded[0])
                i = decoded[1]
                continue
        if c != "<":
            out.append(c)
            u16 += _utf16_len(c)
            i += 1
            continue
        begin = i
        i += 1
        if at(i) != "/":
            while not is_space(at(i)) and at(i) != ">":
                i += 1
            if i >= n:
                raise _EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise _EntityParseError(
                    f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                )
            argument = ""
            date = 0
            while at(i) != ">":
                while i < n and is_space(at(i)):
                    i += 1
                if at(i) == ">":
                    break
                attribute_begin = i
                while not is_space(at(i)) and at(i) not in "=>/\"'":
                    i += 1
                attribute = text[attribute_begin:i]
                if not attribute:
                    raise _EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset '
                        f"{_byte_offset(text, begin)}"
                    )
                while i < n and is_space(at(i)):
                    i += 1
                if at(i) != "=":
                    if i >= n:
                        raise _EntityParseError(
                            f'Unclosed start tag "{tag}" at byte offset '
                            f"{_byte_offset(text, begin)}"
                        )
                    if tag == "blockquote" and attribute == "expandable":
                        argument = "1"
                    continue
                i += 1
                while i < n and is_space(at(i)):
                    i += 1
                if i >= n:
                    raise _EntityParseError(
                        f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                if at(i) not in "'\"":
                    token_begin = i
                    while at(i).isascii() and (at(i).isalnum() or at(i) in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if not is_space(at(i)) and at(i) != ">":
                        raise _EntityParseError(
                            "Unexpected end of name token at byte offset "
                            f"{_byte_offset(text, token_begin)}"
                        )
                else:
                    quote = at(i)
                    i += 1
                    chars: list[str] = []
                    while i < n and text[i] != quote:
                        if text[i] == "&":
                            decoded = _decode_html_entity(text, i)
                            if decoded is not None:
                                chars.append(decoded[0])
                                i = decoded[1]
                                continue
                        chars.append(text[i])
                        i += 1
                    if at(i) == quote:
                        i += 1
                    value = "".join(chars)
                if i >= n:
                    raise _EntityParseError(
                        f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                    )
                if tag == "a" and attribute == "href":
                    argument = value
                elif tag == "code" and attribute == "class" and value.startswith("language-"):
                    argument = value[9:]
                elif tag == "span" and attribute == "class" and value.startswith("tg-"):
                    argument = value[3:]
                elif (tag == "tg-emoji" and attribute == "emoji-id") or (
                    tag == "tg-time" and attribute == "format"
                ):
                    argument = value
                elif tag == "blockquote" and attribute == "expandable":
                    argument = "1"
                elif tag == "tg-time" and attribute == "unix":
                    date = int(value) if re.fullmatch(r"-?\d+", value) else 0
            if tag == "span" and argument != "spoiler":
                raise _EntityParseError(
                    'Tag "span" must have class "tg-spoiler" at byte offset '
                    f"{_byte_offset(text, begin)}"
                )
            stack.append((tag, argument, date, u16, len(out)))
            i += 1
            continue
        # end tag
        if not stack:
            raise _EntityParseError(
                f"Unexpected end tag at byte offset {_byte_offset(text, begin)}"
            )
        while not is_space(at(i)) and at(i) != ">":
            i += 1
        end_tag = text[begin + 2 : i].lower()
        while i < n and is_space(at(i)):
            i += 1
        if at(i) != ">":
            raise _EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
        tag, argument, date, offset, out_begin = stack[-1]
        if end_tag and end_tag != tag:
            raise _EntityParseError(
                f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                f'expected "</{tag}>", found "</{end_tag}>"'
            )
        length = u16 - offset
        if length > 0:
            last = entities[-1] if entities else None
            same_span = last is not None and last["offset"] == offset and last["length"] == length
            if tag in ("i", "em"):
                entities.append(_entity("italic", offset, length))
            elif tag in ("b", "strong"):
                entities.append(_entity("bold", offset, length))
            elif tag in ("s", "strike", "del"):
                entities.append(_entity("strikethrough", offset, length))
            elif tag in ("u", "ins"):
                entities.append(_entity("underline", offset, length))
            elif tag in ("tg-spoiler", "span"):
                entities.append(_entity("spoiler", offset, length))
            elif tag == "tg-emoji":
                if not re.fullmatch(r"\d+", argument) or int(argument) == 0:
                    raise _EntityParseError("Invalid custom emoji identifier specified")
                entities.append(_entity("custom_emoji", offset, length, custom_emoji_id=argument))
            elif tag == "tg-time":
                if date > 0:
                    extra: JsonDict = {"unix_time": date}
                    if argument:
                        extra["date_time_format"] = argument
                    entities.append(_entity("date_time", offset, length, **extra))
            elif tag == "a":
                url = argument or "".join(out[out_begin:])
                link = _text_link_entity(offset, length, url, users)
                if link is not None:
                    entities.append(link)
            elif tag == "pre":
                if same_span and last is not None and last["type"] == "code" and last.get("_lang"):
                    last["type"] = "pre"
                    last["language"] = last.pop("_lang")
                else:
                    entities.append(_entity("pre", offset, length))
            elif tag == "code":
                if same_span and last is not None and last["type"] == "pre" and argument:
                    last["language"] = argument
                else:
                    code = _entity("code", offset, length)
                    if argument:
                        code["_lang"] = argument
                    entities.append(code)
            elif tag == "blockquote":
                kind = "expandable_blockquote" if argument else "blockquote"
                entities.append(_entity(kind, offset, length))
        stack.pop()
        i += 1
    if stack:
        raise _EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    for item in entities:
        item.pop("_lang", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


@dataclasses.dataclass
class _MdEntity:
    """An entity being parsed by the MarkdownV2 parser."""

    type: str
    argument: str
    offset: int
    char_index: int
    out_begin: int


_MD2_TYPES = {
    "Bold": "bold",
    "Italic": "italic",
    "Underline": "underline",
    "Strikethrough": "strikethrough",
    "Spoiler": "spoiler",
    "Code": "code",
    "Pre": "pre",
    "PreCode": "pre",
    "BlockQuote": "blockquote",
    "ExpandableBlockQuote": "expandable_blockquote",
}


def _parse_markdown_v2(text: str, users: Mapping[int, JsonDict]) -> tuple[str, list[JsonDict]]:
    """Parse Telegram's MarkdownV2 parse mode, following tdlib's parse_markdown_v2."""
    n = len(text)

    def at(k: int) -> str:
        return text[k] if 0 <= k < n else "\0"

    def reserved_error(ch: str) -> _EntityParseError:
        return _EntityParseError(
            f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
        )

    def end_error(entry: _MdEntity) -> _EntityParseError:
        return _EntityParseError(
            f"Can't find end of {entry.type} entity at byte offset "
            f"{_byte_offset(text, entry.char_index)}"
        )

    def is_escapable(ch: str) -> bool:
        return "\0" < ch <= "~"

    out: list[str] = []
    u16 = 0
    entities: list[JsonDict] = []
    stack: list[_MdEntity] = []
    have_blockquote = False
    can_start_blockquote = True
    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and is_escapable(at(i + 1)):
            i += 1
            u16 += 1
            out.append(text[i])
            if text[i] != "\r":
                can_start_blockquote = text[i] == "\n"
            i += 1
            continue
        reserved = "_*[]()~`>#+-=|{}.!\n"
        if stack and stack[-1].type in ("Code", "Pre", "PreCode"):
            reserved = "`"
        if c not in reserved:
            u16 += _utf16_len(c)
            if c != "\r":
                can_start_blockquote = False
            out.append(c)
            i += 1
            continue
        is_end = False
        if stack:
            if have_blockquote and c == "\n" and (i + 1 == n or text[i + 1] != ">"):
                is_end = True
            else:
                top_type = stack[-1].type
                is_end = {
                    "Bold": c == "*",
                    "Italic": c == "_" and at(i + 1) != "_",
                    "Code": c == "`",
                    "Pre": c == "`" and at(i + 1) == "`" and at(i + 2) == "`",
                    "PreCode": c == "`" and at(i + 1) == "`" and at(i + 2) == "`",
                    "TextUrl": c == "]",
                    "Underline": c == "_" and at(i + 1) == "_",
                    "Strikethrough": c == "~",
                    "Spoiler": c == "|" and at(i + 1) == "|",
                    "CustomEmoji": c == "]",
                }.get(top_type, False)
        if not is_end:
            entity_index = i
            argument = ""
            new_type: str | None
            if c == "_":
                if at(i + 1) == "_":
                    new_type = "Underline"
                    i += 1
                else:
                    new_type = "Italic"
            elif c == "*":
                new_type = "Bold"
            elif c == "~":
                new_type = "Strikethrough"
            elif c == "|":
                if at(i + 1) != "|":
                    raise reserved_error(c)
                i += 1
                new_type = "Spoiler"
            elif c == "[":
                new_type = "TextUrl"
            elif c == "`":
                if at(i + 1) == "`" and at(i + 2) == "`":
                    i += 3
                    new_type = "Pre"
                    language_end = i
                    while at(language_end) not in _SPACE_CHARS and at(language_end) != "`":
                        language_end += 1
                    if i != language_end and language_end < n and at(language_end) != "`":
                        new_type = "PreCode"
                        argument = text[i:language_end]
                        i = language_end
                    if at(i) in "\n\r":
                        if at(i + 1) in "\n\r" and at(i) != at(i + 1):
                            i += 2
                        else:
                            i += 1
                    i -= 1
                else:
                    new_type = "Code"
            elif c == "!":
                if at(i + 1) != "[":
                    raise reserved_error(c)
                i += 1
                new_type = "CustomEmoji"
            elif c == "\n":
                u16 += 1
                out.append("\n")
                can_start_blockquote = True
                new_type = None
            elif c == ">":
                if not can_start_blockquote:
                    raise reserved_error(c)
                if have_blockquote:
                    new_type = None
                else:
                    new_type = "BlockQuote"
                    have_blockquote = True
            else:
                raise reserved_error(c)
            if new_type is not None:
                stack.append(_MdEntity(new_type, argument, u16, entity_index, len(out)))
            i += 1
            continue
        # end of an entity
        entry_type = stack[-1].type
        if c == "\n" and entry_type != "BlockQuote":
            top = stack[-1]
            ends_spoiler = entry_type == "Spoiler" and (
                top.char_index == i - 2
                or (top.char_index == i - 3 and bool(out) and out[-1] == "\r")
            )
            if not ends_spoiler:
                raise end_error(top)
            stack.pop()
            if stack[-1].type != "BlockQuote":
                raise end_error(stack[-1])
            entry_type = "ExpandableBlockQuote"
        top = stack[-1]
        argument = top.argument
        skip = u16 == top.offset
        new_entity: JsonDict | None = None
        if entry_type in ("Underline", "Spoiler"):
            i += 1
        elif entry_type in ("Pre", "PreCode"):
            i += 2
        elif entry_type in ("TextUrl", "CustomEmoji"):
            if entry_type == "TextUrl" and at(i + 1) != "(":
                url = "".join(out[top.out_begin :])
            else:
                if at(i + 1) != "(":
                    raise _EntityParseError(
                        "The entity must contain a tg://emoji or tg://time URL"
                    )
                i += 2
                url_begin = i
                url_chars: list[str] = []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and is_escapable(at(i + 1)):
                        url_chars.append(text[i + 1])
                        i += 2
                        continue
                    url_chars.append(text[i])
                    i += 1
                if at(i) != ")":
                    raise _EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, url_begin)}"
                    )
                url = "".join(url_chars)
            length = u16 - top.offset
            if entry_type == "TextUrl":
                new_entity = _text_link_entity(top.offset, length, url, users)
                skip = skip or new_entity is None
            else:
                emoji = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
                moment = re.fullmatch(r"tg://time\?unix=(\d+)(?:&format=(\w*))?", url)
                if emoji:
                    new_entity = _entity(
                        "custom_emoji", top.offset, length, custom_emoji_id=emoji.group(1)
                    )
                elif moment:
                    extra: JsonDict = {"unix_time": int(moment.group(1))}
                    if moment.group(2):
                        extra["date_time_format"] = moment.group(2)
                    new_entity = _entity("date_time", top.offset, length, **extra)
                else:
                    raise _EntityParseError("Invalid tg://emoji or tg://time URL specified")
        elif entry_type in ("BlockQuote", "ExpandableBlockQuote"):
            have_blockquote = False
            length = u16 - top.offset
            if length:
                entities.append(_entity(_MD2_TYPES[entry_type], top.offset, length))
            out.append(text[i])
            can_start_blockquote = True
            u16 += 1
            skip = True
        if not skip:
            if new_entity is None:
                extra_fields: JsonDict = {"language": argument} if entry_type == "PreCode" else {}
                new_entity = _entity(
                    _MD2_TYPES[entry_type], top.offset, u16 - top.offset, **extra_fields
                )
            entities.append(new_entity)
        stack.pop()
        i += 1
    if have_blockquote:
        blockquote_type = "BlockQuote"
        if stack[-1].type == "Spoiler" and stack[-1].char_index == n - 2:
            stack.pop()
            blockquote_type = "ExpandableBlockQuote"
        if stack[-1].type == "BlockQuote":
            length = u16 - stack[-1].offset
            if length:
                entities.append(_entity(_MD2_TYPES[blockquote_type], stack[-1].offset, length))
            stack.pop()
    if stack:
        raise end_error(stack[-1])
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _parse_markdown(text: str, users: Mapping[int, JsonDict]) -> tuple[str, list[JsonDict]]:
    """Parse Telegram's legacy Markdown parse mode, following tdlib's parse_markdown."""
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    out: list[str] = []
    u16 = 0
    entities: list[JsonDict] = []
    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and at(i + 1) in "_*`[":
            i += 1
            out.append(text[i])
            u16 += 1
            i += 1
            continue
        if c not in "_*`[":
            out.append(c)
            u16 += _utf16_len(c)
            i += 1
            continue
        begin = i
        end_char = "]" if c == "[" else c
        is_pre = False
        language = ""
        i += 1
        if c == "`" and at(i) == "`" and at(i + 1) == "`":
            i += 2
            is_pre = True
            language_end = i
            while at(language_end) not in _SPACE_CHARS and at(language_end) != "`":
                language_end += 1
            if i != language_end and language_end < n and at(language_end) != "`":
                language = text[i:language_end]
                i = language_end
            if at(i) in "\n\r":
                if at(i + 1) in "\n\r" and at(i) != at(i + 1):
                    i += 2
                else:
                    i += 1
        offset = u16
        while i < n and (
            text[i] != end_char or (is_pre and not (at(i + 1) == "`" and at(i + 2) == "`"))
        ):
            out.append(text[i])
            u16 += _utf16_len(text[i])
            i += 1
        if i >= n:
            raise _EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        if offset != u16:
            length = u16 - offset
            if c == "_":
                entities.append(_entity("italic", offset, length))
            elif c == "*":
                entities.append(_entity("bold", offset, length))
            elif c == "[":
                if at(i + 1) != "(":
                    url = text[begin + 1 : i]
                else:
                    i += 2
                    url_chars: list[str] = []
                    while i < n and text[i] != ")":
                        url_chars.append(text[i])
                        i += 1
                    url = "".join(url_chars)
                link = _text_link_entity(offset, length, url, users)
                if link is not None:
                    entities.append(link)
            elif is_pre:
                extra: JsonDict = {"language": language} if language else {}
                entities.append(_entity("pre", offset, length, **extra))
            else:
                entities.append(_entity("code", offset, length))
        if is_pre:
            i += 2
        i += 1
    return "".join(out), entities


def _is_word_char(ch: str) -> bool:
    """Return whether ``ch`` counts as a word character for entity boundaries."""
    return ch.isalnum() or ch == "_"


_URL_TLDS = (
    "com|org|net|io|fr|be|ch|ca|de|eu|uk|ru|es|it|nl|info|me|app|dev|edu|gov|co|tv|ly|gg|ai"
)
_AUTO_ENTITY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    (
        "url",
        re.compile(
            r"(?<![\w@/.-])(?:(?:https?|ftp)://[^\s<>\"]+|www\.[^\s<>\"]+|"
            rf"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.(?:{_URL_TLDS})"
            r"(?![\w-])(?:[/?#][^\s<>\"]*)?)",
            re.IGNORECASE,
        ),
    ),
    (
        "bot_command",
        re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])"),
    ),
    ("mention", re.compile(r"(?<!\w)@[A-Za-z0-9_]{4,32}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#\w{1,256}")),
    ("cashtag", re.compile(r"(?<![\w$])\$[A-Z]{1,8}(?![\w$])")),
)


def _find_entities(text: str) -> list[JsonDict]:
    """Find the entities Telegram detects by itself (commands, mentions, URLs, e-mails...)."""
    found: list[tuple[int, int, str]] = []
    for type_, pattern in _AUTO_ENTITY_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.start(), match.end()
            if type_ == "url":
                while end > start and text[end - 1] in ".,;:!?'\")]}":
                    end -= 1
            if end <= start or any(s < end and start < e for s, e, _ in found):
                continue
            found.append((start, end, type_))
    found.sort()
    return [
        _entity(type_, _utf16_len(text[:start]), _utf16_len(text[start:end]))
        for start, end, type_ in found
    ]


def _clean_text(
    text: str, entities: list[JsonDict], *, allow_empty: bool
) -> tuple[str, list[JsonDict]]:
    """Apply Telegram's input cleaning and trimming, keeping entity offsets consistent."""
    removed = {"\r", "\u0333", "\u033f", "\u030a"} | {chr(c) for c in range(0x2028, 0x202F)}
    out: list[str] = []
    mapping = [0]  # old UTF-16 position -> new UTF-16 position
    new_pos = 0
    for ch in text:
        width = _utf16_len(ch)
        if ch not in removed:
            out.append(" " if (ord(ch) < 32 and ch != "\n") else ch)
            new_pos += width
        mapping.extend([new_pos] * width)
    cleaned = "".join(out)
    remapped: list[JsonDict] = []
    for item in entities:
        start = mapping[min(item["offset"], len(mapping) - 1)]
        end = mapping[min(item["offset"] + item["length"], len(mapping) - 1)]
        if end > start:
            remapped.append({**item, "offset": start, "length": end - start})
    # rtrim ' ' and '\n'
    stripped = cleaned.rstrip(" \n")
    if not stripped:
        if allow_empty:
            return "", []
        raise _bad_request("text must be non-empty")
    limit = _utf16_len(stripped)
    trimmed: list[JsonDict] = []
    for item in remapped:
        if item["offset"] >= limit:
            continue
        trimmed.append({**item, "length": min(item["length"], limit - item["offset"])})
    # ltrim ' ' and '\n', but never past the first entity
    first_entity = min((item["offset"] for item in trimmed), default=limit)
    lead = 0
    while lead < first_entity and stripped[lead] in " \n":
        lead += 1
    if lead:
        stripped = stripped[lead:]
        trimmed = [{**item, "offset": item["offset"] - lead} for item in trimmed]
    return stripped, trimmed


def _merge_entities(old: list[JsonDict], new: list[JsonDict]) -> list[JsonDict]:
    """Add automatically found entities that do not overlap the explicit ones."""
    merged = list(old)
    for item in new:
        start, end = item["offset"], item["offset"] + item["length"]
        if any(o["offset"] < end and start < o["offset"] + o["length"] for o in old):
            continue
        merged.append(item)
    merged.sort(key=lambda e: (e["offset"], -e["length"]))
    return merged


def _parse_text(
    text: str, parse_mode: str, entities_arg: Any, users: Mapping[int, JsonDict]
) -> tuple[str, list[JsonDict]]:
    """Apply parse_mode (or explicit entities), as the Bot API does before contacting Telegram."""
    if len(text.encode("utf-8")) > (1 << 15):
        raise _bad_request("text is too long")
    mode = parse_mode.lower()
    entities: list[JsonDict] = []
    if text and mode and mode != "none":
        parsers = {
            "html": _parse_html,
            "markdownv2": _parse_markdown_v2,
            "markdown": _parse_markdown,
        }
        parser = parsers.get(mode)
        if parser is None:
            raise _bad_request("unsupported parse_mode")
        try:
            return parser(text, users)
        except _EntityParseError as exc:
            raise _bad_request(f"can't parse entities: {exc}") from None
    if isinstance(entities_arg, list):
        for item in entities_arg:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("type"), str)
                or not isinstance(item.get("offset"), int)
                or not isinstance(item.get("length"), int)
            ):
                raise _bad_request("can't parse MessageEntity: Object expected as MessageEntity")
            head = {"offset": item["offset"], "length": item["length"], "type": item["type"]}
            entities.append(head | {k: v for k, v in item.items() if k not in head})
    return text, entities


def _finalize_text(
    text: str, entities: list[JsonDict], *, allow_empty: bool = False
) -> tuple[str, list[JsonDict]]:
    """Clean and trim the text like Telegram, then add the entities Telegram detects itself."""
    if not text:
        if allow_empty:
            return "", []
        raise _bad_request("text must be non-empty")
    text, entities = _clean_text(text, entities, allow_empty=allow_empty)
    if not text:
        return "", []
    return text, _merge_entities(entities, _find_entities(text))


# --------------------------------------------------------------------------------------------
# Request parameters
# --------------------------------------------------------------------------------------------


def _decode_param(name: str, raw: str) -> Any:
    """Decode one raw parameter like Telegram: JSON values stay typed, strings stay strings."""
    if name in _STRING_PARAMS:
        return raw
    stripped = raw.strip()
    if not stripped:
        return raw
    if (
        stripped[0] in "{["
        or stripped in ("true", "false", "null")
        or _NUMBER_RE.fullmatch(stripped)
    ):
        try:
            return json.loads(stripped)
        except ValueError:
            return raw
    return raw


def _to_int(raw: str, default: int = 0) -> int:
    """Parse an integer prefix like tdlib's to_integer (junk gives 0)."""
    if raw == "":
        return default
    match = re.match(r"-?\d+", raw.strip())
    return int(match.group(0)) if match else 0


class _Args:
    """Raw string arguments of one request, read the way the Bot API server reads them."""

    def __init__(self, raw: dict[str, str], files: dict[str, UploadedFile]) -> None:
        """Keep the raw values and uploaded files."""
        self.raw = raw
        self.files = files

    def get_str(self, name: str) -> str:
        """Return a parameter as a string ('' when absent)."""
        return self.raw.get(name, "")

    def get_int(self, name: str, default: int = 0) -> int:
        """Return a parameter as an integer."""
        return _to_int(self.raw.get(name, ""), default)

    def get_bool(self, name: str) -> bool:
        """Return a parameter as a boolean ('true', 'yes' or '1')."""
        return self.raw.get(name, "").strip().lower() in ("true", "yes", "1")

    def get_json(self, name: str, error: str) -> Any:
        """Return a JSON-encoded parameter decoded, None when absent."""
        value = self.raw.get(name, "")
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _bad_request(error) from None


# --------------------------------------------------------------------------------------------
# Fake media
# --------------------------------------------------------------------------------------------

_FILE_ID_PREFIXES = {
    "photo": "AgACAgQAAxkBAAI",
    "document": "BQACAgQAAxkBAAI",
    "video": "BAACAgQAAxkBAAI",
    "audio": "CQACAgQAAxkBAAI",
    "voice": "AwACAgQAAxkBAAI",
    "video_note": "DQACAgQAAxkBAAI",
    "sticker": "CAACAgQAAxkBAAI",
    "animation": "CgACAgQAAxkBAAI",
    "thumbnail": "AAMCBAADGQEAAI",
}
_FILE_DIRS = {
    "photo": ("photos", ".jpg"),
    "document": ("documents", ".pdf"),
    "video": ("videos", ".mp4"),
    "audio": ("music", ".mp3"),
    "voice": ("voice", ".oga"),
    "video_note": ("video_notes", ".mp4"),
    "sticker": ("stickers", ".webp"),
    "animation": ("animations", ".mp4"),
    "thumbnail": ("thumbnails", ".jpg"),
}


# --------------------------------------------------------------------------------------------
# Thread-safety helper
# --------------------------------------------------------------------------------------------


def _threadsafe(
    func: Callable[Concatenate[BotApiServer, _P], _R],
) -> Callable[Concatenate[BotApiServer, _P], _R]:
    """Run a state-changing method on the server loop when called from another thread."""

    def wrapper(self: BotApiServer, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        loop = self._loop
        if (
            loop is None
            or self._thread is None
            or threading.get_ident() == self._loop_thread_id
            or not loop.is_running()
        ):
            return func(self, *args, **kwargs)
        future: concurrent.futures.Future[_R] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(func(self, *args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    functools.update_wrapper(wrapper, func)
    return wrapper


_NOT_YET = object()


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class BotApiServer:
    """A local fake of https://api.telegram.org for one bot, driven by simulated users."""

    def __init__(
        self,
        token: str = "123456789:TEST-token_for_the_fake_bot_api",  # noqa: S107
        bot_username: str = "sexto_test_bot",
        *,
        bot_first_name: str = "SEXTO assistant",
        can_join_groups: bool = True,
        can_read_all_group_messages: bool = False,
        supports_inline_queries: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        throttle_repeated_polls: bool = False,
    ) -> None:
        """Configure the fake bot; call ``start()`` or use ``async with`` to serve it.

        ``throttle_repeated_polls`` reproduces a quirk of the real server: a getUpdates with the
        same offset as a call made less than 3 s earlier is turned into a 3 s long poll (so
        python-telegram-bot's shutdown call can take up to 3 s). Off by default for speed.
        """
        bot_id = token.split(":", 1)[0]
        if not bot_id.isdigit():
            raise ValueError("token must look like '<bot id>:<secret>'")
        self.token = token
        self.host = host
        self._port = port
        self.throttle_repeated_polls = throttle_repeated_polls
        self.bot_user: JsonDict = {
            "id": int(bot_id),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self._bot_flags = {
            "can_join_groups": can_join_groups,
            "can_read_all_group_messages": can_read_all_group_messages,
            "supports_inline_queries": supports_inline_queries,
        }
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id: int | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._changed = asyncio.Event()
        self._users: dict[int, JsonDict] = {}
        self._chats: dict[int, _Chat] = {}
        self._next_user_id = 100_000_001
        self._next_group_id = 1
        self._updates: list[JsonDict] = []
        self._delivered: set[int] = set()
        self._next_update_id = 10_000
        self._allowed_updates: frozenset[str] = _DEFAULT_ALLOWED_UPDATES
        self._dropped_updates: list[JsonDict] = []
        self._poll_generation = 0
        self._waiting_polls = 0
        self._last_poll: tuple[int, float] | None = None
        self._webhook: JsonDict = {}
        self._calls: list[CallRecord] = []
        self._call_cursors: dict[str, int] = {}
        self._edits: list[EditRecord] = []
        self._callback_queries: dict[str, JsonDict] = {}
        self._answered_callbacks: set[str] = set()
        self._callback_answers: list[CallbackAnswer] = []
        self._next_callback_id = 4_242_000_000_000_000_000
        self._left_chats: list[int] = []
        self._chat_actions: list[ChatActionRecord] = []
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._bot_texts: dict[tuple[str, str], str] = {}
        self._menu_buttons: dict[int, JsonDict] = {}
        self._files: dict[str, JsonDict] = {}
        self._file_paths: dict[str, str] = {}
        self._file_counter = 0
        self._file_requests: list[str] = []
        self._file_downloads: list[str] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._internal_errors: list[BaseException] = []
        self.closed = False
        self.logged_out = False
        self._methods: dict[str, Callable[[_Args], Any]] = {
            "getme": self._api_get_me,
            "logout": self._api_log_out,
            "close": self._api_close,
            "getupdates": self._api_get_updates,
            "setwebhook": self._api_set_webhook,
            "deletewebhook": self._api_delete_webhook,
            "getwebhookinfo": self._api_get_webhook_info,
            "sendmessage": self._api_send_message,
            "editmessagetext": self._api_edit_message_text,
            "editmessagereplymarkup": self._api_edit_message_reply_markup,
            "editmessagecaption": self._api_edit_message_caption,
            "deletemessage": self._api_delete_message,
            "deletemessages": self._api_delete_messages,
            "answercallbackquery": self._api_answer_callback_query,
            "setmycommands": self._api_set_my_commands,
            "getmycommands": self._api_get_my_commands,
            "deletemycommands": self._api_delete_my_commands,
            "setmydescription": functools.partial(self._api_set_bot_text, "description"),
            "getmydescription": functools.partial(self._api_get_bot_text, "description"),
            "setmyshortdescription": functools.partial(
                self._api_set_bot_text, "short_description"
            ),
            "getmyshortdescription": functools.partial(
                self._api_get_bot_text, "short_description"
            ),
            "setmyname": functools.partial(self._api_set_bot_text, "name"),
            "getmyname": functools.partial(self._api_get_bot_text, "name"),
            "setchatmenubutton": self._api_set_chat_menu_button,
            "getchatmenubutton": self._api_get_chat_menu_button,
            "leavechat": self._api_leave_chat,
            "getchat": self._api_get_chat,
            "getchatmember": self._api_get_chat_member,
            "sendchataction": self._api_send_chat_action,
            "getfile": self._api_get_file,
        }
        for kind in _FILE_DIRS:
            if kind != "thumbnail":
                method = "send" + kind.replace("_", "")
                self._methods[method] = functools.partial(self._api_send_media, kind)

    # ----------------------------------------------------------------------------------------
    # Lifecycle
    # ----------------------------------------------------------------------------------------

    async def __aenter__(self) -> BotApiServer:
        """Start serving on a free local port."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop serving; report internal errors of the fake if the test itself passed."""
        await self.stop()
        if exc_info[0] is None:
            self.raise_internal_errors()

    async def start(self) -> None:
        """Bind the HTTP server on ``host`` and a free port and set ``url``."""
        if self._runner is not None:
            raise RuntimeError("server already started")
        self._loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self.url = f"http://{self.host}:{address[1]}"

    async def stop(self) -> None:
        """Release pending long polls and held requests, then close the server."""
        if self._runner is None:
            return
        if self._closing is not None:
            self._closing.set()
        self._notify()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    def raise_internal_errors(self) -> None:
        """Raise if a request crashed inside the fake itself (a bug of the fake, not the bot)."""
        if self._internal_errors:
            errors, self._internal_errors = self._internal_errors, []
            raise RuntimeError(f"the fake Bot API server crashed: {errors!r}") from errors[0]

    def start_in_thread(self, timeout: float = 10.0) -> None:
        """Serve from a background thread with its own event loop (for synchronous tests)."""
        if self._thread is not None:
            raise RuntimeError("server already running in a thread")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-bot-api", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the fake Bot API server did not start in time")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop a server started with ``start_in_thread`` and join its thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._loop = None

    # ----------------------------------------------------------------------------------------
    # Notifications and waits
    # ----------------------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake every waiter so that it re-checks its condition."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _wait_until(
        self,
        check: Callable[[], Any],
        timeout: float,  # noqa: ASYNC109 - the documented test API takes a timeout
        describe: Callable[[], str],
    ) -> Any:
        """Wait on the server loop until ``check`` returns something other than _NOT_YET."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            result = check()
            if result is not _NOT_YET:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BotApiWaitTimeout(describe())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def _on_server_loop(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Await ``coro`` on the server loop, whatever loop the caller runs on."""
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def _run_sync(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        """Run ``coro`` on the server thread and block until it finishes."""
        loop = self._loop
        if self._thread is None or loop is None:
            coro.close()
            raise RuntimeError("synchronous waits need start_in_thread()/ThreadedBotApiServer")
        if threading.get_ident() == self._loop_thread_id:
            coro.close()
            raise RuntimeError("synchronous waits cannot run on the server thread")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout + 5)

    def _describe_chat(self, chat_id: int | None) -> str:
        """Summarise a chat and the recent calls for timeout messages."""
        chat = self._chats.get(chat_id) if chat_id is not None else None
        lines = []
        if chat_id is not None and chat is None:
            lines.append(f"chat {chat_id} is unknown to the server")
        elif chat is not None:
            sent = [chat.messages.get(i) or chat.deleted.get(i) for i in chat.bot_message_ids]
            lines.append(f"bot messages in chat {chat_id} ({len(sent)}, cursor at {chat.cursor}):")
            for index, msg in enumerate(sent):
                if msg is None:
                    continue
                marker = "  consumed" if index < chat.cursor else "  NEW     "
                content = msg.get("text", msg.get("caption", "<media>"))
                lines.append(f"{marker} #{msg['message_id']}: {content!r}")
        failed = [c for c in self._calls if c.ok is False or c.fault][-10:]
        if failed:
            lines.append("failed or faulted calls:")
            lines.extend(f"  {c.short()}" for c in failed)
        recent = [c for c in self._calls if c.method.lower() != "getupdates"][-10:]
        if recent:
            lines.append("last calls (getUpdates omitted):")
            lines.extend(f"  {c.short()}" for c in recent)
        return "\n".join(lines)

    async def _wait_for_message(
        self,
        chat_id: int,
        predicate: Callable[[JsonDict], bool] | None,
        timeout: float,  # noqa: ASYNC109 - the documented test API takes a timeout
    ) -> JsonDict:
        """Return the next unconsumed bot message in ``chat_id`` matching ``predicate``."""

        def check() -> Any:
            chat = self._chats.get(chat_id)
            if chat is None:
                return _NOT_YET
            for index in range(chat.cursor, len(chat.bot_message_ids)):
                message_id = chat.bot_message_ids[index]
                msg = chat.messages.get(message_id) or chat.deleted.get(message_id)
                if msg is not None and (predicate is None or predicate(msg)):
                    chat.cursor = index + 1
                    return copy.deepcopy(msg)
            return _NOT_YET

        def describe() -> str:
            what = "a bot message" if predicate is None else "a bot message matching predicate"
            return f"timed out after {timeout}s waiting for {what} in chat {chat_id}\n" + (
                self._describe_chat(chat_id)
            )

        return cast(JsonDict, await self._wait_until(check, timeout, describe))

    async def wait_for_message(
        self,
        chat_id: int | Mapping[str, Any],
        predicate: Callable[[JsonDict], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the documented test API takes a timeout
    ) -> JsonDict:
        """Return the next not-yet-consumed bot message of a chat (messages before it too)."""
        coro = self._wait_for_message(self._chat_id(chat_id), predicate, timeout)
        return await self._on_server_loop(coro)

    def wait_for_message_sync(
        self,
        chat_id: int | Mapping[str, Any],
        predicate: Callable[[JsonDict], bool] | None = None,
        timeout: float = 10.0,
    ) -> JsonDict:
        """Blocking version of ``wait_for_message`` for the threaded mode."""
        coro = self._wait_for_message(self._chat_id(chat_id), predicate, timeout)
        return self._run_sync(coro, timeout)

    async def _wait_for_call(
        self,
        method: str,
        predicate: Callable[[CallRecord], bool] | None,
        timeout: float,  # noqa: ASYNC109 - the documented test API takes a timeout
    ) -> CallRecord:
        """Return the next unconsumed finished call of ``method`` matching ``predicate``."""
        key = method.lower()

        def check() -> Any:
            start = self._call_cursors.get(key, 0)
            for index in range(start, len(self._calls)):
                record = self._calls[index]
                if record.method.lower() == key and (predicate is None or predicate(record)):
                    self._call_cursors[key] = index + 1
                    return record
            return _NOT_YET

        def describe() -> str:
            same = [c.short() for c in self._calls if c.method.lower() == key]
            lines = [f"timed out after {timeout}s waiting for a {method} call"]
            lines.append(f"{method} calls so far ({len(same)}):")
            lines.extend(f"  {line}" for line in same[-10:])
            others = [c.short() for c in self._calls if c.method.lower() != "getupdates"]
            lines.append("last calls (getUpdates omitted):")
            lines.extend(f"  {line}" for line in others[-10:])
            return "\n".join(lines)

        return cast(CallRecord, await self._wait_until(check, timeout, describe))

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[CallRecord], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the documented test API takes a timeout
    ) -> CallRecord:
        """Return the next not-yet-consumed call of ``method`` (case-insensitive)."""
        return await self._on_server_loop(self._wait_for_call(method, predicate, timeout))

    def wait_for_call_sync(
        self,
        method: str,
        predicate: Callable[[CallRecord], bool] | None = None,
        timeout: float = 10.0,
    ) -> CallRecord:
        """Blocking version of ``wait_for_call`` for the threaded mode."""
        return self._run_sync(self._wait_for_call(method, predicate, timeout), timeout)

    async def _wait_for_callback_answer(
        self,
        callback_query_id: str,
        timeout: float,  # noqa: ASYNC109 - the documented test API takes a timeout
    ) -> CallbackAnswer:
        """Return the answer given to one callback query."""

        def check() -> Any:
            for answer in self._callback_answers:
                if answer.callback_query_id == callback_query_id:
                    return answer
            return _NOT_YET

        def describe() -> str:
            return (
                f"timed out after {timeout}s waiting for answerCallbackQuery of "
                f"{callback_query_id}; answers so far: {self._callback_answers}\n"
                + self._describe_chat(None)
            )

        return cast(CallbackAnswer, await self._wait_until(check, timeout, describe))

    async def wait_for_callback_answer(
        self,
        callback_query: str | Mapping[str, Any],
        timeout: float = 10.0,  # noqa: ASYNC109 - the documented test API takes a timeout
    ) -> CallbackAnswer:
        """Wait until the bot answers the given callback query (id or press_button result)."""
        query_id = callback_query if isinstance(callback_query, str) else callback_query["id"]
        return await self._on_server_loop(self._wait_for_callback_answer(query_id, timeout))

    def wait_for_callback_answer_sync(
        self, callback_query: str | Mapping[str, Any], timeout: float = 10.0
    ) -> CallbackAnswer:
        """Blocking version of ``wait_for_callback_answer``."""
        query_id = callback_query if isinstance(callback_query, str) else callback_query["id"]
        return self._run_sync(self._wait_for_callback_answer(query_id, timeout), timeout)

    async def _wait_for_delivery(self, timeout: float) -> None:  # noqa: ASYNC109 - the documented test API takes a timeout
        """Wait until every queued update was returned by getUpdates at least once."""

        def check() -> Any:
            pending = [u for u in self._updates if u["update_id"] not in self._delivered]
            return None if not pending else _NOT_YET

        def describe() -> str:
            pending = [u for u in self._updates if u["update_id"] not in self._delivered]
            return f"timed out after {timeout}s; undelivered updates: {pending}"

        await self._wait_until(check, timeout, describe)

    async def wait_for_delivery(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - the documented test API takes a timeout
        """Wait until the bot has fetched every queued update."""
        await self._on_server_loop(self._wait_for_delivery(timeout))

    def wait_for_delivery_sync(self, timeout: float = 10.0) -> None:
        """Blocking version of ``wait_for_delivery``."""
        self._run_sync(self._wait_for_delivery(timeout), timeout)

    async def _wait_until_true(
        self,
        condition: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109 - the documented test API takes a timeout
        description: str,
    ) -> None:
        """Wait until ``condition()`` is true."""
        await self._wait_until(
            lambda: None if condition() else _NOT_YET,
            timeout,
            lambda: (
                f"timed out after {timeout}s waiting until {description}\n"
                + self._describe_chat(None)
            ),
        )

    async def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - the documented test API takes a timeout
        description: str = "condition",
    ) -> None:
        """Wait until ``condition()`` (evaluated on the server loop after each change) holds."""
        await self._on_server_loop(self._wait_until_true(condition, timeout, description))

    def wait_until_sync(
        self, condition: Callable[[], bool], timeout: float = 10.0, description: str = "condition"
    ) -> None:
        """Blocking version of ``wait_until``."""
        self._run_sync(self._wait_until_true(condition, timeout, description), timeout)

    # ----------------------------------------------------------------------------------------
    # Simulated users and chats
    # ----------------------------------------------------------------------------------------

    def _user_id(self, user: UserRef) -> int:
        """Return the id of a user given as dict or id."""
        return int(user if isinstance(user, int) else user["id"])

    def _chat_id(self, chat: ChatRef) -> int:
        """Return the id of a chat given as dict or id."""
        return int(chat if isinstance(chat, int) else chat["id"])

    def _user(self, user: UserRef) -> JsonDict:
        """Return the stored User object."""
        user_id = self._user_id(user)
        if user_id not in self._users:
            raise KeyError(f"unknown user {user_id}; create it with add_user()")
        return self._users[user_id]

    def _chat(self, chat: ChatRef) -> _Chat:
        """Return the stored chat state."""
        chat_id = self._chat_id(chat)
        if chat_id not in self._chats:
            raise KeyError(f"unknown chat {chat_id}; create it with add_user()/add_group()")
        return self._chats[chat_id]

    @_threadsafe
    def add_user(
        self,
        user_id: int | None = None,
        first_name: str = "Test",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "fr",
        is_premium: bool = False,
        started: bool = False,
    ) -> JsonDict:
        """Create a user and its private chat with the bot (chat id = user id).

        With ``started=False`` (the default, like a real user who never opened the bot), the bot
        can only write to the user once the user sent it something; otherwise Telegram answers
        ``403 Forbidden: bot can't initiate conversation with a user``.
        """
        if user_id is None:
            user_id = self._next_user_id
            self._next_user_id += 1
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        if is_premium:
            user["is_premium"] = True
        self._users[user_id] = user
        info: JsonDict = {"id": user_id, "first_name": first_name}
        if last_name:
            info["last_name"] = last_name
        if username:
            info["username"] = username
        info["type"] = "private"
        self._chats[user_id] = _Chat(info=info, started=started)
        return copy.deepcopy(user)

    def _new_group_id(self, supergroup: bool) -> int:
        """Allocate a realistic group, supergroup or channel id."""
        number = self._next_group_id
        self._next_group_id += 1
        return -(1_001_500_000_000 + number) if supergroup else -(4_500_000_000 + number)

    @_threadsafe
    def add_group(
        self,
        title: str = "Test group",
        *,
        supergroup: bool = False,
        username: str | None = None,
        members: Iterable[UserRef] = (),
    ) -> JsonDict:
        """Create a group (or supergroup) the bot is not a member of yet."""
        chat_id = self._new_group_id(supergroup)
        info: JsonDict = {"id": chat_id, "title": title}
        if username:
            info["username"] = username
        info["type"] = "supergroup" if supergroup else "group"
        if not supergroup:
            info["all_members_are_administrators"] = True
            info["accepted_gift_types"] = {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            }
        chat = _Chat(info=info, bot_status="left")
        for member in members:
            chat.members[self._user_id(member)] = "member"
        self._chats[chat_id] = chat
        return copy.deepcopy(info)

    @_threadsafe
    def add_channel(self, title: str = "Test channel", *, username: str | None = None) -> JsonDict:
        """Create a channel (useful as the origin of forwarded messages)."""
        chat_id = self._new_group_id(True)
        info: JsonDict = {"id": chat_id, "title": title}
        if username:
            info["username"] = username
        info["type"] = "channel"
        self._chats[chat_id] = _Chat(info=info, bot_status="left")
        return copy.deepcopy(info)

    @_threadsafe
    def add_member(self, group: ChatRef, user: UserRef, status: str = "member") -> None:
        """Make a user a member (or administrator/creator) of a group."""
        self._chat(group).members[self._user_id(user)] = status

    def _chat_member(self, user: JsonDict, status: str) -> JsonDict:
        """Build a ChatMember object for ``user`` with ``status``."""
        member: JsonDict = {"user": copy.deepcopy(user), "status": status}
        if status == "administrator":
            member.update(
                {
                    "can_be_edited": False,
                    "can_manage_chat": True,
                    "can_change_info": True,
                    "can_delete_messages": True,
                    "can_invite_users": True,
                    "can_restrict_members": True,
                    "can_pin_messages": True,
                    "can_promote_members": False,
                    "can_manage_video_chats": True,
                    "can_post_stories": True,
                    "can_edit_stories": True,
                    "can_delete_stories": True,
                    "is_anonymous": False,
                    "can_manage_voice_chats": True,
                }
            )
        elif status == "creator":
            member["is_anonymous"] = False
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _emit_my_chat_member(self, chat: _Chat, actor: JsonDict, old: str, new: str) -> JsonDict:
        """Queue a my_chat_member update for a change of the bot's status."""
        payload: JsonDict = {
            "chat": copy.deepcopy(chat.info),
            "from": copy.deepcopy(actor),
            "date": _unix_now(),
            "old_chat_member": self._chat_member(self.bot_user, old),
            "new_chat_member": self._chat_member(self.bot_user, new),
        }
        self._enqueue("my_chat_member", payload)
        return payload

    @_threadsafe
    def add_bot_to_group(
        self, group: ChatRef, by: UserRef, *, status: str = "member"
    ) -> tuple[JsonDict, JsonDict]:
        """Add the bot to a group; emits my_chat_member then a new_chat_members message."""
        chat = self._chat(group)
        actor = self._user(by)
        if chat.type not in ("group", "supergroup"):
            raise ValueError("the bot can only be added to groups and supergroups")
        chat.members.setdefault(actor["id"], "creator")
        old = chat.bot_status
        chat.bot_status = status
        update = self._emit_my_chat_member(chat, actor, old, status)
        bot = copy.deepcopy(self.bot_user)
        content = {
            "new_chat_participant": bot,
            "new_chat_member": copy.deepcopy(bot),
            "new_chat_members": [copy.deepcopy(bot)],
        }
        message = self._store_message(chat, actor, content)
        self._enqueue("message", message)
        return update, copy.deepcopy(message)

    @_threadsafe
    def remove_bot_from_group(self, group: ChatRef, by: UserRef) -> JsonDict:
        """Kick the bot from a group; emits my_chat_member (-> kicked) and a service message."""
        chat = self._chat(group)
        actor = self._user(by)
        old = chat.bot_status
        chat.bot_status = "kicked"
        update = self._emit_my_chat_member(chat, actor, old, "kicked")
        bot = copy.deepcopy(self.bot_user)
        content = {"left_chat_participant": bot, "left_chat_member": copy.deepcopy(bot)}
        self._store_message(chat, actor, content)
        return update

    @_threadsafe
    def block_bot(self, user: UserRef) -> JsonDict:
        """The user blocks the bot: my_chat_member member -> kicked; sends then fail with 403."""
        chat = self._chat(user)
        old = chat.bot_status
        chat.bot_status = "kicked"
        return self._emit_my_chat_member(chat, self._user(user), old, "kicked")

    @_threadsafe
    def unblock_bot(self, user: UserRef) -> JsonDict:
        """The user unblocks (restarts) the bot: my_chat_member kicked -> member."""
        chat = self._chat(user)
        old = chat.bot_status
        chat.bot_status = "member"
        chat.started = True
        return self._emit_my_chat_member(chat, self._user(user), old, "member")

    def _register_file(self, kind: str, size: int, *, unique_id: str | None = None) -> JsonDict:
        """Create a fake file (file_id, file_unique_id, file_size) that getFile can resolve."""
        self._file_counter += 1
        file_id = _FILE_ID_PREFIXES[kind] + secrets.token_urlsafe(48)[:56]
        unique = (
            unique_id or ("AQAD" if kind == "photo" else "AgAD") + secrets.token_urlsafe(9)[:12]
        )
        directory, extension = _FILE_DIRS[kind]
        path = f"{directory}/file_{self._file_counter}{extension}"
        info = {"file_id": file_id, "file_unique_id": unique, "file_size": size}
        self._files[file_id] = {**info, "file_path": path}
        self._file_paths[path] = file_id
        return info

    def _photo_sizes(self) -> list[JsonDict]:
        """Return the PhotoSize list Telegram builds for one photo, smallest first."""
        sizes = []
        for width, height, size in ((90, 67, 1_271), (320, 240, 15_733), (800, 600, 63_291)):
            sizes.append({**self._register_file("photo", size), "width": width, "height": height})
        sizes.append({**self._register_file("photo", 112_417), "width": 1280, "height": 960})
        return sizes

    def _thumbnail(self, width: int, height: int) -> JsonDict:
        """Return a PhotoSize used as a thumbnail."""
        return {**self._register_file("thumbnail", 4_512), "width": width, "height": height}

    def _media_object(self, kind: str, options: Mapping[str, Any]) -> Any:
        """Build a realistic media object (PhotoSize list, Video, Document, ...)."""
        if kind == "photo":
            return self._photo_sizes()
        if kind == "video":
            return {
                "duration": options.get("duration", 12),
                "width": 1280,
                "height": 720,
                "file_name": options.get("file_name", "video.mp4"),
                "mime_type": "video/mp4",
                "thumbnail": self._thumbnail(320, 180),
                **self._register_file("video", options.get("file_size", 2_345_678)),
            }
        if kind == "document":
            return {
                "file_name": options.get("file_name", "document.pdf"),
                "mime_type": options.get("mime_type", "application/pdf"),
                **self._register_file("document", options.get("file_size", 84_512)),
            }
        if kind == "voice":
            return {
                "duration": options.get("duration", 4),
                "mime_type": "audio/ogg",
                **self._register_file("voice", options.get("file_size", 12_044)),
            }
        if kind == "video_note":
            return {
                "duration": options.get("duration", 6),
                "length": 384,
                "thumbnail": self._thumbnail(240, 240),
                **self._register_file("video_note", options.get("file_size", 512_337)),
            }
        if kind == "sticker":
            return {
                "width": 512,
                "height": 512,
                "emoji": options.get("emoji", "👍"),
                "set_name": options.get("set_name", "HotCherry"),
                "is_animated": False,
                "is_video": False,
                "type": "regular",
                "thumbnail": self._thumbnail(128, 128),
                **self._register_file("sticker", options.get("file_size", 23_104)),
            }
        if kind == "animation":
            return {
                "file_name": options.get("file_name", "animation.gif.mp4"),
                "mime_type": "video/mp4",
                "duration": options.get("duration", 3),
                "width": 320,
                "height": 240,
                "thumbnail": self._thumbnail(320, 240),
                **self._register_file("animation", options.get("file_size", 231_450)),
            }
        if kind == "audio":
            return {
                "duration": options.get("duration", 183),
                "performer": options.get("performer", "Test Artist"),
                "title": options.get("title", "Test Song"),
                "file_name": options.get("file_name", "song.mp3"),
                "mime_type": "audio/mpeg",
                **self._register_file("audio", options.get("file_size", 4_404_123)),
            }
        raise ValueError(f"unknown media kind {kind!r}")

    def _media_content(
        self, kind: str, options: Mapping[str, Any], *, reuse: JsonDict | None = None
    ) -> JsonDict:
        """Build the message content fields for one media kind (optionally an existing file)."""
        media = self._media_object(kind, options)
        if reuse is not None:
            target = media[-1] if kind == "photo" else media
            for key in ("file_id", "file_unique_id", "file_size"):
                target[key] = reuse[key]
        content: JsonDict = {kind: media}
        if kind == "animation":
            content["document"] = {
                "file_name": media["file_name"],
                "mime_type": media["mime_type"],
                "thumbnail": copy.deepcopy(media["thumbnail"]),
                "file_id": media["file_id"],
                "file_unique_id": media["file_unique_id"],
                "file_size": media["file_size"],
            }
        return content

    def _forward_fields(self, origin: OriginRef, date: int) -> JsonDict:
        """Build forward_origin (and the legacy forward_* fields Telegram still sends)."""
        if isinstance(origin, str):
            return {
                "forward_origin": {
                    "type": "hidden_user",
                    "date": date,
                    "sender_user_name": origin,
                },
                "forward_sender_name": origin,
                "forward_date": date,
            }
        if isinstance(origin, int):
            origin = self._chat(origin).info if origin < 0 else self._user(origin)
        origin = copy.deepcopy(dict(origin))
        if "type" not in origin:
            return {
                "forward_origin": {"type": "user", "date": date, "sender_user": origin},
                "forward_from": copy.deepcopy(origin),
                "forward_date": date,
            }
        if origin["type"] == "channel":
            message_id = (
                self._chats[origin["id"]].next_message_id if origin["id"] in (self._chats) else 1
            )
            if origin["id"] in self._chats:
                self._chats[origin["id"]].next_message_id += 1
            return {
                "forward_origin": {
                    "type": "channel",
                    "date": date,
                    "chat": origin,
                    "message_id": message_id,
                },
                "forward_from_chat": copy.deepcopy(origin),
                "forward_from_message_id": message_id,
                "forward_date": date,
            }
        return {
            "forward_origin": {"type": "chat", "date": date, "sender_chat": origin},
            "forward_from_chat": copy.deepcopy(origin),
            "forward_date": date,
        }

    def _store_message(
        self,
        chat: _Chat,
        sender: JsonDict | None,
        content: Mapping[str, Any],
        *,
        reply_to: JsonDict | None = None,
        forward: JsonDict | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> JsonDict:
        """Store a new message in ``chat`` and return it (field order like the Bot API)."""
        message_id = chat.next_message_id
        chat.next_message_id += 1
        message: JsonDict = {"message_id": message_id}
        if sender is not None:
            message["from"] = copy.deepcopy(sender)
        message["chat"] = copy.deepcopy(chat.info)
        message["date"] = _unix_now()
        if forward:
            message.update(forward)
        if reply_to is not None:
            replied = copy.deepcopy(reply_to)
            replied.pop("reply_to_message", None)
            message["reply_to_message"] = replied
        message.update(copy.deepcopy(dict(content)))
        if extra:
            message.update(copy.deepcopy(dict(extra)))
        chat.messages[message_id] = message
        return message

    def _bot_receives(self, chat: _Chat, message: JsonDict) -> bool:
        """Apply membership and privacy-mode rules to a message written by a user."""
        if chat.type == "private":
            return True
        if chat.bot_status not in ("member", "administrator", "creator"):
            return False
        if self._bot_flags["can_read_all_group_messages"] or chat.bot_status != "member":
            return True
        if any(key in message for key in _SERVICE_MESSAGE_FIELDS):
            return True
        reply = message.get("reply_to_message")
        if reply and reply.get("from", {}).get("id") == self.bot_user["id"]:
            return True
        text = str(message.get("text") or message.get("caption") or "")
        entities: list[JsonDict] = list(
            message.get("entities") or message.get("caption_entities") or []
        )
        username = f"@{self.bot_user['username']}".lower()
        for item in entities:
            if item["type"] != "bot_command":
                continue
            command = _utf16_slice(text, item["offset"], item["length"])
            if "@" not in command or command.lower().endswith(username):
                return True
        return False

    def _user_message(
        self,
        user: UserRef,
        content: Mapping[str, Any],
        *,
        chat: ChatRef | None,
        reply_to: JsonDict | int | None,
        forward_from: OriginRef | None,
    ) -> JsonDict:
        """Store a message written by a simulated user and queue it for the bot."""
        sender = self._user(user)
        target = self._chat(chat if chat is not None else sender["id"])
        if target.type == "private":
            if target.id != sender["id"]:
                raise ValueError("a user can only write in its own private chat with the bot")
            if target.bot_status == "kicked":
                self.unblock_bot(sender["id"])
            target.started = True
        else:
            target.members.setdefault(sender["id"], "member")
        replied: JsonDict | None = None
        if reply_to is not None:
            reply_id = reply_to if isinstance(reply_to, int) else int(reply_to["message_id"])
            replied = target.messages.get(reply_id)
            if replied is None:
                raise LookupError(f"message {reply_id} does not exist in chat {target.id}")
        forward = (
            self._forward_fields(forward_from, _unix_now() - 3600)
            if forward_from is not None
            else None
        )
        message = self._store_message(target, sender, content, reply_to=replied, forward=forward)
        if self._bot_receives(target, message):
            self._enqueue("message", message)
        return copy.deepcopy(message)

    def _text_content(self, key: str, text: str, entities: list[JsonDict] | None) -> JsonDict:
        """Build text (or caption) content with Telegram-detected entities."""
        found = entities if entities is not None else _find_entities(text)
        content: JsonDict = {key: text}
        if found:
            content["entities" if key == "text" else "caption_entities"] = copy.deepcopy(found)
        return content

    @_threadsafe
    def send_text(
        self,
        user: UserRef,
        text: str,
        *,
        chat: ChatRef | None = None,
        reply_to: JsonDict | int | None = None,
        entities: list[JsonDict] | None = None,
        forward_from: OriginRef | None = None,
    ) -> JsonDict:
        """The user sends a text message (commands get bot_command entities); returns it."""
        if not text:
            raise ValueError("Telegram users cannot send empty messages")
        content = self._text_content("text", text, entities)
        return self._user_message(
            user, content, chat=chat, reply_to=reply_to, forward_from=forward_from
        )

    def _send_media_as_user(
        self,
        kind: str,
        user: UserRef,
        caption: str | None,
        chat: ChatRef | None,
        reply_to: JsonDict | int | None,
        forward_from: OriginRef | None,
        options: Mapping[str, Any],
    ) -> JsonDict:
        """Build and queue a media message written by a user."""
        content = self._media_content(kind, options)
        if caption:
            content.update(self._text_content("caption", caption, None))
        return self._user_message(
            user, content, chat=chat, reply_to=reply_to, forward_from=forward_from
        )

    @_threadsafe
    def send_photo(
        self,
        user: UserRef,
        *,
        caption: str | None = None,
        chat: ChatRef | None = None,
        reply_to: JsonDict | int | None = None,
        forward_from: OriginRef | None = None,
    ) -> JsonDict:
        """The user sends a photo (four PhotoSize entries, smallest first)."""
        return self._send_media_as_user("photo", user, caption, chat, reply_to, forward_from, {})

    @_threadsafe
    def forward_photo(
        self,
        user: UserRef,
        from_chat: OriginRef,
        *,
        caption: str | None = None,
        chat: ChatRef | None = None,
    ) -> JsonDict:
        """The user forwards a photo from a user, channel, group or hidden name (a str)."""
        return self._send_media_as_user("photo", user, caption, chat, None, from_chat, {})

    @_threadsafe
    def forward_text(
        self, user: UserRef, text: str, from_chat: OriginRef, *, chat: ChatRef | None = None
    ) -> JsonDict:
        """The user forwards a text message from a user, channel, group or hidden name."""
        return self.send_text(user, text, chat=chat, forward_from=from_chat)

    @_threadsafe
    def send_video(
        self,
        user: UserRef,
        *,
        caption: str | None = None,
        chat: ChatRef | None = None,
        duration: int = 12,
        forward_from: OriginRef | None = None,
    ) -> JsonDict:
        """The user sends a video."""
        options = {"duration": duration}
        return self._send_media_as_user("video", user, caption, chat, None, forward_from, options)

    @_threadsafe
    def send_document(
        self,
        user: UserRef,
        *,
        caption: str | None = None,
        chat: ChatRef | None = None,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        forward_from: OriginRef | None = None,
    ) -> JsonDict:
        """The user sends a document."""
        options = {"file_name": file_name, "mime_type": mime_type}
        return self._send_media_as_user(
            "document", user, caption, chat, None, forward_from, options
        )

    @_threadsafe
    def send_voice(
        self,
        user: UserRef,
        *,
        caption: str | None = None,
        chat: ChatRef | None = None,
        duration: int = 4,
    ) -> JsonDict:
        """The user sends a voice message."""
        options = {"duration": duration}
        return self._send_media_as_user("voice", user, caption, chat, None, None, options)

    @_threadsafe
    def send_video_note(
        self, user: UserRef, *, chat: ChatRef | None = None, duration: int = 6
    ) -> JsonDict:
        """The user sends a round video note."""
        options = {"duration": duration}
        return self._send_media_as_user("video_note", user, None, chat, None, None, options)

    @_threadsafe
    def send_sticker(
        self, user: UserRef, *, chat: ChatRef | None = None, emoji: str = "👍"
    ) -> JsonDict:
        """The user sends a sticker."""
        return self._send_media_as_user("sticker", user, None, chat, None, None, {"emoji": emoji})

    @_threadsafe
    def send_animation(
        self, user: UserRef, *, caption: str | None = None, chat: ChatRef | None = None
    ) -> JsonDict:
        """The user sends a GIF (Telegram sets both ``animation`` and ``document``)."""
        return self._send_media_as_user("animation", user, caption, chat, None, None, {})

    @_threadsafe
    def send_audio(
        self,
        user: UserRef,
        *,
        caption: str | None = None,
        chat: ChatRef | None = None,
        title: str = "Test Song",
    ) -> JsonDict:
        """The user sends an audio file."""
        return self._send_media_as_user("audio", user, caption, chat, None, None, {"title": title})

    @_threadsafe
    def send_location(
        self,
        user: UserRef,
        latitude: float = 48.858_37,
        longitude: float = 2.294_481,
        *,
        chat: ChatRef | None = None,
    ) -> JsonDict:
        """The user shares a location."""
        content = {"location": {"latitude": latitude, "longitude": longitude}}
        return self._user_message(user, content, chat=chat, reply_to=None, forward_from=None)

    @_threadsafe
    def send_contact(
        self,
        user: UserRef,
        phone_number: str = "+33612345678",
        first_name: str = "Contact",
        *,
        contact_user_id: int | None = None,
        chat: ChatRef | None = None,
    ) -> JsonDict:
        """The user shares a contact."""
        contact: JsonDict = {"phone_number": phone_number, "first_name": first_name}
        if contact_user_id is not None:
            contact["user_id"] = contact_user_id
        return self._user_message(
            user, {"contact": contact}, chat=chat, reply_to=None, forward_from=None
        )

    @_threadsafe
    def send_message(
        self,
        user: UserRef,
        content: Mapping[str, Any],
        *,
        chat: ChatRef | None = None,
        reply_to: JsonDict | int | None = None,
    ) -> JsonDict:
        """The user sends a message with arbitrary content fields (escape hatch)."""
        return self._user_message(user, content, chat=chat, reply_to=reply_to, forward_from=None)

    @_threadsafe
    def edit_text(self, user: UserRef, message: JsonDict | int, text: str) -> JsonDict:
        """The user edits one of its text messages; queues an ``edited_message`` update."""
        sender = self._user(user)
        chat_id = sender["id"] if isinstance(message, int) else int(message["chat"]["id"])
        chat = self._chat(chat_id)
        message_id = message if isinstance(message, int) else int(message["message_id"])
        stored = chat.messages.get(message_id)
        if stored is None or stored.get("from", {}).get("id") != sender["id"]:
            raise LookupError(f"user {sender['id']} has no message {message_id} in {chat_id}")
        stored.pop("entities", None)
        stored.update(self._text_content("text", text, None))
        stored["edit_date"] = _unix_now()
        if self._bot_receives(chat, stored):
            self._enqueue("edited_message", stored)
        return copy.deepcopy(stored)

    @_threadsafe
    def press_button(
        self,
        user: UserRef,
        message: JsonDict | int,
        callback_data: str | None = None,
        *,
        text: str | None = None,
        chat: ChatRef | None = None,
    ) -> JsonDict:
        """The user presses an inline button (by callback_data or by text); returns the query."""
        sender = self._user(user)
        if isinstance(message, int):
            chat_id = self._chat_id(chat) if chat is not None else sender["id"]
            message_id = message
        else:
            chat_id = int(message["chat"]["id"])
            message_id = int(message["message_id"])
        target = self._chat(chat_id)
        stored = target.messages.get(message_id)
        if stored is None:
            state = "was deleted" if message_id in target.deleted else "does not exist"
            raise LookupError(f"message {message_id} in chat {chat_id} {state}")
        rows = (stored.get("reply_markup") or {}).get("inline_keyboard", [])
        buttons = [button for row in rows for button in row]
        chosen = None
        for button in buttons:
            if (callback_data is not None and button.get("callback_data") == callback_data) or (
                callback_data is None and text is not None and button.get("text") == text
            ):
                chosen = button
                break
        if chosen is None or "callback_data" not in chosen:
            available = [(b.get("text"), b.get("callback_data")) for b in buttons]
            wanted = (
                f"callback_data={callback_data!r}"
                if callback_data is not None
                else (f"text={text!r}")
            )
            raise LookupError(
                f"message {message_id} in chat {chat_id} has no callback button with {wanted}; "
                f"its buttons (text, callback_data) are {available}"
            )
        self._next_callback_id += 1
        query_id = str(self._next_callback_id)
        chat_instance = str(-((chat_id * 6_364_136_223_846_793_005 + 1) % (1 << 63)))
        query: JsonDict = {
            "id": query_id,
            "from": copy.deepcopy(sender),
            "message": copy.deepcopy(stored),
            "chat_instance": chat_instance,
            "data": chosen["callback_data"],
        }
        self._callback_queries[query_id] = query
        self._enqueue("callback_query", query)
        return copy.deepcopy(query)

    @_threadsafe
    def press_forged(self, user: UserRef, message: JsonDict, data: str) -> str:
        """A modified client: ``user`` sends a callback query with any ``data`` on ``message``
        (a button it does not have, someone else's, or an old one); returns the query's id."""
        self._next_callback_id += 1
        query_id = str(self._next_callback_id)
        query: JsonDict = {
            "id": query_id,
            "from": copy.deepcopy(self._user(user)),
            "message": copy.deepcopy(dict(message)),
            "chat_instance": str(-abs(int(message["chat"]["id"]))),
            "data": data,
        }
        self._callback_queries[query_id] = query
        self._enqueue("callback_query", query)
        return query_id

    @_threadsafe
    def send_update(self, update: Mapping[str, Any]) -> JsonDict:
        """Queue a raw update (its ``update_id`` is assigned by the server)."""
        fields = {k: v for k, v in update.items() if k != "update_id"}
        if len(fields) != 1:
            raise ValueError("an update has exactly one payload field")
        ((kind, payload),) = fields.items()
        queued = self._enqueue(kind, copy.deepcopy(payload))
        return copy.deepcopy(queued) if queued else {}

    def _enqueue(self, kind: str, payload: JsonDict) -> JsonDict | None:
        """Append an update to the queue unless its type is filtered out by allowed_updates."""
        if kind not in self._allowed_updates:
            self._dropped_updates.append({kind: copy.deepcopy(payload)})
            return None
        update = {"update_id": self._next_update_id, kind: copy.deepcopy(payload)}
        self._next_update_id += 1
        self._updates.append(update)
        self._notify()
        return update

    # ----------------------------------------------------------------------------------------
    # Observations
    # ----------------------------------------------------------------------------------------

    @_threadsafe
    def sent_messages(self, chat: ChatRef, *, include_deleted: bool = True) -> list[JsonDict]:
        """Return the bot's messages in a chat, in order, in their current (edited) state."""
        state = self._chats.get(self._chat_id(chat))
        if state is None:
            return []
        result = []
        for message_id in state.bot_message_ids:
            message = state.messages.get(message_id)
            if message is None and include_deleted:
                message = state.deleted.get(message_id)
            if message is not None:
                result.append(copy.deepcopy(message))
        return result

    @_threadsafe
    def history(self, chat: ChatRef) -> list[JsonDict]:
        """Return every visible (not deleted) message of a chat, users' and bot's, in order."""
        state = self._chats.get(self._chat_id(chat))
        if state is None:
            return []
        return [copy.deepcopy(state.messages[i]) for i in sorted(state.messages)]

    @_threadsafe
    def deleted_messages(self, chat: ChatRef) -> list[JsonDict]:
        """Return the messages deleted in a chat (as they were when deleted), in order."""
        state = self._chats.get(self._chat_id(chat))
        if state is None:
            return []
        return [copy.deepcopy(state.deleted[i]) for i in sorted(state.deleted)]

    @_threadsafe
    def reply_keyboard(self, chat: ChatRef) -> JsonDict | None:
        """Return the custom reply keyboard currently shown in a chat, if any."""
        state = self._chats.get(self._chat_id(chat))
        return copy.deepcopy(state.reply_keyboard) if state else None

    @_threadsafe
    def bot_status(self, chat: ChatRef) -> str:
        """Return the bot's membership status in a chat (member, left, kicked, ...)."""
        return self._chat(chat).bot_status

    @_threadsafe
    def get_commands(
        self, scope: str | Mapping[str, Any] = "default", language_code: str = ""
    ) -> list[JsonDict]:
        """Return the commands set for a scope (key or BotCommandScope dict) and language."""
        key = scope if isinstance(scope, str) else self._scope_key(dict(scope))
        return copy.deepcopy(self._commands.get((key, language_code), []))

    @property
    def calls(self) -> list[CallRecord]:
        """Every request received, in order of completion."""
        return self._snapshot(lambda: list(self._calls))

    def calls_of(self, method: str) -> list[CallRecord]:
        """Return the calls of one method (case-insensitive), in order of completion."""
        key = method.lower()
        return self._snapshot(lambda: [c for c in self._calls if c.method.lower() == key])

    @property
    def edits(self) -> list[EditRecord]:
        """Every successful edit the bot made."""
        return self._snapshot(lambda: list(self._edits))

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        """Every accepted answerCallbackQuery."""
        return self._snapshot(lambda: list(self._callback_answers))

    @property
    def left_chats(self) -> list[int]:
        """Ids of the chats the bot left with leaveChat."""
        return self._snapshot(lambda: list(self._left_chats))

    @property
    def chat_actions(self) -> list[ChatActionRecord]:
        """Every accepted sendChatAction."""
        return self._snapshot(lambda: list(self._chat_actions))

    @property
    def commands(self) -> dict[tuple[str, str], list[JsonDict]]:
        """Commands by (scope key, language code); scope keys look like 'default', 'chat:42'."""
        return self._snapshot(lambda: copy.deepcopy(self._commands))

    @property
    def file_requests(self) -> list[str]:
        """file_id of every getFile call (successful or not)."""
        return self._snapshot(lambda: list(self._file_requests))

    @property
    def file_downloads(self) -> list[str]:
        """file_path of every file downloaded from /file/bot<token>/."""
        return self._snapshot(lambda: list(self._file_downloads))

    @property
    def pending_updates(self) -> list[JsonDict]:
        """Updates not yet confirmed by a getUpdates offset."""
        return self._snapshot(lambda: copy.deepcopy(self._updates))

    @property
    def dropped_updates(self) -> list[JsonDict]:
        """Updates never queued because allowed_updates excluded their type."""
        return self._snapshot(lambda: copy.deepcopy(self._dropped_updates))

    @property
    def waiting_polls(self) -> int:
        """Number of getUpdates long polls currently waiting for updates."""
        return self._waiting_polls

    @property
    def allowed_updates(self) -> frozenset[str]:
        """The update types currently queued for the bot."""
        return self._allowed_updates

    @property
    def webhook(self) -> JsonDict:
        """The current webhook settings (empty dict when none is set)."""
        return self._snapshot(lambda: copy.deepcopy(self._webhook))

    def _snapshot(self, read: Callable[[], _T]) -> _T:
        """Read state consistently, from the server thread when one is running."""
        return _threadsafe(lambda _self: read())(self)

    # ----------------------------------------------------------------------------------------
    # Fault injection
    # ----------------------------------------------------------------------------------------

    @_threadsafe
    def inject_fault(
        self,
        method: str,
        kind: FaultKind | int,
        times: int = 1,
        retry_after: int = 2,
        *,
        hold: float = 60.0,
    ) -> None:
        """Make the next ``times`` calls of ``method`` ('*' = any) fail without any effect.

        Kinds: "429" (flood wait with ``retry_after`` seconds), "502" (HTML bad gateway page),
        "timeout" (the request is held for ``hold`` seconds or until the server stops, longer than
        any client timeout, and never applied), "drop" (connection closed without response), and
        "401" and "404" (the Bot API's answers refusing the bot: Unauthorized, Not Found).
        """
        kind_name = str(kind)
        if kind_name not in ("429", "502", "timeout", "drop", "401", "404"):
            raise ValueError(f"unknown fault kind {kind!r}")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.setdefault(method.lower(), []).append(
            _Fault(kind_name, times, retry_after, hold)
        )

    @_threadsafe
    def forget_method(self, method: str) -> None:
        """Answer ``method`` from now on as a server that does not have it (404 Not Found)."""
        self._methods.pop(method.lower(), None)

    @_threadsafe
    def clear_faults(self) -> None:
        """Forget every pending fault."""
        self._faults.clear()

    def _take_fault(self, method: str) -> _Fault | None:
        """Consume one pending fault for ``method`` if any."""
        for key in (method.lower(), "*"):
            faults = self._faults.get(key)
            if faults:
                fault = faults[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    faults.pop(0)
                return fault
        return None

    # ----------------------------------------------------------------------------------------
    # HTTP layer
    # ----------------------------------------------------------------------------------------

    async def _read_args(self, request: web.Request) -> tuple[_Args, JsonDict]:
        """Read query, JSON, urlencoded or multipart parameters as raw strings."""
        raw: dict[str, str] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        content_type = request.content_type
        if request.can_read_body:
            if content_type == "application/json":
                body = await request.read()
                if body.strip():
                    try:
                        data = json.loads(body)
                    except ValueError:
                        raise _bad_request("can't parse JSON encoded request") from None
                    if not isinstance(data, dict):
                        raise _bad_request("can't parse JSON encoded request")
                    for key, value in data.items():
                        if value is None:
                            continue
                        raw[key] = value if isinstance(value, str) else json.dumps(value)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, str):
                        raw[key] = value
                    elif isinstance(value, bytes | bytearray):
                        raw[key] = bytes(value).decode("utf-8", "replace")
                    else:
                        files[key] = UploadedFile(
                            field=key,
                            filename=value.filename,
                            content_type=value.content_type,
                            data=value.file.read(),
                        )
            else:
                await request.read()
        args = _Args(raw, files)
        params = {key: _decode_param(key, value) for key, value in raw.items()}
        return args, params

    def _json_response(
        self, status: int, body: JsonDict, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """Serialise a Bot API answer."""
        return web.Response(
            status=status,
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
            headers=dict(headers or {}),
        )

    def _finish(self, record: CallRecord) -> None:
        """Append a finished call to the log and wake waiters."""
        if record.finished is not None:
            return
        record.finished = _now()
        self._calls.append(record)
        self._notify()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        """Serve ``/bot<token>/<method>``."""
        token = request.match_info["token"]
        method = request.match_info["method"]
        handler = self._methods.get(method.lower())
        record = CallRecord(
            method=method,
            params={},
            time=_now(),
            http_method=request.method,
        )
        try:
            args, record.params = await self._read_args(request)
            record.files = dict(args.files)
            if token != self.token:
                if _TOKEN_RE.fullmatch(token):
                    raise BotApiError(401, "Unauthorized")
                raise BotApiError(404, "Not Found")
            if handler is None:
                raise BotApiError(404, "Not Found")
            fault = self._take_fault(method)
            if fault is not None:
                return await self._apply_fault(request, record, fault)
            result = handler(args)
            if asyncio.iscoroutine(result):
                result = await result
        except BotApiError as exc:
            record.status, record.ok, record.description = exc.error_code, False, exc.description
            body: JsonDict = {
                "ok": False,
                "error_code": exc.error_code,
                "description": exc.description,
            }
            headers = {}
            if exc.parameters:
                body["parameters"] = exc.parameters
                if "retry_after" in exc.parameters:
                    headers["Retry-After"] = str(exc.parameters["retry_after"])
            self._finish(record)
            return self._json_response(exc.error_code, body, headers)
        except asyncio.CancelledError:
            record.description = "client disconnected"
            self._finish(record)
            raise
        except Exception as exc:
            self._internal_errors.append(exc)
            record.status, record.ok, record.description = 500, False, repr(exc)
            self._finish(record)
            body = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
            return self._json_response(500, body)
        record.status, record.ok, record.result = 200, True, copy.deepcopy(result)
        self._finish(record)
        return self._json_response(200, {"ok": True, "result": result})

    async def _apply_fault(
        self, request: web.Request, record: CallRecord, fault: _Fault
    ) -> web.StreamResponse:
        """Answer a call with an injected fault; the call never takes effect."""
        record.fault = fault.kind
        record.ok = False
        if fault.kind == "429":
            description = f"Too Many Requests: retry after {fault.retry_after}"
            record.status, record.description = 429, description
            self._finish(record)
            body = {
                "ok": False,
                "error_code": 429,
                "description": description,
                "parameters": {"retry_after": fault.retry_after},
            }
            return self._json_response(429, body, {"Retry-After": str(fault.retry_after)})
        if fault.kind in ("401", "404"):
            status = int(fault.kind)
            description = "Unauthorized" if status == 401 else "Not Found"
            record.status, record.description = status, description
            self._finish(record)
            body = {"ok": False, "error_code": status, "description": description}
            return self._json_response(status, body)
        if fault.kind == "502":
            record.status, record.description = 502, "Bad Gateway"
            self._finish(record)
            return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        if fault.kind == "drop":
            record.description = "connection dropped"
            self._finish(record)
            if request.transport is not None:
                request.transport.abort()
            await asyncio.sleep(0)
            return web.Response(status=204)
        record.description = "held (timeout)"
        self._finish(record)
        closing = self._closing
        if closing is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), fault.hold)
        return web.Response(status=504, text="Gateway Time-out", content_type="text/plain")

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        """Serve ``/file/bot<token>/<file_path>`` with fake content."""
        path = request.match_info["path"]
        if request.match_info["token"] != self.token or path not in self._file_paths:
            return web.Response(status=404, text="Not Found")
        self._file_downloads.append(path)
        self._notify()
        size = self._files[self._file_paths[path]]["file_size"]
        return web.Response(body=b"\0" * size, content_type="application/octet-stream")

    # ----------------------------------------------------------------------------------------
    # Bot API methods: shared checks
    # ----------------------------------------------------------------------------------------

    def _resolve_chat(self, raw: str, *, access: Literal["read", "edit", "send"]) -> _Chat:
        """Find the chat named by a chat_id parameter and check the bot's access to it."""
        if raw == "":
            raise _bad_request("chat_id is empty")
        chat: _Chat | None = None
        if raw.startswith("@"):
            name = raw[1:].lower()
            for candidate in self._chats.values():
                if candidate.type != "private" and candidate.info.get("username", "").lower() == (
                    name
                ):
                    chat = candidate
                    break
        else:
            chat = self._chats.get(_to_int(raw))
        if chat is None:
            raise _bad_request("chat not found")
        if access != "read":
            self._check_access(chat, send=access == "send")
        return chat

    def _check_access(self, chat: _Chat, *, send: bool) -> None:
        """Raise the 403 Telegram gives when the bot cannot write in ``chat``."""
        if chat.type == "private":
            if not send:
                return
            if chat.bot_status == "kicked":
                raise _forbidden("bot was blocked by the user")
            if not chat.started:
                raise _forbidden("bot can't initiate conversation with a user")
            return
        kind = {"group": "group", "supergroup": "supergroup", "channel": "channel"}[chat.type]
        if chat.bot_status == "kicked":
            raise _forbidden(f"bot was kicked from the {kind} chat")
        if chat.bot_status not in ("member", "administrator", "creator"):
            raise _forbidden(f"bot is not a member of the {kind} chat")

    def _message_id(self, args: _Args) -> int:
        """Read message_id like the Bot API (negative or junk gives 0)."""
        return max(args.get_int("message_id"), 0)

    def _reply_markup(self, args: _Args) -> JsonDict | None:
        """Parse and validate reply_markup like the Bot API server."""
        markup = args.get_json("reply_markup", "can't parse reply keyboard markup JSON object")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad_request("object expected as reply markup")
        keyboard = markup.get("keyboard")
        if keyboard is not None:
            if not isinstance(keyboard, list) or not all(isinstance(r, list) for r in keyboard):
                raise _bad_request('field "keyboard" must be an Array of Arrays')
            for row in keyboard:
                for button in row:
                    if not isinstance(button, str | dict):
                        raise _bad_request(
                            "can't parse keyboard button: KeyboardButton must be a String or an "
                            "Object"
                        )
                    if isinstance(button, dict) and not isinstance(button.get("text"), str):
                        raise _bad_request(
                            'can\'t parse keyboard button: Field "text" must be of type String'
                        )
            if keyboard:
                return {"kind": "keyboard", "markup": markup}
        inline = markup.get("inline_keyboard")
        if inline is not None:
            if not isinstance(inline, list) or not all(isinstance(r, list) for r in inline):
                raise _bad_request(
                    'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of '
                    "Arrays"
                )
            for row in inline:
                for button in row:
                    self._check_inline_button(button)
            if any(inline):
                return {"kind": "inline", "markup": {"inline_keyboard": inline}}
        if markup.get("remove_keyboard") is True or markup.get("hide_keyboard") is True:
            return {"kind": "remove", "markup": markup}
        if markup.get("force_reply") is True:
            return {"kind": "force_reply", "markup": markup}
        return None

    def _check_inline_button(self, button: Any) -> None:
        """Validate one InlineKeyboardButton like the Bot API server and Telegram."""
        prefix = "can't parse inline keyboard button: "
        if not isinstance(button, dict):
            raise _bad_request(prefix + "InlineKeyboardButton must be an Object")
        if not isinstance(button.get("text"), str):
            raise _bad_request(prefix + 'Field "text" must be of type String')
        actions = (
            "url",
            "callback_data",
            "callback_game",
            "pay",
            "switch_inline_query",
            "switch_inline_query_chosen_chat",
            "switch_inline_query_current_chat",
            "login_url",
            "web_app",
            "copy_text",
        )
        present = [
            key
            for key in actions
            if key in button and not (key in ("url", "callback_data") and button[key] == "")
        ]
        if not present:
            raise _bad_request(prefix + "Text buttons are unallowed in the inline keyboard")
        if not button["text"]:
            raise _bad_request("inline keyboard button text must be non-empty")
        data = button.get("callback_data")
        if (
            present[0] == "callback_data"
            and isinstance(data, str)
            and len(data.encode("utf-8")) > _MAX_CALLBACK_DATA_BYTES
        ):
            raise _bad_request("BUTTON_DATA_INVALID")
        url = button.get("url")
        if (
            present[0] == "url"
            and isinstance(url, str)
            and _link_user_id(url) is None
            and not _checked_link(url)
        ):
            raise _bad_request("inline keyboard button Wrong HTTP URL")

    def _reply_target(self, args: _Args, chat: _Chat) -> JsonDict | None:
        """Resolve reply_parameters (or legacy reply_to_message_id) in ``chat``."""
        parameters = args.get_json("reply_parameters", "can't parse reply parameters JSON object")
        if parameters is None and args.get_str("reply_to_message_id"):
            parameters = {
                "message_id": args.get_int("reply_to_message_id"),
                "allow_sending_without_reply": args.get_bool("allow_sending_without_reply"),
            }
        if parameters is None:
            return None
        if not isinstance(parameters, dict):
            raise _bad_request("object expected as reply parameters")
        message_id = _to_int(str(parameters.get("message_id", "")))
        target_chat = chat
        if parameters.get("chat_id") not in (None, "", chat.id):
            target_chat = self._resolve_chat(str(parameters["chat_id"]), access="read")
        replied = target_chat.messages.get(message_id) if message_id > 0 else None
        if replied is None:
            if parameters.get("allow_sending_without_reply"):
                return None
            raise _bad_request("message to be replied not found")
        return replied

    def _parse(self, args: _Args, key: str, entities_key: str) -> tuple[str, list[JsonDict]]:
        """Parse a text/caption parameter with parse_mode or explicit entities."""
        entities = args.get_json(entities_key, f"can't parse {entities_key} JSON object")
        return _parse_text(args.get_str(key), args.get_str("parse_mode"), entities, self._users)

    def _send_common(self, args: _Args) -> tuple[_Chat, JsonDict | None, JsonDict | None]:
        """Shared part of send* methods: markup, chat access and reply target."""
        markup = self._reply_markup(args)
        chat = self._resolve_chat(args.get_str("chat_id"), access="send")
        reply_to = self._reply_target(args, chat)
        return chat, markup, reply_to

    def _store_bot_message(
        self,
        chat: _Chat,
        content: JsonDict,
        markup: JsonDict | None,
        reply_to: JsonDict | None,
        args: _Args,
    ) -> JsonDict:
        """Store a message sent by the bot and apply its reply markup."""
        extra: JsonDict = {}
        if markup is not None and markup["kind"] == "inline":
            extra["reply_markup"] = markup["markup"]
        if args.get_bool("protect_content"):
            extra["has_protected_content"] = True
        if args.get_str("message_effect_id"):
            extra["effect_id"] = args.get_str("message_effect_id")
        message = self._store_message(chat, self.bot_user, content, reply_to=reply_to, extra=extra)
        if markup is not None and markup["kind"] == "keyboard":
            chat.reply_keyboard = copy.deepcopy(markup["markup"])
        elif markup is not None and markup["kind"] == "remove":
            chat.reply_keyboard = None
        chat.bot_message_ids.append(message["message_id"])
        self._notify()
        return copy.deepcopy(message)

    def _bot_message(self, args: _Args, *, action: str) -> tuple[_Chat, JsonDict]:
        """Find a message to edit or delete (``action`` is used in 'message to X not found')."""
        chat_raw = args.get_str("chat_id")
        message_id = self._message_id(args)
        if chat_raw == "" and message_id == 0:
            if args.get_str("inline_message_id") == "":
                raise _bad_request("message identifier is not specified")
            raise _bad_request("MESSAGE_ID_INVALID")
        chat = self._resolve_chat(chat_raw, access="edit")
        message = chat.messages.get(message_id) if message_id > 0 else None
        if message is None:
            raise _bad_request(f"message to {action} not found")
        return chat, message

    # ----------------------------------------------------------------------------------------
    # Bot API methods
    # ----------------------------------------------------------------------------------------

    def _api_get_me(self, args: _Args) -> JsonDict:
        """getMe."""
        return {
            **copy.deepcopy(self.bot_user),
            **self._bot_flags,
            "supports_guest_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
            "has_topics_enabled": False,
            "allows_users_to_create_topics": False,
            "can_manage_bots": False,
        }

    def _api_log_out(self, args: _Args) -> bool:
        """logOut."""
        self.logged_out = True
        return True

    def _api_close(self, args: _Args) -> bool:
        """close."""
        self.closed = True
        return True

    async def _api_get_updates(self, args: _Args) -> list[JsonDict]:
        """getUpdates with long polling, offset confirmation, limit and allowed_updates."""
        if self._webhook.get("url"):
            raise BotApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = args.get_int("offset")
        limit = min(max(args.get_int("limit", 100), 1), 100)
        timeout = min(max(args.get_int("timeout"), 0), _LONG_POLL_MAX_TIMEOUT)
        self._update_allowed_updates(args.get_str("allowed_updates"))
        loop = asyncio.get_running_loop()
        if self.throttle_repeated_polls and self._last_poll is not None:
            last_offset, last_time = self._last_poll
            if offset == last_offset and timeout < 3 and loop.time() < last_time + 3:
                timeout = 3
        self._last_poll = (offset, loop.time())
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset > 0 and offset <= self._next_update_id + 10:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        long_poll = not self._updates and timeout > 0
        if long_poll:
            self._poll_generation += 1  # a new long poll terminates the pending one
            self._waiting_polls += 1
            self._notify()
        generation = self._poll_generation
        deadline = loop.time() + timeout
        try:
            while True:
                if generation != self._poll_generation:
                    raise BotApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that only "
                        "one bot instance is running",
                    )
                if self._updates or timeout == 0:
                    break
                if self._webhook.get("url"):
                    raise BotApiError(409, "Conflict: terminated by setWebhook request")
                remaining = deadline - loop.time()
                if remaining <= 0 or (self._closing is not None and self._closing.is_set()):
                    break
                event = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            if long_poll:
                self._waiting_polls -= 1
                self._notify()
        batch = copy.deepcopy(self._updates[:limit])
        self._delivered.update(u["update_id"] for u in batch)
        return batch

    def _update_allowed_updates(self, raw: str) -> None:
        """Apply an allowed_updates parameter; absent or invalid keeps the previous setting."""
        if not raw:
            return
        try:
            value = json.loads(raw)
        except ValueError:
            return
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return
        chosen = frozenset(v.lower() for v in value) & frozenset(_UPDATE_TYPES)
        self._allowed_updates = chosen or _DEFAULT_ALLOWED_UPDATES

    def _api_set_webhook(self, args: _Args) -> bool:
        """setWebhook (recorded only; updates stay queued and are never pushed)."""
        url = args.get_str("url")
        if args.get_bool("drop_pending_updates"):
            self._updates.clear()
        self._update_allowed_updates(args.get_str("allowed_updates"))
        if not url:
            self._webhook = {}
        else:
            self._webhook = {
                "url": url,
                "max_connections": min(max(args.get_int("max_connections", 40), 1), 100),
                "secret_token": args.get_str("secret_token") or None,
                "ip_address": args.get_str("ip_address") or None,
                "has_certificate": "certificate" in args.files
                or bool(args.get_str("certificate")),
            }
        self._notify()
        return True

    def _api_delete_webhook(self, args: _Args) -> bool:
        """deleteWebhook."""
        if args.get_bool("drop_pending_updates"):
            self._updates.clear()
        self._webhook = {}
        self._notify()
        return True

    def _api_get_webhook_info(self, args: _Args) -> JsonDict:
        """getWebhookInfo."""
        info: JsonDict = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": bool(self._webhook.get("has_certificate")),
            "pending_update_count": len(self._updates),
        }
        if self._webhook.get("url"):
            info["max_connections"] = self._webhook["max_connections"]
            info["ip_address"] = self._webhook.get("ip_address") or "127.0.0.1"
        if self._allowed_updates != _DEFAULT_ALLOWED_UPDATES:
            info["allowed_updates"] = sorted(self._allowed_updates, key=_UPDATE_TYPES.index)
        return info

    def _api_send_message(self, args: _Args) -> JsonDict:
        """sendMessage."""
        preview = args.get_json(
            "link_preview_options", "can't parse link preview options JSON object"
        )
        if preview is not None and not isinstance(preview, dict):
            raise _bad_request("object expected as link preview options")
        if args.get_str("text") == "":
            raise _bad_request("message text is empty")
        parsed = self._parse(args, "text", "entities")
        chat, markup, reply_to = self._send_common(args)
        text, found = _finalize_text(*parsed)
        if len(text) > _MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        content: JsonDict = {"text": text}
        if found:
            content["entities"] = found
        if preview:
            content["link_preview_options"] = preview
        elif args.get_bool("disable_web_page_preview"):
            content["link_preview_options"] = {"is_disabled": True}
        return self._store_bot_message(chat, content, markup, reply_to, args)

    def _api_send_media(self, kind: str, args: _Args) -> JsonDict:
        """sendPhoto, sendDocument, sendVideo, ... (file_id, URL or upload)."""
        value = args.get_str(kind)
        upload = args.files.get(kind)
        if value.startswith("attach://"):
            upload = args.files.get(value[len("attach://") :])
        if not value and upload is None:
            raise _bad_request(f"there is no {kind.replace('_', ' ')} in the request")
        parsed = self._parse(args, "caption", "caption_entities")
        chat, markup, reply_to = self._send_common(args)
        reused: JsonDict | None = None
        if upload is None and not re.match(r"https?://", value):
            reused = self._files.get(value)
            if reused is None:
                raise _bad_request("wrong file identifier/HTTP URL specified")
        options: JsonDict = {}
        if upload is not None:
            options["file_size"] = max(upload.size, 1)
            if upload.filename:
                options["file_name"] = upload.filename
        content = self._media_content(kind, options, reuse=reused)
        caption, caption_entities = _finalize_text(*parsed, allow_empty=True)
        if len(caption) > _MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        if caption:
            content["caption"] = caption
            if caption_entities:
                content["caption_entities"] = caption_entities
        return self._store_bot_message(chat, content, markup, reply_to, args)

    def _record_edit(self, method: str, chat: _Chat, before: JsonDict, after: JsonDict) -> None:
        """Log an edit."""
        self._edits.append(
            EditRecord(
                method=method,
                chat_id=chat.id,
                message_id=int(after["message_id"]),
                before=copy.deepcopy(before),
                after=copy.deepcopy(after),
                time=_now(),
            )
        )
        self._notify()

    def _check_editable(self, message: JsonDict) -> None:
        """Only the bot's own messages can be edited."""
        if message.get("from", {}).get("id") != self.bot_user["id"]:
            raise _bad_request("message can't be edited")

    def _apply_edit(
        self, method: str, chat: _Chat, message: JsonDict, changes: JsonDict, markup: Any
    ) -> JsonDict:
        """Apply content changes and the new inline keyboard (None removes it)."""
        new = copy.deepcopy(message)
        for key, value in changes.items():
            if value is None:
                new.pop(key, None)
            else:
                new[key] = value
        if markup is not None:
            new["reply_markup"] = markup
        else:
            new.pop("reply_markup", None)
        compared = ("text", "entities", "caption", "caption_entities", "reply_markup")
        if all(new.get(key) == message.get(key) for key in compared) and new.get(
            "link_preview_options"
        ) == message.get("link_preview_options"):
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        new["edit_date"] = _unix_now()
        chat.messages[int(message["message_id"])] = new
        self._record_edit(method, chat, message, new)
        return copy.deepcopy(new)

    def _inline_markup(self, args: _Args) -> Any:
        """Parse reply_markup for edit methods (only inline keyboards are allowed)."""
        markup = self._reply_markup(args)
        if markup is None:
            return None
        if markup["kind"] != "inline":
            raise _bad_request("inline keyboard expected")
        return markup["markup"]

    def _api_edit_message_text(self, args: _Args) -> JsonDict:
        """editMessageText; like Telegram, omitting reply_markup removes the inline keyboard."""
        preview = args.get_json(
            "link_preview_options", "can't parse link preview options JSON object"
        )
        if args.get_str("text") == "":
            raise _bad_request("message text is empty")
        parsed = self._parse(args, "text", "entities")
        markup = self._inline_markup(args)
        chat, message = self._bot_message(args, action="edit")
        self._check_editable(message)
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        text, found = _finalize_text(*parsed)
        if len(text) > _MAX_TEXT_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        changes: JsonDict = {"text": text, "entities": found or None}
        if preview is not None:
            changes["link_preview_options"] = preview
        return self._apply_edit("editMessageText", chat, message, changes, markup)

    def _api_edit_message_caption(self, args: _Args) -> JsonDict:
        """editMessageCaption."""
        parsed = self._parse(args, "caption", "caption_entities")
        markup = self._inline_markup(args)
        chat, message = self._bot_message(args, action="edit")
        self._check_editable(message)
        if "text" in message:
            raise _bad_request("there is no caption in the message to edit")
        caption, found = _finalize_text(*parsed, allow_empty=True)
        if len(caption) > _MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        changes = {"caption": caption or None, "caption_entities": found or None}
        return self._apply_edit("editMessageCaption", chat, message, changes, markup)

    def _api_edit_message_reply_markup(self, args: _Args) -> JsonDict:
        """editMessageReplyMarkup (an absent reply_markup removes the keyboard)."""
        markup = self._inline_markup(args)
        chat, message = self._bot_message(args, action="edit")
        self._check_editable(message)
        return self._apply_edit("editMessageReplyMarkup", chat, message, {}, markup)

    def _delete(self, chat: _Chat, message: JsonDict) -> None:
        """Delete one message if the bot is allowed to."""
        own = message.get("from", {}).get("id") == self.bot_user["id"]
        if (
            chat.type != "private"
            and not own
            and chat.bot_status
            not in (
                "administrator",
                "creator",
            )
        ):
            raise _bad_request("message can't be deleted")
        message_id = int(message["message_id"])
        chat.deleted[message_id] = chat.messages.pop(message_id)

    def _api_delete_message(self, args: _Args) -> bool:
        """deleteMessage."""
        if args.get_str("chat_id") == "":
            raise _bad_request("chat identifier is not specified")
        if self._message_id(args) == 0:
            raise _bad_request("message identifier is not specified")
        chat, message = self._bot_message(args, action="delete")
        self._delete(chat, message)
        self._notify()
        return True

    def _api_delete_messages(self, args: _Args) -> bool:
        """deleteMessages (unknown identifiers are skipped, like Telegram)."""
        ids = args.get_json("message_ids", "can't parse message_ids JSON object")
        if not ids:
            raise _bad_request("message identifiers are not specified")
        if not isinstance(ids, list):
            raise _bad_request("expected an Array of message identifiers")
        chat = self._resolve_chat(args.get_str("chat_id"), access="edit")
        for raw_id in ids:
            message = chat.messages.get(_to_int(str(raw_id)))
            if message is not None:
                self._delete(chat, message)
        self._notify()
        return True

    def _api_answer_callback_query(self, args: _Args) -> bool:
        """answerCallbackQuery (each query can be answered once)."""
        query_id = args.get_str("callback_query_id")
        if query_id not in self._callback_queries or query_id in self._answered_callbacks:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self._answered_callbacks.add(query_id)
        self._callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                text=args.get_str("text") or None,
                show_alert=args.get_bool("show_alert"),
                url=args.get_str("url") or None,
                cache_time=args.get_int("cache_time"),
                time=_now(),
            )
        )
        self._notify()
        return True

    def _scope_key(self, scope: Any) -> str:
        """Turn a BotCommandScope into a stable key such as 'default' or 'chat:42'."""
        if scope is None:
            return "default"
        if not isinstance(scope, dict):
            raise _bad_request("can't parse BotCommandScope: BotCommandScope must be an Object")
        kind = scope.get("type")
        if not isinstance(kind, str):
            raise _bad_request('can\'t parse BotCommandScope: Field "type" must be a String')
        if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
            return kind
        if kind not in ("chat", "chat_administrators", "chat_member"):
            raise _bad_request("can't parse BotCommandScope: Unsupported type specified")
        raw_chat = str(scope.get("chat_id", ""))
        if raw_chat == "":
            raise _bad_request("can't parse BotCommandScope: Empty chat_id specified")
        chat = self._resolve_chat(raw_chat, access="read")
        if kind == "chat_member":
            user_id = _to_int(str(scope.get("user_id", "")))
            if user_id <= 0:
                raise _bad_request("can't parse BotCommandScope: Invalid user_id specified")
            return f"chat_member:{chat.id}:{user_id}"
        return f"{kind}:{chat.id}"

    def _commands_target(self, args: _Args) -> tuple[str, str]:
        """Read scope and language_code of the *MyCommands methods."""
        scope = args.get_json("scope", "can't parse BotCommandScope JSON object")
        key = self._scope_key(scope)
        language = args.get_str("language_code")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad_request("invalid language code specified")
        return key, language

    def _api_set_my_commands(self, args: _Args) -> bool:
        """setMyCommands (an empty list deletes the commands of that scope)."""
        commands = args.get_json("commands", "can't parse commands JSON object") or []
        if not isinstance(commands, list):
            raise _bad_request("expected an Array of BotCommand")
        cleaned = []
        for item in commands:
            if not isinstance(item, dict):
                raise _bad_request("can't parse BotCommand: expected an Object")
            for field in ("command", "description"):
                if not isinstance(item.get(field), str):
                    raise _bad_request(
                        f'can\'t parse BotCommand: Field "{field}" must be of type String'
                    )
            cleaned.append(item)
        key = self._commands_target(args)
        result = []
        for item in cleaned:
            command = item["command"].strip().removeprefix("/")
            description = item["description"].strip()
            if not command:
                raise _bad_request("command must be non-empty")
            if len(command) > 32:
                raise _bad_request("command length must not exceed 32")
            if not description:
                raise _bad_request("command description must be non-empty")
            if len(description) > 256:
                raise _bad_request("command description length must not exceed 256")
            if not re.fullmatch(r"[a-z0-9_]+", command):
                raise _bad_request("BOT_COMMAND_INVALID")
            result.append({"command": command, "description": description})
        if result:
            self._commands[key] = result
        else:
            self._commands.pop(key, None)
        self._notify()
        return True

    def _api_get_my_commands(self, args: _Args) -> list[JsonDict]:
        """getMyCommands (exact scope and language, no fallback)."""
        return copy.deepcopy(self._commands.get(self._commands_target(args), []))

    def _api_delete_my_commands(self, args: _Args) -> bool:
        """deleteMyCommands."""
        self._commands.pop(self._commands_target(args), None)
        self._notify()
        return True

    def _api_set_bot_text(self, field: str, args: _Args) -> bool:
        """setMyDescription, setMyShortDescription and setMyName."""
        language = args.get_str("language_code")
        value = args.get_str(field)
        if value:
            self._bot_texts[(field, language)] = value
        else:
            self._bot_texts.pop((field, language), None)
        return True

    def _api_get_bot_text(self, field: str, args: _Args) -> JsonDict:
        """getMyDescription, getMyShortDescription and getMyName."""
        language = args.get_str("language_code")
        default = self.bot_user["first_name"] if field == "name" else ""
        value = self._bot_texts.get((field, language), self._bot_texts.get((field, ""), default))
        return {field: value}

    def _api_set_chat_menu_button(self, args: _Args) -> bool:
        """setChatMenuButton."""
        button = args.get_json("menu_button", "can't parse menu button JSON object") or {
            "type": "default"
        }
        chat_id = (
            self._resolve_chat(args.get_str("chat_id"), access="read").id
            if args.get_str("chat_id")
            else 0
        )
        self._menu_buttons[chat_id] = button
        return True

    def _api_get_chat_menu_button(self, args: _Args) -> JsonDict:
        """getChatMenuButton."""
        chat_id = (
            self._resolve_chat(args.get_str("chat_id"), access="read").id
            if args.get_str("chat_id")
            else 0
        )
        return copy.deepcopy(
            self._menu_buttons.get(chat_id, self._menu_buttons.get(0, {"type": "commands"}))
        )

    def _api_leave_chat(self, args: _Args) -> bool:
        """leaveChat (emits my_chat_member member -> left, like Telegram)."""
        chat = self._resolve_chat(args.get_str("chat_id"), access="read")
        if chat.type == "private":
            raise _bad_request("can't leave private chats")
        if chat.bot_status not in ("member", "administrator", "creator"):
            raise _bad_request("USER_NOT_PARTICIPANT")
        old = chat.bot_status
        chat.bot_status = "left"
        self._left_chats.append(chat.id)
        self._emit_my_chat_member(chat, self.bot_user, old, "left")
        bot = copy.deepcopy(self.bot_user)
        self._store_message(
            chat, self.bot_user, {"left_chat_participant": bot, "left_chat_member": bot}
        )
        self._notify()
        return True

    def _api_get_chat(self, args: _Args) -> JsonDict:
        """getChat (returns a ChatFullInfo)."""
        chat = self._resolve_chat(args.get_str("chat_id"), access="read")
        info = copy.deepcopy(chat.info)
        if chat.type == "private":
            user = self._users.get(chat.id, {})
            if user.get("username"):
                info["active_usernames"] = [user["username"]]
            info["can_send_gift"] = True
            info["accepted_gift_types"] = {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            }
        else:
            if chat.description:
                info["description"] = chat.description
            if chat.type in ("group", "supergroup"):
                info["permissions"] = {
                    key: True
                    for key in (
                        "can_send_messages",
                        "can_send_media_messages",
                        "can_send_audios",
                        "can_send_documents",
                        "can_send_photos",
                        "can_send_videos",
                        "can_send_video_notes",
                        "can_send_voice_notes",
                        "can_send_polls",
                        "can_send_other_messages",
                        "can_add_web_page_previews",
                        "can_react_to_messages",
                        "can_change_info",
                        "can_invite_users",
                        "can_pin_messages",
                        "can_manage_topics",
                    )
                }
            info.setdefault(
                "accepted_gift_types",
                {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            )
        info["max_reaction_count"] = 11
        info["accent_color_id"] = abs(chat.id) % 7
        return info

    def _api_get_chat_member(self, args: _Args) -> JsonDict:
        """getChatMember."""
        chat = self._resolve_chat(args.get_str("chat_id"), access="read")
        user_id = args.get_int("user_id")
        if user_id <= 0:
            raise _bad_request("invalid user_id specified")
        if user_id == self.bot_user["id"]:
            return self._chat_member(self.bot_user, chat.bot_status)
        user = self._users.get(user_id)
        if user is None:
            raise _bad_request("user not found")
        if chat.type == "private":
            status = "member" if chat.id == user_id else "left"
        else:
            status = chat.members.get(user_id, "left")
        return self._chat_member(user, status)

    def _api_send_chat_action(self, args: _Args) -> bool:
        """sendChatAction."""
        action = _CHAT_ACTIONS.get(args.get_str("action"))
        if action is None:
            raise _bad_request("wrong parameter action in request")
        chat = self._resolve_chat(args.get_str("chat_id"), access="send")
        self._chat_actions.append(ChatActionRecord(chat.id, action, _now()))
        self._notify()
        return True

    def _api_get_file(self, args: _Args) -> JsonDict:
        """getFile (recorded in ``file_requests`` so tests can assert media is never fetched)."""
        file_id = args.get_str("file_id")
        self._file_requests.append(file_id)
        self._notify()
        info = self._files.get(file_id)
        if info is None:
            raise _bad_request("invalid file_id")
        if info["file_size"] > _MAX_DOWNLOAD_SIZE:
            raise _bad_request("file is too big")
        return copy.deepcopy(info)


def _utf16_slice(text: str, offset: int, length: int) -> str:
    """Return the substring of ``text`` at a UTF-16 offset and length."""
    encoded = text.encode("utf-16-le")
    return encoded[offset * 2 : (offset + length) * 2].decode("utf-16-le")


class ThreadedBotApiServer(BotApiServer):
    """A BotApiServer running in a background thread, usable as a plain ``with`` block."""

    def __enter__(self) -> ThreadedBotApiServer:
        """Start the server thread."""
        self.start_in_thread()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server thread; report internal errors of the fake if the test passed."""
        self.stop_thread()
        if exc_info[0] is None:
            self.raise_internal_errors()
