"""SQLite on the event loop: statements and commits run there, but no wait for the disk or a lock
does."""

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
from storage.database import create_engine, session_factory


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


async def test_statements_and_commits_run_on_the_loop(engine: AsyncEngine) -> None:
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
    assert statements["COMMIT"] == loop
    assert await count(engine) == 1


async def test_commits_are_not_synced_one_by_one(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        mode = (await connection.execute(text("PRAGMA synchronous"))).scalar_one()
        journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
    assert (mode, journal) == (1, "wal")  # NORMAL: the log is synced at checkpoints


def rows_in_the_file_alone(path: Path, copy: Path) -> int:
    """The rows the database file holds without its write-ahead log (what checkpoints copied)."""
    copy.write_bytes(path.read_bytes())
    alone = sqlite3.connect(copy)
    try:
        return int(alone.execute("SELECT count(*) FROM notes").fetchone()[0])
    finally:
        alone.close()


async def test_checkpoints_copy_the_log_into_the_file_off_the_loop(
    engine: AsyncEngine, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY", 10)
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, sqlite.LoopConnection)
        assert driver.checkpoints is not None
        threads: list[int] = []
        checkpoint = driver.checkpoints._checkpoint

        def on_a_thread() -> None:
            threads.append(threading.get_ident())
            checkpoint()

        monkeypatch.setattr(driver.checkpoints, "_checkpoint", on_a_thread)
        driver.checkpoints.commits = 0  # the table's creation was one
        for n in range(9):
            async with connection.begin():
                await connection.execute(text("INSERT INTO notes VALUES (:n)"), {"n": n})
        assert driver.checkpoints.running is None
        assert threads == []
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            # Everything so far, the table's creation too, is in the log only.
            rows_in_the_file_alone(path, tmp_path / "before.db")
        async with connection.begin():
            await connection.execute(text("INSERT INTO notes VALUES (9)"))
        running = driver.checkpoints.running
        assert running is not None
        await running
    assert threads
    assert threads[0] != threading.get_ident()
    assert rows_in_the_file_alone(path, tmp_path / "copy.db") == 10
    assert await count(engine) == 10


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


async def test_a_committed_step_s_session_closes_without_waiting_behind_other_work(
    engine: AsyncEngine,
) -> None:
    # A step ends by leaving its session: its reply must not wait for everything else that
    # became ready meanwhile (other people's updates, wake-ups) to run first.
    sessions = session_factory(engine)
    others: list[str] = []
    async with sessions() as session, session.begin():
        await session.execute(text("INSERT INTO notes VALUES (1)"))
        asyncio.get_running_loop().call_soon(others.append, "ran")
    assert others == []
    assert await count(engine) == 1
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_session_left_in_its_transaction_is_rolled_back_and_released(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        await session.execute(text("INSERT INTO notes VALUES (1)"))
        assert session.in_transaction()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await count(engine) == 0

    async def failing_step() -> None:
        async with sessions() as session, session.begin():
            await session.execute(text("INSERT INTO notes VALUES (2)"))
            raise RuntimeError("a step that failed")

    with pytest.raises(RuntimeError):
        await failing_step()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await count(engine) == 0
