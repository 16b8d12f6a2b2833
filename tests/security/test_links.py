"""Sign-in links raced, replayed, or kept after their member was deactivated.

Expiry and a second use one after the other are in tests/dashboard/test_signin.py.
"""

from __future__ import annotations

import asyncio
import html
import re

import httpx
from starlette.applications import Starlette

from bot.runtime import Runtime
from storage.models import Member, Role
from storage.repositories import Roster
from tests.conftest import add_member
from tests.dashboard.scenario import BASE, csrf_of, link_for


async def opened(client: httpx.AsyncClient, link: str) -> dict[str, str]:
    """Open a sign-in link in a browser: the form its button would post."""
    page = await client.get(link)
    found = re.search(r'name="token" value="([^"]+)"', page.text)
    assert found, page.text
    return {"csrf": csrf_of(page.text), "token": html.unescape(found.group(1))}


async def test_one_link_used_by_two_browsers_at_once_signs_in_one(
    app: Starlette, runtime: Runtime
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    link = await link_for(runtime, coordinator.id)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE) as first,
        httpx.AsyncClient(transport=transport, base_url=BASE) as second,
    ):
        forms = [await opened(first, link), await opened(second, link)]
        answers = await asyncio.gather(
            first.post("/login", data=forms[0]), second.post("/login", data=forms[1])
        )
        assert sorted(a.status_code for a in answers) == [303, 400]
        signed_in = [c for c in (first, second) if (await c.get("/incidents")).status_code == 200]
        assert len(signed_in) == 1


async def test_a_link_of_a_member_deactivated_meanwhile_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    officer = await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Agent Roy", "en")
    link = await link_for(runtime, officer.id)
    form = await opened(client, link)
    async with runtime.sessions() as session, session.begin():
        member = await session.get(Member, officer.id)
        assert member is not None
        await Roster(session).set_active(member, False, runtime.clock.now())
    refused = await client.post("/login", data=form)
    assert refused.status_code == 400
    assert (await client.get("/incidents")).status_code == 303
