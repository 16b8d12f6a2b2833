"""Databases for tests: a SQLite file, or a PostgreSQL database created for the test run."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy.engine import make_url

POSTGRES_ADMIN = os.environ.get(
    "SEXTO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def in_ci() -> bool:
    """True when running in CI, where nothing that needs a service may be skipped."""
    return os.environ.get("CI", "").lower() == "true"


async def postgres_available() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError) as error:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN}: {error}"
    await connection.close()
    return None


async def require_postgres() -> None:
    """Skip (on a laptop) or fail (in CI) when PostgreSQL is not there."""
    problem = await postgres_available()
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"{problem} (CI=true: PostgreSQL tests must run)")
    pytest.skip(problem)


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh database for the duration; yields its asyncpg SQLAlchemy URL."""
    await require_postgres()
    name = f"sexto_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    # make_url keeps a query such as ?host=/var/run/postgresql (the server's Unix socket).
    url = make_url(POSTGRES_ADMIN).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
