"""Engine and session factory, and schema migration to the newest revision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, make_url
from sqlalchemy.engine import URL, Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from storage import sqlite
from storage.crypto import KeyRing, bind_key_ring

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# PostgreSQL connections, at most (see create_engine): transactions beyond them wait their turn.
PG_POOL_SIZE = 4
PG_POOL_OVERFLOW = 0
# Seconds a transaction waits for a connection (on both databases) before it fails like any
# database error, to be tried again.
POOL_TIMEOUT = 60


def _sqlite_pragmas(dbapi_connection: object, _record: ConnectionPoolEntry) -> None:
    # The driver's own implicit BEGIN is turned off: _sqlite_begin starts every transaction.
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # A commit is appended to the write-ahead log and not synced to the disk on its own (the log
    # is synced at each checkpoint): a crash of the program, even kill -9, loses nothing; a
    # power cut or a crash of the machine may take back the last commits, never corrupting the
    # file (PostgreSQL is the production database). See storage.sqlite.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_connect(
    dialect: Dialect, _record: ConnectionPoolEntry, cargs: list[Any], cparams: dict[str, Any]
) -> Any:
    """Open SQLite connections whose statements run on the event loop (storage.sqlite)."""
    return dialect.loaded_dbapi.connect(*cargs, async_creator_fn=sqlite.connect, **cparams)


def _sqlite_begin(connection: Connection) -> None:
    """Take SQLite's write lock when a transaction starts, not at its first write.

    With a deferred BEGIN, a transaction that read before another one committed cannot write
    any more ("database is locked" at once, no busy wait); updates of different people are
    handled concurrently, so every transaction queues for the lock instead (in the program for
    its own connection, see create_engine; behind another process's, see storage.sqlite).
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, keys: KeyRing | None = None) -> AsyncEngine:
    """An async engine for a SQLite file or a PostgreSQL server.

    ``keys`` encrypt and decrypt the encrypted columns through this engine (see
    :mod:`storage.crypto`); an engine without keys refuses to touch those columns.
    """
    if url.startswith("sqlite"):
        database = url.split("///", 1)[1] if "///" in url else ""
        options: dict[str, int] = {}
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DatabaseUnreachable(
                    f"cannot create the folder of the SQLite database {database}: "
                    f"{error.strerror or error}"
                ) from error
            # One connection, handed out in turn: SQLite writes one transaction at a time
            # anyway, and queueing in the program is fair and prompt where SQLite's busy wait
            # polls. (An in-memory database is one shared connection already.)
            options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": POOL_TIMEOUT}
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "do_connect", _sqlite_connect)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    else:
        # No ping before each use (a round trip per transaction): after a server restart the
        # first use of each stale connection fails as a disconnect, the pool drops them all,
        # and the callers' retries (handlers, wake-ups) go through on fresh connections.
        # A few connections, none opened beyond them: the program is one event loop, on one
        # processor, and a step's transaction takes a turn of the loop per round trip. With
        # more transactions open at once than the round trips need to overlap, a busy loop
        # interleaves them all, so each stays open longer, holds its person's or chain's lock
        # longer, and finishes later; waiting for a connection instead (first come, first
        # served) lets the ones under way finish. In the bench at N = 200 with a busy process
        # beside the bot, four connections against twenty (and ten more for a moment): a p99
        # median of 74 against 217 ms over five pairs, less processor time per update (see
        # bench/HISTORY.md).
        # They are opened only as needed, so a quiet bot holds few. The most recently returned
        # connection is handed out first (last in, first out): the driver prepares each
        # statement once per connection, a round trip of its own.
        engine = create_async_engine(
            url,
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_POOL_OVERFLOW,
            pool_timeout=POOL_TIMEOUT,
            pool_use_lifo=True,
        )
    if keys is not None:
        bind_key_ring(engine, keys)
    return engine


class DatabaseUnreachable(Exception):
    """The database could not be connected to: the server down or unknown, the database missing,
    credentials refused, a SQLite file that cannot be opened."""


def safe_url(url: str | URL) -> str:
    """A database URL fit to show: its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


async def check_connection(engine: AsyncEngine) -> None:
    """Connect once, so that a database out of reach is said plainly before any work starts
    (the message names the URL, without its password, and the driver's reason)."""
    url = safe_url(engine.url)
    try:
        async with engine.connect():
            pass
    except DBAPIError as error:
        reason = str(error.orig).strip() or type(error.orig).__name__
        raise DatabaseUnreachable(f"cannot connect to the database {url}: {reason}") from error
    except (OSError, TimeoutError) as error:  # the drivers' own: refused, unknown host, timeout
        reason = str(error) or type(error).__name__
        raise DatabaseUnreachable(f"cannot connect to the database {url}: {reason}") from error


class Session(AsyncSession):
    """An AsyncSession that, leaving ``async with`` with its transaction over, closes in place.

    SQLAlchemy closes a session leaving ``async with`` in a task of its own, awaited under a
    shield, so that a cancellation cannot abandon the close halfway (a connection left checked
    out). That costs a turn of the event loop, and every step of the guide ends this way: the
    reply waited behind whatever else was ready to run. Once the session's transaction has
    ended (committed or rolled back, as ``session.begin()`` does), its connection is back in
    the pool and closing it only forgets the objects it loaded: nothing that could be abandoned,
    so it is done at once. A session still in a transaction closes as SQLAlchemy does.
    """

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        if self.in_transaction():
            await super().__aexit__(type_, value, traceback)
        else:
            await self.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, class_=Session, expire_on_commit=False)


def _alembic(connection: Connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision``."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: command.upgrade(_alembic(c), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the schema back to ``revision`` ("base" drops every table)."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: command.downgrade(_alembic(c), revision))
