"""Restart the shared PostgreSQL server under a running bot (chaos tests), and wait for it.

Restarting affects every test using the server at that moment; the test suite runs one test at
a time, and :func:`restart_postgres` returns only once the server accepts connections again.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import asyncpg

from tests.support.databases import POSTGRES_ADMIN

CLUSTERS = Path("/etc/postgresql")


def restart_command() -> list[str] | None:
    """The command restarting the local cluster (fast shutdown), or None where there is none."""
    tool = shutil.which("pg_ctlcluster")
    if tool is None or not CLUSTERS.is_dir():
        return None
    versions = sorted(p.name for p in CLUSTERS.iterdir() if (p / "main").is_dir())
    if not versions:
        return None
    return [tool, "--skip-systemctl-redirect", versions[-1], "main", "restart", "-m", "fast"]


async def accepting(within: float = 60.0) -> float:
    """Wait until the server accepts connections; returns how long that took (seconds)."""
    started = time.monotonic()
    while True:
        try:
            connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            if time.monotonic() - started > within:
                raise
            await asyncio.sleep(0.1)
            continue
        await connection.close()
        return time.monotonic() - started


async def down(within: float = 30.0) -> bool:
    """Wait until the server refuses connections (a restart under way); False if it never did."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=1)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return True
        await connection.close()
        await asyncio.sleep(0.02)
    return False


async def restart_postgres(within: float = 60.0) -> float:
    """Restart the server (every connection is cut) and wait for it; returns the outage."""
    command = restart_command()
    if command is None:
        raise RuntimeError("no pg_ctlcluster and /etc/postgresql here: cannot restart PostgreSQL")
    started = time.monotonic()
    try:
        await asyncio.to_thread(
            subprocess.run, command, check=True, capture_output=True, timeout=within
        )
    finally:
        await accepting(within)
    return time.monotonic() - started
