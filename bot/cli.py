"""The ``sexto`` command."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import click

from bot.clock import SystemClock
from bot.commands import load_settings, with_runtime
from bot.console import ConsoleChat, local_member, stdin_reader
from bot.runtime import Runtime
from bot.scheduler import Wakeups
from bot.settings import ConfigError
from dashboard.cli import admin as admin_commands
from dashboard.clock import ShiftedClock
from dashboard.options import DashboardOptions, dashboard_secret
from nlu.cli import nlu as nlu_commands
from storage.crypto import KeyRing, generate_key
from storage.database import safe_url
from storage.models import Base, Role
from storage.repositories import Enrollment, Schools
from storage.rotation import Progress, RotationError, rotate_keys


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more (debug level).")
def main(verbose: bool) -> None:
    """SEXTO assistant: guides school staff through the SEXTO protocol on Telegram."""
    # python-telegram-bot 22: durations as timedelta (the older float form is deprecated).
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "apscheduler", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # python-telegram-bot's debug lines hold the bot token (in the API's address) and whole
    # updates, so whatever people type: not written, even with -v.
    logging.getLogger("telegram").setLevel(logging.INFO)


@main.command()
def init() -> None:
    """Create or upgrade the database and load the schools of config.yml (idempotent)."""

    async def work(runtime: Runtime) -> None:
        added, updated = await runtime.prepare_database()
        total = len(runtime.settings.config.schools)
        click.echo(f"Database ready: {safe_url(runtime.settings.env.database_url)}")
        click.echo(f"Schools: {total} in config.yml ({added} added, {updated} updated)")

    with_runtime(work)


@main.command()
@click.option("--console", is_flag=True, help="Local mode: the console chat, not the dashboard.")
def run(console: bool) -> None:
    """Serve the bot on Telegram and the dashboard; without TELEGRAM_BOT_TOKEN, local mode."""
    settings = load_settings()
    options = DashboardOptions.from_config(settings.config)
    local = settings.env.telegram_token is None
    if local and (console or not options.enabled):
        click.echo("No TELEGRAM_BOT_TOKEN: local mode (console chat).", err=True)
        _chat(settings.config.local.school, None)
        return
    serve_web = options.enabled
    if serve_web and not local and not settings.env.dashboard_secret:
        click.echo(
            "The dashboard is not served: set SEXTO_DASHBOARD_SECRET (32+ characters) to serve "
            "it next to the bot, or set dashboard.enabled: false to silence this.",
            err=True,
        )
        serve_web = False
    try:
        secret = (
            dashboard_secret(settings.env.dashboard_secret, local_mode=local) if serve_web else b""
        )
    except ConfigError as error:
        raise click.ClickException(str(error)) from None

    async def work(runtime: Runtime) -> None:
        from dashboard.links import local_sign_in_link
        from dashboard.server import serve_dashboard

        await runtime.prepare_database()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if local:
            async with runtime.sessions() as session, session.begin():
                link = await local_sign_in_link(
                    session,
                    runtime.clock.now(),
                    options.base_url,
                    settings.config.default_language,
                )
            click.echo("No TELEGRAM_BOT_TOKEN: local mode (dashboard, drill simulator).", err=True)
            click.echo(f"Dashboard (single-use sign-in link, 10 minutes): {link}")
            await serve_dashboard(
                runtime,
                options.host,
                options.port,
                stop,
                local_mode=True,
                secret=secret,
                options=options,
            )
            return
        from bot.application import Refused, serve

        async def web() -> None:
            # The dashboard must never take the bot down with it (a busy port, say).
            try:
                await serve_dashboard(
                    runtime,
                    options.host,
                    options.port,
                    stop,
                    local_mode=False,
                    secret=secret,
                    options=options,
                )
            except (Exception, SystemExit):  # uvicorn exits when it cannot listen
                logging.getLogger(__name__).exception("the dashboard stopped")

        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(serve(runtime, stop))
                if serve_web:
                    tasks.create_task(web())
        except* Refused as refused:
            raise click.ClickException(str(refused.exceptions[0])) from None

    # Local mode's drills move the clock forward (reminders come due without waiting).
    with_runtime(work, ShiftedClock(SystemClock()) if local else None)


def _chat(school: str, language: str | None) -> None:
    async def work(runtime: Runtime) -> None:
        config = runtime.settings.config
        if school not in {s.id for s in config.schools}:
            raise click.BadParameter(f"unknown school {school!r}", param_hint="--school")
        await runtime.prepare_database()
        member_id = await local_member(runtime.guide, school, language or config.default_language)
        chat = ConsoleChat(runtime.guide, runtime.escalator, sys.stdout)
        wakeups = Wakeups(
            runtime.settings.env.database_url, runtime.escalator.fire, clock=runtime.clock
        )
        runtime.escalator.messenger = chat
        runtime.escalator.wakeup = wakeups
        await runtime.escalator.interrupted()  # before any wake-up runs
        await wakeups.start()
        try:
            await runtime.escalator.recover()
            await chat.run(member_id, stdin_reader, language)
        finally:
            await runtime.escalator.settle()
            await wakeups.shutdown()

    with_runtime(work)


@main.command()
@click.option("--school", help="School id from config.yml (default: local.school).")
@click.option("--language", type=click.Choice(["fr", "en"]), help="Language to start in.")
def chat(school: str | None, language: str | None) -> None:
    """Chat with the guide in this terminal, as a demo professional (drills, demos)."""
    _chat(school or load_settings().config.local.school, language)


@main.command()
@click.option(
    "--role",
    type=click.Choice(["professional", "officer", "coordinator"]),
    required=True,
    help="What the new member does.",
)
@click.option("--school", help="School id from config.yml (required for professionals).")
def enroll(role: str, school: str | None) -> None:
    """Print a single-use enrollment code and its Telegram link."""
    member_role = Role(role)
    if member_role is Role.PROFESSIONAL and not school:
        raise click.UsageError("a professional needs --school")

    async def work(runtime: Runtime) -> None:
        settings = runtime.settings
        now = runtime.clock.now()
        await runtime.prepare_database()
        async with runtime.sessions() as session, session.begin():
            if school is not None and await Schools(session).get(school) is None:
                known = ", ".join(s.id for s in settings.config.schools)
                raise click.BadParameter(
                    f"unknown school {school!r} (known: {known})", param_hint="--school"
                )
            code, row = await Enrollment(session).create_code(
                member_role, school, now, settings.config.enrollment.code_ttl
            )
        username = await _bot_username(runtime)
        expires = row.expires_at.astimezone(settings.config.zone).strftime("%Y-%m-%d %H:%M %Z")
        click.echo(f"Enrollment code ({role}{', ' + school if school else ''}): {code}")
        click.echo(f"Single use, valid until {expires}.")
        if username:
            click.echo(f"Link: https://t.me/{username}?start={code}")
        click.echo(f"Or send the bot: /start {code}")

    with_runtime(work)


async def _bot_username(runtime: Runtime) -> str | None:
    """The bot's username: asked to Telegram when a token is set, else from config.yml."""
    env = runtime.settings.env
    if env.telegram_token:
        from telegram import Bot
        from telegram.error import TelegramError

        bot = Bot(env.telegram_token, base_url=f"{env.telegram_api_url}/bot")
        try:
            async with bot:
                return bot.username
        except TelegramError as error:
            click.echo(f"(could not ask Telegram for the bot's name: {error})", err=True)
    return runtime.settings.config.telegram.bot_username


