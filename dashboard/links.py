"""Single-use sign-in links, sent by the bot (``/dashboard``) or printed by ``sexto admin``."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Role
from storage.repositories import LoginTokens, Members, Roster

LINK_TTL = timedelta(minutes=10)
READERS = (Role.OFFICER, Role.COORDINATOR, Role.ADMIN)


class LinkRefused(Exception):
    """This member may not sign in to the dashboard."""


async def issue_login_link(
    session: AsyncSession, member_id: int, now: datetime, base_url: str
) -> str:
    """A sign-in link for an active officer, coordinator or administrator (10 minutes, once)."""
    member = await Members(session).get(member_id)
    if member is None or not member.active:
        raise LinkRefused(f"no active member {member_id}")
    if member.role not in READERS:
        raise LinkRefused(f"member {member_id} is a {member.role.value}: no dashboard access")
    token = await LoginTokens(session).issue(member.id, now, LINK_TTL)
    return f"{base_url.rstrip('/')}/login?{urlencode({'token': token})}"


LOCAL_COORDINATOR = "Local coordinator"


async def local_sign_in_link(
    session: AsyncSession, now: datetime, base_url: str, language: str
) -> str:
    """Local mode: a sign-in link for the local coordinator (created once), to print at start."""
    member = await Roster(session).local_coordinator(LOCAL_COORDINATOR, language, now)
    return await issue_login_link(session, member.id, now, base_url)
