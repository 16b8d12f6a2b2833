"""Shared fixtures: a frozen clock, a test configuration, and a wired runtime on each backend."""

from __future__ import annotations

import os

# python-telegram-bot 22 warns (an error under filterwarnings=error) unless durations are
# timedeltas; the program sets the same in its command line entry point.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.escalation import NoWakeup
from bot.runtime import Runtime
from bot.settings import Config, Environment, Settings, parse_config
from storage.crypto import generate_key
from storage.models import Member, MemberSchool, Role
from storage.repositories import Officers
from tests.support.clock import FrozenClock
from tests.support.databases import postgres_database
from tests.support.messenger import RecordingMessenger

# The test session's encryption key: test runtimes and the processes they start share it, so a
# test can read what a `sexto` process wrote (tests of other keys pass their own).
TEST_ENCRYPTION_KEY = generate_key()

TEST_CONFIG: dict[str, Any] = {
    "timezone": "America/Montreal",
    "local": {"school": "nord"},
    "schools": [
        {
            "id": "nord",
            "name": "École secondaire du Nord",
            "board": "CSS du Nord",
            "station": "PDQ 1",
            "address": "10, rue du Nord, Montréal",
        },
        {"id": "west", "name": "West High School", "board": "EMSB", "station": "PDQ 2"},
    ],
}


@pytest.fixture
def clock() -> FrozenClock:
    """A clock frozen at 2026-11-21 09:30 in Montréal."""
    return FrozenClock()


@pytest.fixture
def config() -> Config:
    """The test configuration (two schools)."""
    return parse_config(TEST_CONFIG)


def settings_for(config: Config, database_url: str, **env: Any) -> Settings:
    """Settings for a test, without reading the process environment."""
    return Settings(
        config=config,
        env=Environment(
            telegram_token=env.get("telegram_token"),
            telegram_api_url=env.get("telegram_api_url", "https://api.telegram.org"),
            database_url=database_url,
            config_path=Path("config.yml"),
            webhook_secret=env.get("webhook_secret"),
            encryption_keys=tuple(env.get("encryption_keys", (TEST_ENCRYPTION_KEY,))),
        ),
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'sexto.db'}"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
async def runtime(config: Config, database_url: str, clock: FrozenClock) -> AsyncIterator[Runtime]:
    """The program wired on a fresh, migrated database with the test schools."""
    runtime = Runtime.create(settings_for(config, database_url), clock=clock)
    runtime.escalator.messenger = RecordingMessenger()
    await runtime.prepare_database()
    try:
        yield runtime
    finally:
        await runtime.close()


async def add_member(
    runtime: Runtime,
    role: Role,
    schools: tuple[str, ...] = (),
    telegram_user_id: int | None = None,
    name: str = "Alex",
    language: str = "fr",
) -> Member:
    """Create a member directly (tests of enrollment use codes instead)."""
    async with runtime.sessions() as session, session.begin():
        member = Member(
            telegram_user_id=telegram_user_id,
            display_name=name,
            role=role,
            language=language,
            active=True,
            created_at=runtime.clock.now(),
        )
        session.add(member)
        await session.flush()
        for school in schools:
            session.add(MemberSchool(member_id=member.id, school_id=school))
            if role is Role.OFFICER:
                await Officers(session).assign(school, member.id)
        await session.flush()
        await session.refresh(member, ["schools"])
        return member


def messenger(runtime: Runtime) -> RecordingMessenger:
    """The recording messenger of a test runtime."""
    assert isinstance(runtime.escalator.messenger, RecordingMessenger)
    return runtime.escalator.messenger


def scheduled(runtime: Runtime) -> dict[int, Any]:
    """The wake-ups the escalator asked for (escalation id to time)."""
    wakeup = runtime.escalator.wakeup
    assert isinstance(wakeup, NoWakeup)
    return wakeup.jobs


async def fire_due(runtime: Runtime) -> int:
    """Run every wake-up due at the frozen clock's time, as the scheduler would; count them."""
    fired = 0
    await runtime.escalator.settle()
    jobs = scheduled(runtime)
    while due := sorted(e for e, at in jobs.items() if at <= runtime.clock.now()):
        for escalation_id in due:
            jobs.pop(escalation_id, None)
            await runtime.escalator.fire(escalation_id)
            await runtime.escalator.settle()
            fired += 1
    return fired