@main.group()
def keys() -> None:
    """Encryption keys of the transcripts: make a new one, re-encrypt with the newest."""


@keys.command()
def generate() -> None:
    """Print a new encryption key."""
    click.echo(generate_key())
    click.echo(
        "Put it first in SEXTO_ENCRYPTION_KEYS (comma-separated, newest first), keep the older "
        "keys after it until `sexto keys rotate` has run, and keep a copy in a safe place: "
        "without the key the transcripts cannot be read.",
        err=True,
    )


@keys.command()
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Values re-encrypted per transaction.",
)
def rotate(batch_size: int) -> None:
    """Re-encrypt every encrypted value with the first key of SEXTO_ENCRYPTION_KEYS."""
    settings = load_settings()
    if not settings.env.encryption_keys:
        raise click.ClickException(
            "SEXTO_ENCRYPTION_KEYS is not set: put the new key first and the current ones after "
            "it (`sexto keys generate` makes a key), then run this again"
        )
    ring = KeyRing(settings.env.encryption_keys)

    def show(progress: Progress) -> None:
        click.echo(f"  {progress.column}: {progress.seen}/{progress.total}", err=True)

    async def work(runtime: Runtime) -> None:
        await runtime.prepare_database()
        try:
            done = await rotate_keys(runtime.engine, ring, Base.metadata, batch_size, show)
        except RotationError as error:
            raise click.ClickException(
                f"{error}\nNothing after this row was re-encrypted; what was done is kept."
            ) from None
        for progress in done:
            changed = f", {progress.changed} changed meanwhile" if progress.changed else ""
            click.echo(
                f"{progress.column}: {progress.rotated} re-encrypted, "
                f"{progress.current} already with the newest key{changed}"
            )
        rotated = sum(p.rotated for p in done)
        current = sum(p.current for p in done)
        click.echo(f"Re-encrypted {rotated} value(s) with the newest key; {current} already were.")
        if ring.size > 1:
            click.echo(
                "Every value now opens with the first key alone: the older keys can be removed "
                "from SEXTO_ENCRYPTION_KEYS (restart the bot after changing it)."
            )

    with_runtime(work)


@main.command()
@click.option("--dry-run", is_flag=True, help="Only list what would go; change nothing.")
def purge(dry_run: bool) -> None:
    """Apply the retention periods of config.yml now (`sexto run` does it every night)."""
    from bot.retention import RetentionService, plan_lines, report_lines

    async def work(runtime: Runtime) -> None:
        await runtime.prepare_database()
        config = runtime.settings.config
        service = RetentionService(runtime.sessions, runtime.clock, config)
        failed = False
        if dry_run:
            lines = plan_lines(await service.plan(), config)
        else:
            report = await service.run("command")
            lines, failed = report_lines(report, config), bool(report.failed)
        for line in lines:
            click.echo(line)
        if failed:
            raise click.exceptions.Exit(1)

    with_runtime(work)


main.add_command(nlu_commands)
main.add_command(admin_commands)


if __name__ == "__main__":  # pragma: no cover
    main()
