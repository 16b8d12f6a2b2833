"""SQLite on the event loop: statements run there, but no wait for the disk or a lock does."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import sqlite
from storage.database import create_engine


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sexto.db"


@pytest.fixture
async def engine(path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (n INTEGER)"))
    yield engine
    await engine.dispose()


def other_process(path: Path) -> sqlite3.Connection:
    """Another program's connection to the same file (a `sexto` command, the dashboard)."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM notes"))).scalar_one())


async def test_statements_run_on_the_loop_and_commits_beside_it(engine: AsyncEngine) -> None:
    seen: list[tuple[str, int]] = []
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, sqlite.LoopConnection)
        database = driver._connection
        assert database is not None
        database.set_trace_callback(lambda sql: seen.append((sql, threading.get_ident())))
        async with connection.begin():
            await connection.execute(text("INSERT INTO notes VALUES (1)"))
            await connection.execute(text("SELECT n FROM notes"))
        database.set_trace_callback(None)
    loop = threading.get_ident()
    statements = {sql.split()[0]: thread for sql, thread in seen}
    assert statements["BEGIN"] == statements["INSERT"] == statements["SELECT"] == loop
    assert statements["COMMIT"] != loop
    assert await count(engine) == 1


async def test_another_process_s_lock_is_waited_for_without_stopping_the_loop(
    engine: AsyncEngine, path: Path
) -> None:
    holder = other_process(path)
    holder.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def release() -> None:
        await asyncio.sleep(0.5)
        holder.execute("COMMIT")

    clock = asyncio.create_task(ticking())
    releasing = asyncio.create_task(release())
    try:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes VALUES (1)"))
    finally:
        clock.cancel()
        await releasing
        holder.close()
    assert ticks >= 20  # the loop kept serving others while this transaction waited
    assert await count(engine) == 1


async def test_a_lock_held_too_long_is_a_clear_error(
    engine: AsyncEngine, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 200)
    holder = other_process(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO notes VALUES (1)"))
    finally:
        holder.execute("COMMIT")
        holder.close()
    # The connection waits again afterwards, and only when it must.
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes VALUES (2)"))
    assert await count(engine) == 1
