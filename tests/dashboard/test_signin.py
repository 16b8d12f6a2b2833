"""Signing in with single-use links, sessions that expire or end, cookies and CSRF."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from bot.runtime import Runtime
from dashboard.app import create_app
from dashboard.links import LinkRefused, issue_login_link, local_sign_in_link
from dashboard.options import DashboardOptions
from storage.models import AuditEntry, Role
from tests.conftest import add_member
from tests.dashboard.conftest import SECRET
from tests.dashboard.scenario import BASE, csrf_of, link_for, sign_in
from tests.support.clock import FrozenClock


async def audit_actions(runtime: Runtime) -> list[tuple[str, int | None]]:
    async with runtime.sessions() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(row.action, row.member_id) for row in rows]


async def test_a_coordinator_signs_in_with_the_link_and_lands_on_the_incidents(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord Dupuis", "en")
    link = await link_for(runtime, coordinator.id)
    assert link.startswith(f"{BASE}/login?token=")

    page = await client.get(link)
    assert page.status_code == 200
    assert "Vous allez ouvrir une session" in page.text  # a GET (a preview) signs nobody in

    token = html.unescape(re.search(r'name="token" value="([^"]+)"', page.text).group(1))
    answer = await client.post("/login", data={"csrf": csrf_of(page.text), "token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/incidents"
    home = await client.get("/incidents")
    assert home.status_code == 200
    assert "Signed in: Coord Dupuis (coordinator)" in home.text
    assert ("sign_in", coordinator.id) in await audit_actions(runtime)


async def test_the_session_cookie_is_signed_http_only_and_same_site(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    answer = await sign_in(client, runtime, coordinator.id)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("sexto_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http in this test
    assert "Max-Age=28800" in cookie  # 8 hours

    client.cookies.set("sexto_session", client.cookies["sexto_session"][:-2] + "xx")
    forged = await client.get("/incidents")
    assert forged.status_code == 303  # a tampered cookie is no session


async def test_cookies_are_secure_when_served_over_https(runtime: Runtime) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    options = DashboardOptions(base_url="https://dashboard.example")
    assert options.secure
    app = create_app(runtime, local_mode=False, secret=SECRET, options=options)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        answer = await sign_in(client, runtime, coordinator.id)
    assert "Secure" in answer.headers["set-cookie"]


async def test_a_link_works_once(client: httpx.AsyncClient, runtime: Runtime) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    link = await link_for(runtime, coordinator.id)
    page = await client.get(link)
    token = html.unescape(re.search(r'name="token" value="([^"]+)"', page.text).group(1))
    form = {"csrf": csrf_of(page.text), "token": token}
    assert (await client.post("/login", data=form)).status_code == 303

    client.cookies.clear()
    page = await client.get(link)
    again = await client.post("/login", data={"csrf": csrf_of(page.text), "token": token})
    assert again.status_code == 400
    assert "déjà servi" in again.text
    assert ("sign_in_refused", None) in await audit_actions(runtime)


async def test_a_link_expires_after_ten_minutes(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    link = await link_for(runtime, coordinator.id)
    page = await client.get(link)
    token = html.unescape(re.search(r'name="token" value="([^"]+)"', page.text).group(1))
    clock.advance(minutes=10, seconds=1)
    late = await client.post("/login", data={"csrf": csrf_of(page.text), "token": token})
    assert late.status_code == 400
    assert "expiré" in late.text
    assert (await client.get("/incidents")).status_code == 303


async def test_a_link_nine_minutes_old_still_works(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    link = await link_for(runtime, coordinator.id)
    page = await client.get(link)
    token = html.unescape(re.search(r'name="token" value="([^"]+)"', page.text).group(1))
    clock.advance(minutes=9)
    answer = await client.post("/login", data={"csrf": csrf_of(page.text), "token": token})
    assert answer.status_code == 303


async def test_an_unknown_token_is_refused(client: httpx.AsyncClient) -> None:
    page = await client.get("/login?token=nope")
    answer = await client.post("/login", data={"csrf": csrf_of(page.text), "token": "nope"})
    assert answer.status_code == 400
    assert "pas valide" in answer.text


async def test_signing_in_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    link = await link_for(runtime, coordinator.id)
    page = await client.get(link)
    token = html.unescape(re.search(r'name="token" value="([^"]+)"', page.text).group(1))
    refused = await client.post("/login", data={"token": token})
    assert refused.status_code == 403
    wrong = await client.post("/login", data={"token": token, "csrf": "0" * 64})
    assert wrong.status_code == 403
    # The link was not spent by the refused attempts.
    ok = await client.post("/login", data={"csrf": csrf_of(page.text), "token": token})
    assert ok.status_code == 303


async def test_links_are_only_for_officers_coordinators_and_admins(runtime: Runtime) -> None:
    professional = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Julie")
    officer = await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Agent Roy")
    admin = await add_member(runtime, Role.ADMIN, (), 3002, "Admin")
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        with pytest.raises(LinkRefused):
            await issue_login_link(session, professional.id, now, BASE)
        with pytest.raises(LinkRefused):
            await issue_login_link(session, 999, now, BASE)
        assert await issue_login_link(session, officer.id, now, BASE)
        assert await issue_login_link(session, admin.id, now, BASE)


async def test_a_session_expires(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    await sign_in(client, runtime, coordinator.id)
    clock.advance(hours=7, minutes=59)
    assert (await client.get("/incidents")).status_code == 200
    clock.advance(minutes=2)
    expired = await client.get("/incidents")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/signin"


async def test_signing_out_ends_the_session_for_good(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    await sign_in(client, runtime, coordinator.id)
    stolen = client.cookies["sexto_session"]
    page = await client.get("/incidents")
    answer = await client.post("/logout", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 200
    assert "You are signed out" in answer.text  # the member's language, English
    assert (await client.get("/incidents")).status_code == 303
    client.cookies.set("sexto_session", stolen)  # the old cookie, replayed
    assert (await client.get("/incidents")).status_code == 303
    assert ("sign_out", coordinator.id) in await audit_actions(runtime)


async def test_signing_out_needs_the_csrf_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    await sign_in(client, runtime, coordinator.id)
    assert (await client.post("/logout", data={})).status_code == 403
    assert (await client.get("/incidents")).status_code == 200


async def test_a_deactivated_member_is_signed_out(
    client: httpx.AsyncClient, runtime: Runtime, app: Starlette
) -> None:
    officer = await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Agent Roy", "en")
    await sign_in(client, runtime, officer.id)
    async with runtime.sessions() as session, session.begin():
        member = await session.get(type(officer), officer.id)
        assert member is not None
        member.active = False
    assert (await client.get("/incidents")).status_code == 303


async def test_the_language_toggle_switches_french_and_english(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    await sign_in(client, runtime, coordinator.id)
    assert "Incidents per school" in (await client.get("/statistics")).text
    switched = await client.get("/lang/fr?next=/statistics")
    assert switched.status_code == 303
    assert switched.headers["location"] == "/statistics"
    assert "Incidents par école" in (await client.get("/statistics")).text
    elsewhere = await client.get("/lang/en?next=//evil.example/")
    assert elsewhere.headers["location"] == "/"  # no open redirect


async def test_pages_carry_security_headers(client: httpx.AsyncClient) -> None:
    page = await client.get("/signin")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_local_mode_prints_a_link_for_its_own_coordinator(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    async with runtime.sessions() as session, session.begin():
        first = await local_sign_in_link(session, runtime.clock.now(), BASE, "fr")
    async with runtime.sessions() as session, session.begin():
        second = await local_sign_in_link(session, runtime.clock.now(), BASE, "fr")
    assert first != second
    page = await client.get(first)
    token = html.unescape(re.search(r'name="token" value="([^"]+)"', page.text).group(1))
    answer = await client.post("/login", data={"csrf": csrf_of(page.text), "token": token})
    assert answer.status_code == 303
    page = await client.get("/incidents")
    assert "Local coordinator" in page.text


async def test_sessions_and_links_are_kept_only_as_hashes(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    link = await link_for(runtime, coordinator.id)
    token = link.split("token=", 1)[1]
    async with runtime.sessions() as session:
        from storage.models import LoginToken

        stored = (await session.scalars(select(LoginToken))).one()
    assert token not in stored.token_hash
    assert len(stored.token_hash) == 64
    assert timedelta(minutes=10) == stored.expires_at - stored.created_at


async def test_signing_in_again_ends_the_previous_session(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    await sign_in(client, runtime, coordinator.id)
    first = client.cookies["sexto_session"]
    await sign_in(client, runtime, coordinator.id)
    assert client.cookies["sexto_session"] != first
    client.cookies.set("sexto_session", first)
    assert (await client.get("/incidents")).status_code == 303


async def test_anyone_with_a_session_can_sign_out(
    client: httpx.AsyncClient, app: Starlette, runtime: Runtime
) -> None:
    from tests.dashboard.scenario import force_session

    professional = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Julie", "en")
    await force_session(client, app, runtime, professional.id)
    refused = await client.get("/incidents")
    assert refused.status_code == 403
    answer = await client.post("/logout", data={"csrf": csrf_of(refused.text)})
    assert answer.status_code == 200
    assert "You are signed out" in answer.text
