"""Every bot command for every kind of person, and buttons forged, replayed or pressed by others.

The commands are those the bot registers (read from its handlers), so a new command is covered
at once: strangers and deactivated members must get nothing but their explanation, and the
matrix fails, naming the command, until the roles' expectations say what each gets. Replies are
read from a local Bot API server, through the real python-telegram-bot, on both databases.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from telegram.ext import CommandHandler

from bot.application import build_application
from bot.handlers import COMMANDS
from bot.runtime import Runtime
from bot.settings import Config
from dialogues.protocol import load_protocol
from storage.models import Escalation, Incident, IncidentStatus, Member, Role, TimelineEvent
from storage.repositories import Incidents
from tests.conftest import add_member, settings_for
from tests.e2e.conftest import TOKEN, Bot
from tests.support.botapi import BotApiServer
from tests.support.serving import serving

PROTOCOL = load_protocol()
SQL = ("'; DROP TABLE incidents; --", "1 OR 1=1", "1; DELETE FROM members")
ENROLLED = ("professional", "officer", "coordinator", "admin")
ROLES = ("stranger", "deactivated", *ENROLLED)
CODE = re.compile(r"SX-\d{4}-\d{4}")

# What an enrolled member gets from each command: the text of dialogues/texts.yml their first
# reply is. Strangers get `not_enrolled` and deactivated members `enroll.inactive`, whatever the
# command. A command the bot registers that is missing here fails the matrix.
EXPECTED: dict[str, dict[str, str]] = {
    "start": dict.fromkeys(ENROLLED, "welcome.back"),
    "incident": {
        "professional": "mode.ask",
        "officer": "role.forbidden",
        "coordinator": "role.forbidden",
        "admin": "school.none",  # may open incidents, but is linked to no school here
    },
    "incidents": {
        "professional": "followup.forbidden",
        "officer": "followup.card",
        "coordinator": "followup.card",
        "admin": "followup.card",
    },
    "dashboard": {
        "professional": "dashboard.forbidden",
        "officer": "dashboard.link",
        "coordinator": "dashboard.link",
        "admin": "dashboard.link",
    },
    "status": dict.fromkeys(ENROLLED, "status.none"),
    "help": {
        "professional": "help.text",
        "officer": "help.officer",
        "coordinator": "help.officer",
        "admin": "help.text",
    },
    "cancel": dict.fromkeys(ENROLLED, "cancel.nothing"),
    "lang": dict.fromkeys(ENROLLED, "lang.switched"),
}


@pytest.fixture
async def bot(config: Config, database_url: str) -> AsyncIterator[Bot]:
    """The bot as `sexto run` serves it, behind a Bot API server that lets clients forge."""
    async with (
        BotApiServer(token=TOKEN, bot_username="sexto_test_bot") as server,
        serving(server, config, database_url, TOKEN) as runtime,
    ):
        yield Bot(server, runtime)


async def registered_commands(config: Config) -> list[str]:
    """The commands the bot's handlers answer (on a throwaway runtime: nothing is served)."""
    runtime = Runtime.create(
        settings_for(config, "sqlite+aiosqlite:///:memory:", telegram_token=TOKEN)
    )
    app, _ = build_application(runtime)
    await runtime.close()
    return sorted(
        {
            command
            for handlers in app.handlers.values()
            for handler in handlers
            if isinstance(handler, CommandHandler)
            for command in handler.commands
        }
    )


def shown(key: str, text: str) -> bool:
    """Whether a message is the text ``key`` (either language) as Telegram shows it."""
    said = " ".join(text.split())
    for template in PROTOCOL.texts[key].values():
        plain = " ".join(html.unescape(re.sub(r"</?[a-z-]+>", "", template)).split())
        parts = re.split(r"\{[a-z_]+\}", plain)
        pattern = "(.*?)".join(re.escape(part).replace(r"\ ", r"\s*") for part in parts)
        if re.fullmatch(pattern, said, re.DOTALL):
            return True
    return False


@dataclass
class World:
    """The running bot, two incidents nobody here opened, and who may see which."""

    bot: Bot
    nord: str
    west: str
    visible: dict[str, set[str]]
    next_user: int = 5000

    @property
    def server(self) -> BotApiServer:
        return self.bot.server

    @property
    def runtime(self) -> Runtime:
        return self.bot.runtime

    async def person(self, role: str, started: bool = False) -> dict[str, Any]:
        """A new Telegram user: a stranger, or a member of ``role`` (nord's, for schools)."""
        self.next_user += 1
        user_id = self.next_user
        name = f"{role.title()} {user_id}"
        if role != "stranger":
            kind = Role.PROFESSIONAL if role == "deactivated" else Role(role)
            schools = ("nord",) if kind in (Role.PROFESSIONAL, Role.OFFICER) else ()
            member = await add_member(self.runtime, kind, schools, user_id, name, "en")
            if role == "deactivated":
                async with self.runtime.sessions() as session, session.begin():
                    row = await session.get(Member, member.id)
                    assert row is not None
                    row.active = False
        return self.server.add_user(user_id, name, language_code="en", started=started)

    async def exchange(self, user: dict[str, Any], text: str) -> list[str]:
        """Send ``text``; returns every reply (a file sent after it marks where they end)."""
        before = len(self.server.sent_messages(user["id"]))
        self.server.send_text(user, text)
        self.server.send_photo(user)
        warning = await self.server.wait_for_message(
            user["id"], lambda m: shown("media.deleted", m.get("text", ""))
        )
        replies = self.server.sent_messages(user["id"])[before:]
        return [m.get("text", "") for m in replies if m["message_id"] < warning["message_id"]]


