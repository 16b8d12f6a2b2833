"""SQLite statements on the event loop's own thread; commits and lock waits on aiosqlite's.

aiosqlite runs every call on a thread of its own, and each call is a round trip between the
event loop and that thread: two hand-overs of the interpreter lock, and the loop resumes the
waiting transaction only when it comes back round to it. A step of the guide is some ten calls
(statements, fetches, BEGIN, COMMIT) that each take microseconds on a local file, so those
round trips were most of a transaction's time when busy, and the one connection stayed checked
out all along. Here, :class:`LoopConnection` runs the calls directly on the loop's thread, with
two exceptions that could block it:

- a COMMIT, which waits for the disk (the write-ahead log is synced at each commit), goes to
  aiosqlite's thread as before;
- a statement that finds the write lock held by another process (a command-line ``sexto``
  command, the dashboard) fails at once (``busy_timeout`` is 0 on the loop) and is run again on
  aiosqlite's thread, which waits up to :data:`BUSY_TIMEOUT_MS` for the lock.

Every transaction starts with ``BEGIN IMMEDIATE`` (see :mod:`storage.database`), so the lock is
only ever waited for there, before anything was done; running that statement again is safe.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite

BUSY_TIMEOUT_MS = 5000  # how long a transaction waits for another process's write lock


class LoopConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the event loop's thread (see the module)."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        connection = self._connection
        if not self._running or connection is None:
            raise ValueError("Connection closed")
        if fn == connection.commit:
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
        waiting = partial(_waiting, connection, partial(fn, *args, **kwargs))
        return await super()._execute(waiting)  # type: ignore[no-untyped-call]


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
    connection = LoopConnection(partial(sqlite3.connect, database, **options), iter_chunk_size=64)
    connection._thread.daemon = True
    return connection
