"""Incidents made the way people make them (through the guide), and signing in to the dashboard."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import timedelta

import httpx
from starlette.applications import Starlette

from bot.runtime import Runtime
from dashboard.links import issue_login_link
from storage.models import Member, Role
from storage.repositories import WebSessions
from tests.conftest import add_member, fire_due, messenger
from tests.support.clock import FrozenClock
from tests.support.transcript import Transcript, answer_until_call_911, walk_to_call_911

BASE = "http://testserver"
XSS = "<script>alert(1)</script>"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(page: str) -> str:
    """The CSRF token of the first form of a page."""
    found = CSRF.search(page)
    assert found, "no form with a CSRF token on this page"
    return found.group(1)


def main_of(page: str) -> str:
    """The <main> part of a page (without the header's links back to the same address)."""
    return page.split("<main>", 1)[1].split("</main>", 1)[0]


async def link_for(runtime: Runtime, member_id: int, base: str = BASE) -> str:
    """A fresh sign-in link, as /dashboard in the bot would send."""
    async with runtime.sessions() as session, session.begin():
        return await issue_login_link(session, member_id, runtime.clock.now(), base)


async def sign_in(client: httpx.AsyncClient, runtime: Runtime, member_id: int) -> httpx.Response:
    """Open the link, press Sign in; returns the answer to the press."""
    link = await link_for(runtime, member_id, str(client.base_url))
    page = await client.get(link)
    assert page.status_code == 200, page.text
    token = html.unescape(re.search(r'name="token" value="([^"]+)"', page.text).group(1))
    return await client.post("/login", data={"csrf": csrf_of(page.text), "token": token})


async def force_session(
    client: httpx.AsyncClient, app: Starlette, runtime: Runtime, member_id: int
) -> None:
    """A session for anyone (links refuse professionals: this tests the pages' own checks)."""
    async with runtime.sessions() as session, session.begin():
        token = await WebSessions(session).open(member_id, runtime.clock.now(), timedelta(hours=1))
    client.cookies.set("sexto_session", app.state.dashboard.guard.seal(token))


@dataclass
class World:
    """Two schools, their officers, a coordinator, professionals and their incidents."""

    coordinator: Member
    admin: Member
    officer_nord: Member
    officer_west: Member
    professional: Member
    professional_west: Member
    nord: str  # a real incident at nord: 911 called, alert acknowledged, XSS typed
    west: str  # a real incident at west, left open
    drill: str  # a drill at nord


async def build_world(runtime: Runtime, clock: FrozenClock) -> World:
    """The incidents every dashboard test reads."""
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord Dupuis", "en")
    admin = await add_member(runtime, Role.ADMIN, (), 3002, "Admin Tremblay", "en")
    officer_nord = await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Agent Roy", "en")
    officer_west = await add_member(runtime, Role.OFFICER, ("west",), 2002, "Officer Smith", "en")
    professional = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Julie", "en")
    professional_west = await add_member(
        runtime, Role.PROFESSIONAL, ("west",), 1002, "<b>Mark</b>", "en"
    )

    chat = Transcript(runtime.guide, professional.id)
    await chat.start()
    await chat.press("Real situation")
    await fire_due(runtime)
    [alert] = messenger(runtime).to(2001)
    clock.advance(minutes=2)
    await runtime.escalator.acknowledge(
        int(alert.buttons[0][0].data.split(":")[1]), officer_nord.id
    )
    await chat.say(XSS)
    await answer_until_call_911(chat)
    clock.advance(minutes=5)
    await fire_due(runtime)  # a 911 reminder
    clock.advance(minutes=2)
    await chat.press("I called 911")
    await chat.say("EV-2026-777")
    await fire_due(runtime)
    clock.advance(minutes=20)
    await chat.press("Kit handed to the patrol officer")
    await chat.press("Noted")
    nord = "SX-2026-0001"
    clock.advance(days=2)
    await runtime.follow_up.act(officer_nord, 1, "malicious")

    clock.advance(minutes=30)
    chat_west = Transcript(runtime.guide, professional_west.id)
    await walk_to_call_911(chat_west)
    await fire_due(runtime)
    west = "SX-2026-0002"

    clock.advance(minutes=30)
    await walk_to_call_911(Transcript(runtime.guide, professional.id), "Drill")
    drill = "SX-2026-0003"
    await fire_due(runtime)
    return World(
        coordinator,
        admin,
        officer_nord,
        officer_west,
        professional,
        professional_west,
        nord,
        west,
        drill,
    )
