"""Fixtures of the dashboard tests: the app on a test runtime, a client, a world of incidents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bot.runtime import Runtime
from bot.settings import Config
from dashboard.app import create_app
from dashboard.clock import ShiftedClock
from dashboard.links import local_sign_in_link
from dashboard.options import DashboardOptions
from tests.conftest import settings_for
from tests.dashboard.scenario import BASE, World, build_world, csrf_of
from tests.support.clock import FrozenClock

SECRET = b"test-secret-for-the-dashboard-0123456789"


@pytest.fixture
def options() -> DashboardOptions:
    """Dashboard options for tests (plain http, so cookies are not Secure)."""
    return DashboardOptions(base_url=BASE, secure_cookies=False)


@pytest.fixture
def app(runtime: Runtime, options: DashboardOptions) -> Starlette:
    """The dashboard (not local mode)."""
    return create_app(runtime, local_mode=False, secret=SECRET, options=options)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


@pytest.fixture
async def world(runtime: Runtime, clock: FrozenClock) -> World:
    """Members and incidents at two schools."""
    return await build_world(runtime, clock)


def with_escalation(config: Config, **changes: Any) -> Config:
    """The test config with some escalation settings changed."""
    data = config.model_dump()
    data["escalation"] = {**data["escalation"], **changes}
    return Config.model_validate(data)


@asynccontextmanager
async def local_dashboard(
    config: Config, database_url: str, clock: FrozenClock
) -> AsyncIterator[tuple[Runtime, Starlette]]:
    """Local mode: a runtime on a clock that drills move forward, and its dashboard."""
    runtime = Runtime.create(settings_for(config, database_url), clock=ShiftedClock(clock))
    await runtime.prepare_database()
    try:
        app = create_app(
            runtime,
            local_mode=True,
            secret=SECRET,
            options=DashboardOptions(base_url=BASE, secure_cookies=False),
        )
        yield runtime, app
    finally:
        await runtime.close()


async def sign_in_locally(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """Sign in as local mode's coordinator (the link local mode prints at start)."""
    async with runtime.sessions() as session, session.begin():
        link = await local_sign_in_link(session, runtime.clock.now(), BASE, "en")
    page = await client.get(link)
    token = link.split("token=", 1)[1]
    answer = await client.post("/login", data={"csrf": csrf_of(page.text), "token": token})
    assert answer.status_code == 303
