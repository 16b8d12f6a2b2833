"""What every ``sexto`` command shares: the settings from the environment, and a runtime built
around the command's work, with a problem of configuration or an unreachable database stopped
as one plain message (exit status 1) rather than a traceback."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from bot.clock import Clock
from bot.runtime import Runtime
from bot.settings import ConfigError, Settings
from storage.database import DatabaseUnreachable, check_connection

T = TypeVar("T")


def load_settings() -> Settings:
    """config.yml (or SEXTO_CONFIG) and the environment."""
    try:
        return Settings.load(os.environ)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def with_runtime(
    work: Callable[[Runtime], Awaitable[T]],
    clock: Clock | None = None,
    *,
    prepare: bool = False,
) -> T:
    """Build the runtime, check the database answers, run ``work`` on it, and close it.

    With ``prepare``, the schema is migrated and the schools of config.yml loaded first.
    """
    try:
        runtime = Runtime.create(load_settings(), clock)
    except ConfigError as error:  # the encryption keys (SEXTO_ENCRYPTION_KEYS, the key file)
        raise click.ClickException(str(error)) from None
    except DatabaseUnreachable as error:  # e.g. the SQLite file's folder cannot be made
        raise click.ClickException(f"{error} (DATABASE_URL)") from None

    async def main() -> T:
        try:
            await check_connection(runtime.engine)
            if prepare:
                await runtime.prepare_database()
            return await work(runtime)
        except DatabaseUnreachable as error:
            raise click.ClickException(f"{error} (DATABASE_URL)") from None
        finally:
            await runtime.close()

    return asyncio.run(main())