@pytest.fixture
async def scene(bot: Bot) -> World:
    """An incident at each school, opened by professionals who are not on Telegram."""
    runtime = bot.runtime
    codes = []
    for school in ("nord", "west"):
        opener = await add_member(runtime, Role.PROFESSIONAL, (school,), None, f"Pro {school}")
        async with runtime.sessions() as session, session.begin():
            incident = await Incidents(session).open(school, opener.id, False, runtime.clock.now())
            codes.append(incident.code)
    nord, west = codes
    visible = {
        "stranger": set(),
        "deactivated": set(),
        "professional": set(),
        "officer": {nord},
        "coordinator": {nord, west},
        "admin": {nord, west},
    }
    return World(bot, nord, west, visible)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors logged, and database failures the bot took for an outage and retried."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or "database unreachable" in r.getMessage()
    ]


async def tables_intact(runtime: Runtime, incidents: int) -> None:
    async with runtime.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    assert {"incidents", "members", "timeline_events", "enrollment_codes"} <= set(tables)
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Incident)) == incidents


def leaks(replies: Iterable[str], allowed: set[str]) -> set[str]:
    return {code for reply in replies for code in CODE.findall(reply)} - allowed


async def test_every_registered_command_has_its_expectations(config: Config) -> None:
    registered = await registered_commands(config)
    assert set(COMMANDS) <= set(registered), "a command of the menu has no handler"
    missing = sorted(set(registered) - set(EXPECTED))
    assert not missing, f"bot command(s) {missing} have no expected replies in EXPECTED"
    for command, by_role in EXPECTED.items():
        assert set(by_role) == set(ENROLLED), f"/{command}: expectations for every role"


