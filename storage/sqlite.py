"""SQLite statements, commits included, on the event loop's own thread; waits elsewhere.

aiosqlite runs every call on a thread of its own, and each call is a round trip between the
event loop and that thread: two hand-overs of the interpreter lock, and the loop resumes the
waiting transaction only when it comes back round to it. A step of the guide is some ten calls
(statements, fetches, BEGIN, COMMIT) that each take microseconds on a local file, so those
round trips were most of a transaction's time when busy, and the one connection stayed checked
out all along. Here, :class:`LoopConnection` runs the calls directly on the loop's thread. What
could block the loop is kept off it:

- the disk: the database is in write-ahead mode with ``synchronous=NORMAL`` (see
  :mod:`storage.database`), so a COMMIT appends to the log without waiting for the disk. The
  one operation that does wait for it, the checkpoint that copies the log into the database
  file, is not left to the commit that happens to fill the log (``wal_autocheckpoint`` is off
  on this connection): every :data:`CHECKPOINT_EVERY` commits a passive checkpoint runs on a
  worker thread, through a connection of its own, without stopping anyone's transaction;
- another process's lock (a command-line ``sexto`` command): a statement that finds the write
  lock held fails at once (``busy_timeout`` is 0 on the loop) and is run again on aiosqlite's
  thread, which waits up to :data:`BUSY_TIMEOUT_MS` for the lock.

Every transaction starts with ``BEGIN IMMEDIATE`` (see :mod:`storage.database`), so the lock is
only ever waited for there, before anything was done; running that statement again is safe.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000  # how long a transaction waits for another process's write lock
CHECKPOINT_EVERY = 256  # commits between two checkpoints of the write-ahead log


class LoopConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the event loop's thread (see the module)."""

    def __init__(
        self, connector: Callable[[], sqlite3.Connection], checkpoints: Checkpoints | None
    ):
        super().__init__(connector, iter_chunk_size=64)
        self.checkpoints = checkpoints

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        connection = self._connection
        if not self._running or connection is None:
            raise ValueError("Connection closed")
        try:
            result = fn(*args, **kwargs)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            waiting = partial(_waiting, connection, partial(fn, *args, **kwargs))
            result = await super()._execute(waiting)  # type: ignore[no-untyped-call]
        if self.checkpoints is not None and fn == connection.commit:
            self.checkpoints.committed()
        return result

    async def close(self) -> None:
        """Close the connection, after the checkpoint under way if there is one."""
        if self.checkpoints is not None:
            await self.checkpoints.close()
        await super().close()


class Checkpoints:
    """Passive checkpoints of a database's write-ahead log, on a worker thread, one at a time,
    every :data:`CHECKPOINT_EVERY` commits (counted by :meth:`committed`)."""

    def __init__(self, database: str, **options: Any) -> None:
        self.database = database
        self.options = {k: v for k, v in options.items() if k in ("uri",)}
        self.commits = 0
        self.running: asyncio.Future[None] | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def committed(self) -> None:
        """Count a commit; start a checkpoint when enough of them went into the log."""
        self.commits += 1
        if self.commits < CHECKPOINT_EVERY or self.running is not None:
            return
        self.commits = 0
        self.running = asyncio.ensure_future(asyncio.to_thread(self._checkpoint))
        self.running.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[None]) -> None:
        self.running = None
        if not future.cancelled() and (error := future.exception()) is not None:
            # Not lost: the log keeps every commit, and the next checkpoint copies it.
            log.warning("SQLite checkpoint failed (tried again later): %s", error)

    def _checkpoint(self) -> None:
        with self._lock:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    self.database,
                    timeout=0,
                    isolation_level=None,
                    check_same_thread=False,
                    **self.options,
                )
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def close(self) -> None:
        """Wait for the checkpoint under way, then close the checkpoints' connection."""
        running = self.running
        if running is not None:
            await asyncio.wait([running])
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _waiting(connection: sqlite3.Connection, call: Callable[[], Any]) -> Any:
    """On aiosqlite's thread: make ``call`` wait for the write lock, then stop waiting again."""
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        return call()
    finally:
        connection.execute("PRAGMA busy_timeout=0")


def connect(database: str, **options: Any) -> LoopConnection:
    """A :class:`LoopConnection` to ``database`` (sqlite3's connect options), to be awaited.

    sqlite3 must let the loop's thread use a connection opened on aiosqlite's, and its calls
    never wait for a lock there (``timeout`` is SQLite's busy timeout).
    """
    options["check_same_thread"] = False
    options["timeout"] = 0
    checkpoints = None if _in_memory(database, options) else Checkpoints(database, **options)
    connection = LoopConnection(partial(_open, database, checkpoints, options), checkpoints)
    connection._thread.daemon = True
    return connection


def _in_memory(database: str, options: dict[str, Any]) -> bool:
    return database in ("", ":memory:") or (bool(options.get("uri")) and "mode=memory" in database)


def _open(
    database: str, checkpoints: Checkpoints | None, options: dict[str, Any]
) -> sqlite3.Connection:
    connection: sqlite3.Connection = sqlite3.connect(database, **options)
    if checkpoints is not None:
        # Checkpoints run on their own thread (Checkpoints), never in a commit on the loop.
        connection.execute("PRAGMA wal_autocheckpoint=0")
    return connection
