"""PostgreSQL on the same host, reached through its Unix socket: a `DATABASE_URL` such as
``postgresql://sexto@/sexto?host=/var/run/postgresql`` works for the bot and its scheduler."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy
from sqlalchemy import text

from bot.runtime import Runtime
from bot.scheduler import jobs_url
from bot.settings import Config, normalise_database_url
from storage.models import Role
from tests.conftest import add_member, settings_for
from tests.support import databases
from tests.support.clock import FrozenClock
from tests.support.messenger import RecordingMessenger

pytestmark = pytest.mark.postgres


async def _socket_directory() -> str:
    """The server's first Unix socket directory (asked over TCP)."""
    await databases.require_postgres()
    connection = await asyncpg.connect(databases.POSTGRES_ADMIN)
    try:
        directories = await connection.fetchval("SHOW unix_socket_directories")
    finally:
        await connection.close()
    found = [d.strip() for d in (directories or "").split(",") if d.strip().startswith("/")]
    if not found:
        problem = "the PostgreSQL server listens on no Unix socket"
        if databases.in_ci():
            pytest.fail(problem)
        pytest.skip(problem)
    return found[0]


@pytest.fixture
async def socket_url(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A fresh database, its URL naming the server's socket directory instead of a host."""
    directory = await _socket_directory()
    user = sqlalchemy.engine.make_url(databases.POSTGRES_ADMIN).username or "postgres"
    admin = f"postgresql://{user}@/postgres?host={directory}"
    monkeypatch.setattr(databases, "POSTGRES_ADMIN", admin)
    async with databases.postgres_database() as url:
        assert sqlalchemy.engine.make_url(url).query.get("host") == directory
        yield url


async def test_the_bot_runs_a_step_through_the_socket(socket_url: str, config: Config) -> None:
    # As a deployer writes it: the plain scheme, the socket directory as the host.
    written = socket_url.replace("postgresql+asyncpg://", "postgresql://")
    url = normalise_database_url(written)
    assert "127.0.0.1" not in url
    runtime = Runtime.create(settings_for(config, url), clock=FrozenClock())
    runtime.escalator.messenger = RecordingMessenger()
    await runtime.prepare_database()
    try:
        member = await add_member(runtime, Role.PROFESSIONAL, ("nord",), telegram_user_id=7)
        outcome = await runtime.guide.start_incident(member.id)
        assert outcome.replies, "the guide's first step was not given"
        async with runtime.sessions() as session:
            # No server address: the connection is a Unix socket, not TCP.
            assert await session.scalar(text("SELECT inet_server_addr()")) is None
            assert await session.scalar(text("SELECT count(*) FROM conversations")) == 1
    finally:
        await runtime.close()


async def test_the_scheduler_s_job_store_reaches_the_socket_too(socket_url: str) -> None:
    engine = sqlalchemy.create_engine(jobs_url(socket_url))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT inet_server_addr()")).scalar() is None
    finally:
        engine.dispose()