async def test_every_command_for_every_role(
    scene: World, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    commands = await registered_commands(config)
    for role in ROLES:
        for command in commands:
            user = await scene.person(role)  # a new person each time: no state carries over
            replies = await scene.exchange(user, f"/{command}")
            assert replies, (role, command, "no reply")
            if role == "stranger":
                assert all(shown("not_enrolled", r) for r in replies), (command, replies)
            elif role == "deactivated":
                assert all(shown("enroll.inactive", r) for r in replies), (command, replies)
            else:
                expected = EXPECTED.get(command, {}).get(role)
                assert expected is not None, f"/{command} has no expectation for {role}"
                assert shown(expected, replies[0]), (role, command, expected, replies)
            assert not leaks(replies, scene.visible[role]), (role, command, replies)
            if command == "incidents" and role in ("officer", "coordinator", "admin"):
                assert leaks(replies, set()) == scene.visible[role]  # and sees all of those
    assert errors(caplog) == []
    await tables_intact(scene.runtime, 2)


async def test_sql_looking_arguments_and_text_change_nothing(
    scene: World, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    commands = await registered_commands(config)
    for role in ("stranger", "professional", "officer"):
        user = await scene.person(role)
        for payload in SQL:
            for command in commands:
                replies = await scene.exchange(user, f"/{command} {payload}")
                assert replies, (role, command, payload)
                assert not leaks(replies, scene.visible[role]), (role, command, replies)
            assert await scene.exchange(user, payload), (role, payload)
    assert errors(caplog) == []
    await tables_intact(scene.runtime, 2)


def first_button(message: dict[str, Any]) -> str:
    """The callback data of a message's first button (as it was sent)."""
    return str(message["reply_markup"]["inline_keyboard"][0][0]["callback_data"])


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def acknowledged_by(runtime: Runtime) -> list[int | None]:
    async with runtime.sessions() as session:
        return list((await session.scalars(select(Escalation.acknowledged_by))).all())


async def status_of(runtime: Runtime, code: str) -> IncidentStatus:
    async with runtime.sessions() as session:
        incident = await Incidents(session).by_code(code)
        assert incident is not None
        return incident.status


async def test_buttons_forged_replayed_or_pressed_by_others(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    server = bot.server
    assert isinstance(server, BotApiServer)
    runtime = bot.runtime
    world = World(bot, "", "", {})
    officer = await world.person("officer", started=True)
    officer_west = server.add_user(7002, "Officer West", language_code="en", started=True)
    await add_member(runtime, Role.OFFICER, ("west",), 7002, "Officer West", "en")
    professional = await world.person("professional")
    stranger = await world.person("stranger")

    server.send_text(professional, "/incident")
    mode = await server.wait_for_message(professional["id"], lambda m: bool(buttons(m)))
    server.press_button(professional, mode, text="Real situation")
    alert = await server.wait_for_message(officer["id"], lambda m: "Acknowledge" in buttons(m))
    code = CODE.findall(alert["text"])[0]
    danger = await server.wait_for_message(professional["id"], lambda m: bool(buttons(m)))
    assert "immediate danger" in danger["text"]

    # Others send the officer's Acknowledge from their own chats (a modified client): refused.
    for other in (stranger, officer_west):
        server.send_text(other, "/help")
        await server.wait_for_message(other["id"])
    for other in (officer_west, professional):
        own = server.sent_messages(other["id"])[-1]
        answer = await server.wait_for_callback_answer(
            server.press_forged(other, own, first_button(alert))
        )
        assert answer.show_alert, answer
        assert answer.text == "This alert is not addressed to you."
    own = server.sent_messages(stranger["id"])[-1]
    await server.wait_for_callback_answer(server.press_forged(stranger, own, first_button(alert)))
    refusal = await server.wait_for_message(stranger["id"])
    assert shown("not_enrolled", refusal["text"])
    assert not any(await acknowledged_by(runtime))

    # The officer acknowledges; pressing again is a replay, told it is done already.
    await server.wait_for_callback_answer(server.press_button(officer, alert, text="Acknowledge"))
    assert len([a for a in await acknowledged_by(runtime) if a]) == 1
    replay = server.press_forged(officer, alert, first_button(alert))
    answer = await server.wait_for_callback_answer(replay)
    assert "already" in (answer.text or "").lower(), answer

    # Follow-up buttons forged for an incident of another school, or by a professional.
    async with runtime.sessions() as session:
        incident = await Incidents(session).by_code(code)
        assert incident is not None
        incident_id = incident.id
    for who in (officer_west, professional):
        last = server.sent_messages(who["id"])[-1]
        query = server.press_forged(who, last, f"fu:{incident_id}:kit")
        answer = await server.wait_for_callback_answer(query)
        assert shown("followup.forbidden", answer.text or ""), answer
    assert await status_of(runtime, code) is IncidentStatus.OPEN

    # An old button of the professional's own guide, and the officer pressing the guide's.
    await server.wait_for_callback_answer(
        server.press_forged(officer, alert, first_button(danger))
    )
    await server.wait_for_callback_answer(
        server.press_forged(professional, danger, first_button(mode))
    )
    await server.wait_for_message(professional["id"], lambda m: shown("stale", m["text"]))
    assert await status_of(runtime, code) is IncidentStatus.OPEN

    # Garbage of every shape from everyone: answered, nothing breaks, nothing changes.
    junk = [
        "",
        "ack:",
        "ack:-1",
        "ack:²",
        "ack:" + "9" * 60,
        "fu:",
        "fu:abc:kit",
        "fu:²:kit",
        "fu:" + "9" * 40 + ":kit",
        "fu:1:teleport",
        "cancel:" + "x" * 50,
        "0:danger:²",
        "9" * 20 + ":devices:" + "9" * 20,
        *SQL,
        "\u202e\u200b🧑\u200d💻" * 5,
    ]
    for who in (stranger, professional, officer, officer_west):
        for data in junk:
            query = server.press_forged(who, server.sent_messages(who["id"])[-1], data[:64])
            answered = await server.wait_for_callback_answer(query)
            assert answered is not None, (who["id"], data)
    assert errors(caplog) == []
    assert await status_of(runtime, code) is IncidentStatus.OPEN
    await tables_intact(runtime, 1)


async def test_a_member_deactivated_mid_incident_is_refused_at_once(bot: Bot) -> None:
    """The bot knew the account a moment ago (steps skip the separate member lookup): the
    next button or message after a deactivation gets the explanation and records nothing."""
    server = bot.server
    runtime = bot.runtime
    world = World(bot, "", "", {})
    professional = await world.person("professional")
    server.send_text(professional, "/incident")
    mode = await server.wait_for_message(professional["id"], lambda m: bool(buttons(m)))
    server.press_button(professional, mode, text="Real situation")
    danger = await server.wait_for_message(
        professional["id"], lambda m: "immediate danger" in m.get("text", "")
    )
    async with runtime.sessions() as session, session.begin():
        member = await session.scalar(
            select(Member).where(Member.telegram_user_id == professional["id"])
        )
        assert member is not None
        member.active = False
        theirs = select(func.count()).where(TimelineEvent.member_id == member.id)
        recorded = await session.scalar(theirs)

    server.press_button(professional, danger, text="No immediate danger")
    refusal = await server.wait_for_message(professional["id"], lambda m: not buttons(m))
    assert shown("enroll.inactive", refusal["text"])
    server.send_text(professional, "the phones are bagged")
    await server.wait_for_message(
        professional["id"],
        lambda m: m["message_id"] > refusal["message_id"] and shown("enroll.inactive", m["text"]),
    )
    async with runtime.sessions() as session:
        assert await session.scalar(theirs) == recorded
